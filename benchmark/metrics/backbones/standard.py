"""Standard metric backbones, loaded by public name from local files, and ``editbench weights``.

======================  ==================================  ============================================
name                    architecture (library)              weights file (where it is looked for)
======================  ==================================  ============================================
``clip-vit-b-32``       OpenAI CLIP ViT-B/32 (open_clip)    ``ViT-B-32.pt`` (``~/.cache/clip``)
``clip-vit-l-14``       OpenAI CLIP ViT-L/14 (open_clip)    ``ViT-L-14.pt`` (``~/.cache/clip``)
``dino-vits16``         DINO ViT-S/16 (timm)                ``dino_deitsmall16_pretrain.pth`` (torch hub)
``inception-v3-fid``    TF Inception-v3 2015-12-05 (ours)   ``weights-inception-2015-12-05-6726825d.pth``
                                                            or ``pt_inception-2015-12-05-6726825d.pth``
                                                            (torch hub)
``lpips-alex-v0.1``     LPIPS v0.1 AlexNet (torchvision +   ``alexnet-owt-7be5be79.pth`` (torch hub); the
                        the lpips package's lin layers)     lin layers ship inside the ``lpips`` package
======================  ==================================  ============================================

Files are looked for in ``--weights-dir`` (or ``$EDITBENCH_WEIGHTS_DIR``) first, then in the
library's own cache folder (``~/.cache/clip`` for CLIP, ``$TORCH_HOME/hub/checkpoints`` for the
rest). Nothing is ever downloaded while scoring: a missing file raises ``MissingWeightsError``
naming the file, where it was looked for and the command that fetches it,
``editbench weights download NAME`` (for a machine with network; then copy the file over).

Random-weight twins of each architecture (``random_backbone``) serve the reference tests and
``editbench perf metrics``; their results say "random weights" and carry no sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from benchmark.metrics.backbones.base import (Backbone, MissingWeightsError, combine_sha256,
                                              env_weights_dir, image_to_uint8_tensor, rgb, sha256_file)
from benchmark.metrics.backbones.inception import FIDInceptionV3
from benchmark.metrics.backbones.lpips_net import AlexTaps, LinLayers

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _torch_hub_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _clip_cache_dir() -> Path:
    return Path(os.path.expanduser("~/.cache/clip"))


@dataclass(frozen=True)
class WeightFile:
    names: tuple[str, ...]          # accepted file names, the first is the one downloaded
    url: str
    default_dir: str                # "clip" or "torch-hub"
    sha256_prefix: str = ""         # checked after a download where the publisher gives one
    extra: tuple[str, ...] = field(default=())

    def folder(self) -> Path:
        return _clip_cache_dir() if self.default_dir == "clip" else _torch_hub_dir()


WEIGHTS: dict[str, dict[str, WeightFile]] = {
    "clip-vit-b-32": {"model": WeightFile(
        ("ViT-B-32.pt",),
        "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73"
        "407c4526f58eba950af/ViT-B-32.pt", "clip",
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af")},
    "clip-vit-l-14": {"model": WeightFile(
        ("ViT-L-14.pt",),
        "https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6"
        "f7c2e0eca1737a03836/ViT-L-14.pt", "clip",
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836")},
    "dino-vits16": {"model": WeightFile(
        ("dino_deitsmall16_pretrain.pth",),
        "https://dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth",
        "torch-hub")},
    "inception-v3-fid": {"model": WeightFile(
        ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        "weights-inception-2015-12-05-6726825d.pth", "torch-hub", "6726825d")},
    "lpips-alex-v0.1": {"alexnet": WeightFile(
        ("alexnet-owt-7be5be79.pth",), "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "torch-hub", "7be5be79")},
}
STANDARD_NAMES = tuple(WEIGHTS)


def search_dirs(wf: WeightFile, weights_dir: str | Path | None) -> list[Path]:
    dirs = [Path(d) for d in (weights_dir, env_weights_dir()) if d]
    dirs.append(wf.folder())
    return list(dict.fromkeys(dirs))


def find_weight(name: str, part: str = "model", weights_dir: str | Path | None = None) -> Path:
    """The local file of ``name``'s weights, or ``MissingWeightsError`` saying how to get it."""
    wf = WEIGHTS[name][part]
    dirs = search_dirs(wf, weights_dir)
    for d in dirs:
        for fname in wf.names:
            if (d / fname).is_file():
                return d / fname
    raise MissingWeightsError(
        f"standard backbone {name}: weights file {wf.names[0]} not found (looked in "
        f"{', '.join(str(d) for d in dirs)}). Fetch it with `editbench weights download {name}` on "
        f"a machine with network and copy it into one of those folders (or pass --weights-dir), "
        f"or score with the embedded synth backbones (--backbones synth).")


