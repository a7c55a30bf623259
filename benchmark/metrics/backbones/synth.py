"""Tiny metric backbones for the synth suite: definitions, tokenizer, loading.

Three networks, trained in this repo by ``editbench train-backbones`` (``backbones/train.py``) on
synth scenes with the objectives of the originals, and shipped as safetensors (float16) in this
folder with a sha256 manifest (``manifest.json``):

* ``synth-clip``: contrastive image-caption model (CLIP's symmetric InfoNCE with a learned
  temperature). Image tower: a small conv net on 64x64 inputs whose final 4x4 map is flattened
  (so positions survive) and projected to 256-d; text tower: a word-level tokenizer (vocabulary
  stored in the weights file's metadata) and a 2-layer transformer read at the EOS token.
* ``synth-dino``: DINO self-distillation without labels (student/EMA-teacher, centring and
  sharpening; the teacher sees two zoomed views of an object, the student those and two more at
  the scene's scale) on edge maps (``edge_map``), so it compares outlines and is blind to colour;
  its metric features are the max-pooled trunk output (the CLS-token analogue).
* ``synth-classifier``: supervised shape/colour/background classifier (per 3x3 grid cell: kind and
  colour, or empty); its 256-d penultimate layer plays Inception's pool3 for ``fid``/``kid``, and its
  trunk maps, unit-normalised per channel and compared with uniform weights, give an
  *uncalibrated* LPIPS (``synth-lpips-uncalibrated``: no human-judgement linear layers exist for it).

Inputs: any PIL image, converted to RGB, resized so its shorter side is 64 (PIL bicubic) and
centre-cropped to 64x64 (the synth tasks' native size, where this is the identity), ToTensor, then
normalised with mean = std = 0.5. These are stand-ins that let every metric run on machines
without the standard weights; their numbers are never comparable with standard-backbone numbers
and every result names the backbone that made it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark.metrics.backbones.base import Backbone, rgb, sha256_file

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
INPUT_SIZE = 64
CONTEXT_LENGTH = 80
PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<sos>", "<eos>", "<unk>")
TRUNK_WIDTHS = (32, 48, 96, 128)
EMBED_DIM = 256

_WORD = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")


# --------------------------------------------------------------------------- tokenizer
class WordTokenizer:
    """Lower-case word/punctuation tokens, ``<sos> ... <eos>`` padded to ``context_length``.

    ``truncate=False`` raises ``ValueError`` for a text longer than the context (the convention of
    OpenAI's ``clip.tokenize``); ``truncate=True`` cuts it and keeps ``<eos>`` last.
    """

    def __init__(self, vocab: Sequence[str], context_length: int = CONTEXT_LENGTH):
        if tuple(vocab[:len(SPECIALS)]) != SPECIALS:
            raise ValueError("vocabulary must start with the special tokens")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.context_length = context_length

    @staticmethod
    def words(text: str) -> list[str]:
        return _WORD.findall(text.lower())

    def n_tokens(self, text: str) -> int:
        return len(self.words(text)) + 2

    def __call__(self, texts: Sequence[str], truncate: bool = False) -> torch.Tensor:
        out = torch.full((len(texts), self.context_length), PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [SOS] + [self.index.get(w, UNK) for w in self.words(text)] + [EOS]
            if len(ids) > self.context_length:
                if not truncate:
                    raise ValueError(f"text has {len(ids)} tokens, over the synth-clip context "
                                     f"length of {self.context_length}: {text[:60]!r}...")
                ids = ids[:self.context_length - 1] + [EOS]
            out[row, :len(ids)] = torch.tensor(ids)
        return out


def build_vocab(texts: Sequence[str]) -> list[str]:
    words = sorted({w for t in texts for w in WordTokenizer.words(t)})
    return list(SPECIALS) + words


# --------------------------------------------------------------------------- networks
def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Trunk(nn.Module):
    """64x64 -> 8x8 conv trunk (a full-resolution first layer: small hexagons and circles differ
    by a few pixels); ``forward`` returns the four stage outputs (32, 16, 8, 8 px)."""

    def __init__(self, widths: Sequence[int] = TRUNK_WIDTHS):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stage1 = nn.Sequential(_conv(3, 16, 1), _conv(16, w0, 2))
        self.stage2 = nn.Sequential(_conv(w0, w1, 2), _conv(w1, w1, 1))
        self.stage3 = nn.Sequential(_conv(w1, w2, 2), _conv(w2, w2, 1))
        self.stage4 = _conv(w2, w3, 1)
        self.out_channels = w3

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        s3 = self.stage3(s2)
        s4 = self.stage4(s3)
        return [s1, s2, s3, s4]


def grid_cells(x: torch.Tensor) -> torch.Tensor:
    """Average the final map over the scene's 3x3 grid of object cells: N x C x 3 x 3."""
    return F.adaptive_avg_pool2d(x, 3)


class SynthCLIP(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int = EMBED_DIM, width: int = 128,
                 context_length: int = CONTEXT_LENGTH, layers: int = 2, heads: int = 4):
        super().__init__()
        self.trunk = Trunk()
        self.cell_proj = nn.Conv2d(self.trunk.out_channels, 64, 1)
        self.image_proj = nn.Linear(64 * 9 + self.trunk.out_channels, embed_dim)
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.randn(context_length, width) * 0.01)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(width)
        self.text_proj = nn.Linear(width, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), as CLIP

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)[-1]
        cells = F.relu(self.cell_proj(grid_cells(h))).flatten(1)
        return self.image_proj(torch.cat([cells, h.mean(dim=(2, 3))], dim=1))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        # padding after the longest text changes nothing (it is masked): cut it for speed
        n = int((tokens != PAD).sum(1).max().item()) if tokens.numel() else 1
        tokens = tokens[:, :max(n, 1)]
        x = self.token_embedding(tokens) + self.positional_embedding[:tokens.shape[1]]
        x = self.transformer(x, src_key_padding_mask=tokens == PAD)
        x = self.ln_final(x)
        eos = (tokens == EOS).int().argmax(dim=1)
        return self.text_proj(x[torch.arange(len(tokens)), eos])