def _damaged(name: str, path: Path, exc: BaseException) -> MissingWeightsError:
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0][:160]}" if lines else type(exc).__name__
    return MissingWeightsError(f"standard backbone {name}: {path} could not be loaded ({reason}); "
                               f"fetch it again with `editbench weights download {name}`")


def available(name: str, weights_dir: str | Path | None = None) -> bool:
    try:
        for part in WEIGHTS[name]:
            find_weight(name, part, weights_dir)
        return True
    except MissingWeightsError:
        return False


# --------------------------------------------------------------------------- CLIP
class CLIPBackbone(Backbone):
    """OpenAI CLIP through open_clip. Views: ``clip`` = CLIP's own preprocessing (resize the short
    side to 224, bicubic; centre crop 224; CLIP mean/std: what ``clip.load`` returns and MagicBrush
    uses), ``ip2p`` = InstructPix2Pix's (``F.interpolate`` of the [0, 1] image to 224x224, bicubic,
    ``align_corners=False``, no crop; CLIP mean/std). Text: OpenAI's BPE, 77 tokens with
    start/end markers; ``truncate=False`` raises for a longer text (``clip.tokenize``'s default),
    ``truncate=True`` cuts it keeping the end marker (``clip.tokenize(truncate=True)``)."""

    views = ("clip", "ip2p")
    has_text = True
    context_length = 77
    # fastest per image on the 2-core Intel Xeon (random weights, best of 2): ViT-L/14 520 ms at 4
    # against 608 at 1, 632 at 8 and 670 at 16; ViT-B/32 31 ms at 8 (32 at 16, 55 at 1)
    CPU_BATCH = {"clip-vit-l-14": 4, "clip-vit-b-32": 8}

    def __init__(self, model, name: str, sha256: str | None, device="cpu",
                 random_tag: str | None = None, image_size: int = 224):
        self.name = name
        self.sha256 = sha256
        self.cpu_batch_size = self.CPU_BATCH.get(name)
        super().__init__(device, random_tag)
        from open_clip.tokenizer import SimpleTokenizer

        self.model = model.to(self.device).eval().requires_grad_(False)
        self.size = image_size
        self.tokenizer = SimpleTokenizer()
        self._clip_tf = T.Compose([T.Resize(image_size, interpolation=T.InterpolationMode.BICUBIC),
                                   T.CenterCrop(image_size), T.ToTensor(),
                                   T.Normalize(CLIP_MEAN, CLIP_STD)])
        self._mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        self._std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    def preprocess(self, image: Image.Image, view: str) -> torch.Tensor:
        self.check_view(view)
        image = rgb(image)
        if view == "clip":
            return self._clip_tf(image)
        x = T.functional.to_tensor(image)[None]
        x = F.interpolate(x.float(), size=self.size, mode="bicubic", align_corners=False)
        return ((x - self._mean) / self._std)[0]

    @torch.no_grad()
    def forward_images(self, batch: torch.Tensor, view: str) -> torch.Tensor:
        return self.model.encode_image(batch.to(self.device)).float().cpu()

    def tokenize(self, texts: Sequence[str], truncate: bool) -> torch.Tensor:
        tok = self.tokenizer
        sot, eot = tok.encoder["<start_of_text>"], tok.encoder["<end_of_text>"]
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [sot] + tok.encode(text) + [eot]
            if len(ids) > self.context_length:
                if not truncate:
                    raise ValueError(f"text has {len(ids)} CLIP tokens, over the limit of "
                                     f"{self.context_length} (clip.tokenize without truncation): "
                                     f"{text[:60]!r}...")
                ids = ids[:self.context_length]
                ids[-1] = eot
            out[i, :len(ids)] = torch.tensor(ids)
        return out

    @torch.no_grad()
    def forward_texts(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens.to(self.device)).float().cpu()


_OPENCLIP_ARCH = {"clip-vit-b-32": "ViT-B-32", "clip-vit-l-14": "ViT-L-14"}


def load_clip(name: str, weights_dir=None, device="cpu") -> CLIPBackbone:
    path = find_weight(name, "model", weights_dir)
    import open_clip

    try:
        model = open_clip.load_openai_model(str(path), precision="fp32", device="cpu")
    except Exception as exc:  # noqa: BLE001 - a damaged file must name itself
        raise _damaged(name, path, exc) from None
    return CLIPBackbone(model, name, sha256_file(path), device)


def random_clip(name: str = "clip-vit-b-32", seed: int = 0, device="cpu") -> CLIPBackbone:
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.create_model(_OPENCLIP_ARCH[name], pretrained=None, force_quick_gelu=True)
    return CLIPBackbone(model, name, None, device, random_tag=f"seed{seed}")