def edge_map(x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude, the largest over the colour channels, scaled to [-1, 1] per image
    and repeated on three channels: outlines survive, colours and which side is darker do not.

    synth-dino's front end. Fed colours, DINO's self-distillation never leaves the random features
    on synth scenes, where colour dominates (docs/synth-backbones.md); this is DINO's own grayscale and
    colour-jitter augmentation taken to its limit. Zero padding: the image's frame is an edge
    against mid-grey (0 after normalisation) unless the border is mid-grey."""
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=x.dtype, device=x.device)
    kx = kx.view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    gx = F.conv2d(x, kx, padding=1, groups=3)
    gy = F.conv2d(x, kx.transpose(2, 3), padding=1, groups=3)
    m = (gx ** 2 + gy ** 2).sqrt().amax(dim=1, keepdim=True)
    m = m / m.flatten(1).amax(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
    return (m * 2 - 1).expand(-1, 3, -1, -1)


class SynthDINO(nn.Module):
    """Edge map -> trunk -> global max pool: the feature the ``dino`` metric compares (the
    CLS-token analogue). Max pooling keeps a small object's response, which averaging over a
    mostly-background map dilutes."""

    def __init__(self):
        super().__init__()
        self.trunk = Trunk()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(edge_map(x))[-1].amax(dim=(2, 3))


class DINOHead(nn.Module):
    """DINO's projection head: 3-layer MLP (with BatchNorm, DINO's ``use_bn_in_head`` for convnets),
    l2-normalised bottleneck, weight-normalised prototypes with a learned norm
    (``norm_last_layer=False``)."""

    def __init__(self, in_dim: int, out_dim: int = 256, hidden: int = 256, bottleneck: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.last = nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last.parametrizations.weight.original0.data.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(F.normalize(self.mlp(x), dim=-1))


N_CELLS = 9
N_KINDS = 6
N_COLOURS = 11
N_BACKGROUNDS = 5


class SynthClassifier(nn.Module):
    """Per grid cell: kind (6 + empty) and colour (11 + empty), with heads shared by the nine cells;
    plus the background kind from the pooled map."""

    def __init__(self, cell_dim: int = 64):
        super().__init__()
        self.trunk = Trunk()
        self.cell = nn.Sequential(nn.Conv2d(self.trunk.out_channels, 128, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(128, cell_dim, 1))
        self.kind_head = nn.Conv2d(cell_dim, N_KINDS + 1, 1)
        self.colour_head = nn.Conv2d(cell_dim, N_COLOURS + 1, 1)
        self.background_head = nn.Linear(self.trunk.out_channels, N_BACKGROUNDS)

    def _cells(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)[-1]
        return F.relu(self.cell(grid_cells(h))), h

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate (pool3-like) features used for FID: the nine cells' ReLU embeddings."""
        return self._cells(x)[0].flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c, h = self._cells(x)
        kinds = self.kind_head(c).flatten(2).transpose(1, 2)       # N x 9 x 7 (cell = row * 3 + col)
        colours = self.colour_head(c).flatten(2).transpose(1, 2)   # N x 9 x 12
        return kinds, colours, self.background_head(h.mean(dim=(2, 3)))