# --------------------------------------------------------------------------- DINO
class DINOBackbone(Backbone):
    """DINO ViT-S/16. View ``dino`` (MagicBrush's script): resize the short side to 256 (bicubic),
    centre crop 224, ImageNet mean/std. Feature: the final layer's layer-normed CLS token (what
    the torch.hub ``dino_vits16`` model returns)."""

    views = ("dino",)
    cpu_batch_size = 4  # 31.5 ms per image at 4, 36 at 16, 41 at 1 (2-core Intel Xeon)

    def __init__(self, model, sha256: str | None, device="cpu", random_tag: str | None = None):
        self.name = "dino-vits16"
        self.sha256 = sha256
        super().__init__(device, random_tag)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self._tf = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC),
                              T.CenterCrop(224), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def preprocess(self, image: Image.Image, view: str) -> torch.Tensor:
        self.check_view(view)
        return self._tf(rgb(image))

    @torch.no_grad()
    def forward_images(self, batch: torch.Tensor, view: str) -> torch.Tensor:
        return self.model(batch.to(self.device)).float().cpu()


def _dino_architecture():
    import timm

    # DINO's ViT-S/16: 12 blocks, width 384, 6 heads, qkv bias, LayerNorm eps 1e-6; no head, the
    # output is the normed CLS token (global_pool="token").
    return timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0,
                             global_pool="token")


def load_dino(weights_dir=None, device="cpu") -> DINOBackbone:
    path = find_weight("dino-vits16", "model", weights_dir)
    model = _dino_architecture()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001
        raise _damaged("dino-vits16", path, exc) from None
    return DINOBackbone(model, sha256_file(path), device)


def random_dino(seed: int = 0, device="cpu") -> DINOBackbone:
    torch.manual_seed(seed)
    return DINOBackbone(_dino_architecture(), None, device, random_tag=f"seed{seed}")


# --------------------------------------------------------------------------- Inception (FID)
class InceptionBackbone(Backbone):
    """FID Inception-v3 (see ``inception.py``). View ``fid``: the uint8 RGB image as is; the
    TF1-style bilinear resize to 299 is part of the graph (done per image, so any size works)."""

    views = ("fid",)
    cpu_batch_size = 4  # 62 ms per image at 4, 72 at 16, 81 at 1 (2-core Intel Xeon)

    def __init__(self, model: FIDInceptionV3, sha256: str | None, device="cpu",
                 random_tag: str | None = None, name: str = "inception-v3-fid"):
        self.name = name
        self.sha256 = sha256
        super().__init__(device, random_tag)
        self.model = model.to(self.device).eval().requires_grad_(False)

    def preprocess(self, image: Image.Image, view: str) -> torch.Tensor:
        self.check_view(view)
        return FIDInceptionV3.prepare(image_to_uint8_tensor(image)[None])[0]

    @torch.no_grad()
    def forward_images(self, batch: torch.Tensor, view: str) -> torch.Tensor:
        return self.model.pool3(batch.to(self.device)).float().cpu()


def load_inception(weights_dir=None, device="cpu") -> InceptionBackbone:
    path = find_weight("inception-v3-fid", "model", weights_dir)
    model = FIDInceptionV3()
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    except Exception as exc:  # noqa: BLE001
        raise _damaged("inception-v3-fid", path, exc) from None
    return InceptionBackbone(model, sha256_file(path), device)


def random_inception(seed: int = 0, device="cpu") -> InceptionBackbone:
    torch.manual_seed(seed)
    model = FIDInceptionV3()
    # random BatchNorm statistics, so the random network's features are not degenerate
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    return InceptionBackbone(model, None, device, random_tag=f"seed{seed}")


# --------------------------------------------------------------------------- LPIPS
class LPIPSBackbone(Backbone):
    """LPIPS feature taps (see ``lpips_net.py``). View ``lpips``: ToTensor scaled to [-1, 1]
    (``2 x - 1``), at the image's own size. ``lin`` holds the per-tap weights the metric applies."""

    views = ("lpips",)
    spatial_views = ("lpips",)
    cpu_batch_size = 8  # 4.7 ms per image at 8, 5.5 at 16, 6.1 at 1 (2-core Intel Xeon)

    def __init__(self, taps: torch.nn.Module, lin: LinLayers, name: str, sha256: str | None,
                 device="cpu", random_tag: str | None = None, calibrated: bool = True):
        self.name = name
        self.sha256 = sha256
        super().__init__(device, random_tag)
        self.taps = taps.to(self.device).eval().requires_grad_(False)
        self.lin = lin.eval().requires_grad_(False)
        self.calibrated = calibrated

    def preprocess(self, image: Image.Image, view: str) -> torch.Tensor:
        self.check_view(view)
        return T.functional.to_tensor(rgb(image)) * 2 - 1

    @torch.no_grad()
    def forward_images(self, batch: torch.Tensor, view: str) -> list[torch.Tensor]:
        return [t.float().cpu() for t in self.taps(batch.to(self.device))]