# --------------------------------------------------------------------------- files
FILES = {"synth-clip": "synth-clip.safetensors", "synth-dino": "synth-dino.safetensors",
         "synth-classifier": "synth-classifier.safetensors"}


def weights_path(name: str) -> Path:
    return HERE / FILES[name]


def read_manifest() -> dict:
    if not MANIFEST.is_file():
        return {}
    return json.loads(MANIFEST.read_text())


def _load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if "editbench" in meta:  # one key holding sorted JSON: the file's bytes are reproducible
            meta = json.loads(meta["editbench"])
        for key in f.keys():
            t = f.get_tensor(key)
            tensors[key] = t.float() if t.dtype.is_floating_point else t
    return tensors, meta


def missing_synth_weights(name: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"synth backbone weights not found: {weights_path(name)}; they ship with the package and "
        f"are rebuilt by `editbench train-backbones` (recorded command in "
        f"benchmark/metrics/backbones/manifest.json)")


@lru_cache(maxsize=None)
def load_synth_model(name: str) -> tuple[nn.Module, dict[str, str]]:
    """(eval-mode model, safetensors metadata) for ``synth-clip``/``synth-dino``/``synth-classifier``."""
    path = weights_path(name)
    if not path.is_file():
        raise missing_synth_weights(name)
    state, meta = _load_state(path)
    if name == "synth-clip":
        vocab = json.loads(meta["vocab"])
        model: nn.Module = SynthCLIP(len(vocab))
    elif name == "synth-dino":
        model = SynthDINO()
    else:
        model = SynthClassifier()
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return model, meta


def save_model(model: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if v.dtype.is_floating_point}
    # integer buffers (BatchNorm's num_batches_tracked) carry no information for inference
    for k, v in model.state_dict().items():
        if not v.dtype.is_floating_point:
            state[k] = v.detach().contiguous()
    # safetensors writes a metadata map in hash order; one key keeps the header byte-stable
    save_file(state, str(path), metadata={"editbench": json.dumps(metadata, sort_keys=True)})


# --------------------------------------------------------------------------- backbones
def _synth_tensor(image) -> torch.Tensor:
    """PIL -> RGB, short side to 64 (bicubic), centre crop 64, ToTensor, (x - 0.5) / 0.5."""
    from torchvision import transforms as T

    image = rgb(image)
    if image.size != (INPUT_SIZE, INPUT_SIZE):
        image = T.CenterCrop(INPUT_SIZE)(T.Resize(INPUT_SIZE, interpolation=T.InterpolationMode.BICUBIC)(image))
    return (T.functional.to_tensor(image) - 0.5) / 0.5


def _file_sha(name: str) -> str:
    path = weights_path(name)
    if not path.is_file():
        raise missing_synth_weights(name)
    return sha256_file(path, sidecar=False)


class SynthCLIPBackbone(Backbone):
    """``synth-clip``. Views ``clip`` and ``ip2p`` both feed 64x64 inputs (``ip2p`` resizes with
    ``F.interpolate`` bicubic, no crop, as InstructPix2Pix does); texts use the word tokenizer."""

    name = "synth-clip"
    origin = "synth"
    views = ("clip", "ip2p")
    has_text = True
    batch_size = 256
    context_length = CONTEXT_LENGTH

    def __init__(self, device="cpu"):
        self.sha256 = _file_sha(self.name)
        super().__init__(device)
        model, meta = load_synth_model(self.name)
        self.model = model.to(self.device)
        self.tokenizer = WordTokenizer(json.loads(meta["vocab"]), int(meta["context_length"]))

    def preprocess(self, image, view: str) -> torch.Tensor:
        self.check_view(view)
        if view == "clip":
            return _synth_tensor(image)
        from torchvision.transforms.functional import to_tensor

        x = to_tensor(rgb(image))[None]
        x = F.interpolate(x, size=INPUT_SIZE, mode="bicubic", align_corners=False)
        return ((x - 0.5) / 0.5)[0]

    @torch.no_grad()
    def forward_images(self, batch: torch.Tensor, view: str) -> torch.Tensor:
        return self.model.encode_image(batch.to(self.device)).float().cpu()

    def tokenize(self, texts: Sequence[str], truncate: bool) -> torch.Tensor:
        return self.tokenizer(texts, truncate=truncate)

    @torch.no_grad()
    def forward_texts(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens.to(self.device)).float().cpu()


class _SynthImageBackbone(Backbone):
    """A synth image network read through one method (``features_method``)."""

    origin = "synth"
    batch_size = 256
    features_method = "__call__"

    def __init__(self, device="cpu"):
        self.sha256 = _file_sha(self.name)
        super().__init__(device)
        self.model = load_synth_model(self.name)[0].to(self.device)

    def preprocess(self, image, view: str) -> torch.Tensor:
        self.check_view(view)
        return _synth_tensor(image)

    @torch.no_grad()
    def forward_images(self, batch: torch.Tensor, view: str) -> torch.Tensor:
        return getattr(self.model, self.features_method)(batch.to(self.device)).float().cpu()


class SynthDINOBackbone(_SynthImageBackbone):
    name = "synth-dino"
    views = ("dino",)


class SynthClassifierBackbone(_SynthImageBackbone):
    """``synth-classifier``: the classifier's 256-d penultimate features (Inception pool3's role)."""

    name = "synth-classifier"
    views = ("fid",)
    features_method = "features"


class SynthLPIPSBackbone(Backbone):
    """``synth-lpips-uncalibrated``: LPIPS computed on the synth classifier's four trunk stages,
    unit-normalised per channel and compared with uniform weights (no human-judgement
    calibration exists for these features). Its sha256 is the classifier's."""

    name = "synth-lpips-uncalibrated"
    origin = "synth"
    views = ("lpips",)
    spatial_views = ("lpips",)
    batch_size = 256
    calibrated = False

    def __init__(self, device="cpu"):
        from benchmark.metrics.backbones.lpips_net import LinLayers

        self.sha256 = _file_sha("synth-classifier")
        super().__init__(device)
        self.model = load_synth_model("synth-classifier")[0].to(self.device)
        self.lin = LinLayers.uniform(TRUNK_WIDTHS)

    def preprocess(self, image, view: str) -> torch.Tensor:
        self.check_view(view)
        return _synth_tensor(image)

    @torch.no_grad()
    def forward_images(self, batch: torch.Tensor, view: str) -> list[torch.Tensor]:
        from benchmark.metrics.backbones.lpips_net import normalize_channels

        return [normalize_channels(t).float().cpu() for t in self.model.trunk(batch.to(self.device))]