def lpips_lin_file() -> Path:
    import lpips

    return Path(lpips.__file__).resolve().parent / "weights" / "v0.1" / "alex.pth"


def load_lpips(weights_dir=None, device="cpu") -> LPIPSBackbone:
    import torchvision

    path = find_weight("lpips-alex-v0.1", "alexnet", weights_dir)
    lin_path = lpips_lin_file()
    alex = torchvision.models.alexnet()
    try:
        alex.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001
        raise _damaged("lpips-alex-v0.1", path, exc) from None
    sha = combine_sha256({"alexnet": sha256_file(path), "lin": sha256_file(lin_path)})
    return LPIPSBackbone(AlexTaps(alex.features), LinLayers.from_lpips_file(lin_path),
                         "lpips-alex-v0.1", sha, device)


def random_lpips(seed: int = 0, device="cpu") -> LPIPSBackbone:
    """Random AlexNet with the real v0.1 lin layers (they ship with the lpips package)."""
    import torchvision

    torch.manual_seed(seed)
    alex = torchvision.models.alexnet()
    return LPIPSBackbone(AlexTaps(alex.features), LinLayers.from_lpips_file(lpips_lin_file()),
                         "lpips-alex-v0.1", None, device, random_tag=f"seed{seed}")


# --------------------------------------------------------------------------- entry points
@lru_cache(maxsize=None)
def load_standard(name: str, weights_dir: str | None = None, device: str = "cpu") -> Backbone:
    if name in _OPENCLIP_ARCH:
        return load_clip(name, weights_dir, device)
    if name == "dino-vits16":
        return load_dino(weights_dir, device)
    if name == "inception-v3-fid":
        return load_inception(weights_dir, device)
    if name == "lpips-alex-v0.1":
        return load_lpips(weights_dir, device)
    raise KeyError(f"unknown standard backbone {name!r}; known: {', '.join(STANDARD_NAMES)}")


@lru_cache(maxsize=None)
def random_backbone(name: str, seed: int = 0, device: str = "cpu") -> Backbone:
    """The architecture of a standard backbone with random weights (tests, timing); built once
    per process and argument set (backbones are read-only)."""
    if name in _OPENCLIP_ARCH:
        return random_clip(name, seed, device)
    return {"dino-vits16": random_dino, "inception-v3-fid": random_inception,
            "lpips-alex-v0.1": random_lpips}[name](seed, device)


# --------------------------------------------------------------------------- download command
def download(name: str, weights_dir: str | Path | None = None, opener=urllib.request.urlopen) -> list[Path]:
    """Fetch ``name``'s files into ``weights_dir`` (default: the library cache folder)."""
    got = []
    for wf in WEIGHTS[name].values():
        folder = Path(weights_dir) if weights_dir else wf.folder()
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / wf.names[0]
        if dest.is_file():
            got.append(dest)
            continue
        tmp = dest.with_name(dest.name + ".part")
        h = hashlib.sha256()
        with opener(wf.url) as src, open(tmp, "wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if wf.sha256_prefix and not h.hexdigest().startswith(wf.sha256_prefix):
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"{wf.url}: sha256 {h.hexdigest()} does not match the published "
                               f"{wf.sha256_prefix}")
        os.replace(tmp, dest)
        got.append(dest)
    return got


def cmd_weights(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name in STANDARD_NAMES:
            state = "present" if available(name, args.weights_dir) else "missing"
            files = ", ".join(wf.names[0] for wf in WEIGHTS[name].values())
            print(f"{name:18s} {state:8s} {files}")
        return 0
    names = args.names or list(STANDARD_NAMES)
    unknown = [n for n in names if n not in WEIGHTS]
    if unknown:
        raise ValueError(f"unknown standard backbone(s) {', '.join(unknown)}; known: "
                         f"{', '.join(STANDARD_NAMES)}")
    for name in names:
        try:
            paths = download(name, args.weights_dir)
        except OSError as exc:
            print(f"editbench: error: could not download {name}: {exc}", file=sys.stderr)
            return 1
        for p in paths:
            print(f"{name}: {p}")
    return 0


def add_cli(subparsers) -> None:
    """``editbench weights {download,list} [NAME ...] [--weights-dir DIR]``."""
    p = subparsers.add_parser("weights", help="fetch or list the standard metric backbones' weights")
    p.add_argument("action", choices=["download", "list"])
    p.add_argument("names", nargs="*", help=f"backbones (default: all): {', '.join(STANDARD_NAMES)}")
    p.add_argument("--weights-dir", default=None, help="folder to write to / look in (default: each "
                   "library's own cache folder)")
    p.set_defaults(func=cmd_weights)
