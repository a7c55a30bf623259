"""Train the synth metric backbones and print their quality bars: ``editbench train-backbones``.

Each network trains for a fixed number of steps from a fixed seed on one CPU thread (a few minutes
each; synth-dino about 40), is saved as float16 safetensors next to this file, reloaded from that
file, and evaluated; ``manifest.json`` records the sha256, the exact command, the seed, the step
count and the measured quality of each file. Quality bars (checked on the reloaded float16 weights):

* ``synth-clip``: image -> caption retrieval top-1 among the 100 captions of 100 synth test-split
  source images (20 per variant), >= 90%.
* ``synth-dino``: weighted 20-NN (cosine, temperature 0.07; DINO's protocol) shape accuracy on 1000
  held-out single-object scenes against a bank of 3000 single-object scenes, >= 90%.
* ``synth-classifier``: object accuracy (kind and colour of an object in its grid cell both right)
  on 2000 held-out scenes, >= 95%.

Data: ``synth.random_scene`` scenes and synth train-split samples; evaluation scenes come from
seeds the training never draws, and the retrieval test uses the test split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark.metrics.backbones import synth as S

BARS = {"synth-clip": ("retrieval_top1", 0.90), "synth-dino": ("knn_shape_accuracy", 0.90),
        "synth-classifier": ("object_accuracy", 0.95)}
DEFAULT_STEPS = {"synth-clip": 1200, "synth-dino": 2000, "synth-classifier": 2200}
SEED = 0
_MEAN = 0.5
_STD = 0.5


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) -> normalised float (N, 3, 64, 64), as the synth preprocessing does."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)
    return (x - _MEAN) / _STD


# --------------------------------------------------------------------------- data
def render_scenes(seed: int, n: int, n_shapes=None, masks: bool = False):
    """(uint8 images N x 64 x 64 x 3, scenes[, per-pixel kind and colour labels N x 64 x 64])."""
    from benchmark.datasets import synth
    from benchmark.datasets.synth.scene import COLOURS, KINDS

    rng = np.random.default_rng(seed)
    scenes = [synth.random_scene(rng, n_shapes=n_shapes) for _ in range(n)]
    images = np.empty((n, S.INPUT_SIZE, S.INPUT_SIZE, 3), np.uint8)
    kinds = np.zeros((n, S.INPUT_SIZE, S.INPUT_SIZE), np.uint8) if masks else None
    colours = np.zeros((n, S.INPUT_SIZE, S.INPUT_SIZE), np.uint8) if masks else None
    for i, sc in enumerate(scenes):
        img, cov = synth.render(sc, S.INPUT_SIZE)
        images[i] = img
        if masks:
            for j, sh in enumerate(sc.shapes):
                inside = cov[j] > 0.5
                kinds[i][inside] = KINDS.index(sh.kind) + 1
                colours[i][inside] = COLOURS.index(sh.colour) + 1
    if masks:
        return images, scenes, kinds, colours
    return images, scenes


def caption_pairs(per_variant: int, start: int = 0, split: str = "train"):
    """(uint8 images, captions): source + input caption and target + goal caption of synth samples."""
    from benchmark.datasets import synth

    images, captions = [], []
    for variant in synth.VARIANTS:
        for s in synth.iter_samples(variant, split, size=S.INPUT_SIZE, start=start,
                                    stop=start + per_variant):
            for img, cap in ((s.source, s.input_caption), (s.target, s.goal_caption)):
                images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
                captions.append(cap)
    return np.stack(images), captions


def retrieval_set():
    """The 100 test-split source images (20 per variant) and their input captions."""
    from benchmark.datasets import synth

    imgs, caps, goal_imgs, goal_caps = [], [], [], []
    for variant in synth.VARIANTS:
        for s in synth.load(variant, "test", size=S.INPUT_SIZE)[:20]:
            imgs.append(np.asarray(s.source, dtype=np.uint8))
            caps.append(s.input_caption)
            goal_imgs.append(np.asarray(s.target, dtype=np.uint8))
            goal_caps.append(s.goal_caption)
    return np.stack(imgs), caps, np.stack(goal_imgs), goal_caps


def cell_labels(scenes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from benchmark.datasets.synth.scene import BACKGROUND_KINDS, COLOURS, KINDS

    kinds = np.zeros((len(scenes), S.N_CELLS), np.int64)  # 0 = empty
    colours = np.zeros((len(scenes), S.N_CELLS), np.int64)
    bgs = np.zeros(len(scenes), np.int64)
    for i, sc in enumerate(scenes):
        bgs[i] = BACKGROUND_KINDS.index(sc.background.kind)
        for sh in sc.shapes:
            kinds[i, sh.cell] = KINDS.index(sh.kind) + 1
            colours[i, sh.cell] = COLOURS.index(sh.colour) + 1
    return kinds, colours, bgs


# --------------------------------------------------------------------------- helpers
def _schedule(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * t))


@torch.no_grad()
def _batched(fn, x: torch.Tensor, bs: int = 256) -> torch.Tensor:
    return torch.cat([fn(x[i:i + bs]) for i in range(0, len(x), bs)])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- CLIP
def train_clip(steps: int, seed: int = SEED, batch: int = 128):
    from benchmark.datasets import synth

    g = torch.Generator().manual_seed(seed)
    _log("synth-clip: generating caption pairs ...")
    images, captions = caption_pairs(per_variant=4000)
    # the vocabulary: every word of train-split captions, instructions and expressive texts
    vocab_texts = list(captions)
    for variant in synth.VARIANTS:
        for s in synth.iter_samples(variant, "train", size=8, stop=600):
            vocab_texts += [s.instruction, s.expressive or ""]
    vocab = S.build_vocab(vocab_texts)
    tok = S.WordTokenizer(vocab)
    tokens = tok(captions, truncate=True)
    model = S.SynthCLIP(len(vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    n = len(images)
    _log(f"synth-clip: {n} pairs, vocabulary {len(vocab)}, {steps} steps of {batch}")
    t0 = time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _schedule(step, steps, 2e-3, 100)
        idx = torch.randint(0, n, (batch,), generator=g)
        x = to_input(images[idx.numpy()])
        img = F.normalize(model.encode_image(x), dim=-1)
        txt = F.normalize(model.encode_text(tokens[idx]), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T
        # identical captions in a batch are positives of each other
        same = (tokens[idx][:, None, :] == tokens[idx][None, :, :]).all(-1).float()
        target = same / same.sum(1, keepdim=True)
        loss = 0.5 * (-(target * logits.log_softmax(1)).sum(1).mean()
                      - (target * logits.log_softmax(0)).sum(0).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            _log(f"  step {step:5d} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
    model.eval()
    return model, {"vocab": json.dumps(vocab), "context_length": str(S.CONTEXT_LENGTH)}


@torch.no_grad()
def eval_clip(model: S.SynthCLIP, meta: dict[str, str]) -> dict[str, float]:
    tok = S.WordTokenizer(json.loads(meta["vocab"]), int(meta["context_length"]))
    imgs, caps, goal_imgs, goal_caps = retrieval_set()
    out = {}
    for name, im, cp in (("retrieval_top1", imgs, caps), ("retrieval_top1_targets", goal_imgs, goal_caps)):
        fi = F.normalize(_batched(model.encode_image, to_input(im)), dim=-1)
        ft = F.normalize(model.encode_text(tok(cp, truncate=True)), dim=-1)
        sim = fi @ ft.T
        out[name] = float((sim.argmax(1) == torch.arange(len(cp))).float().mean())
        out[name.replace("top1", "text_to_image_top1")] = float(
            (sim.argmax(0) == torch.arange(len(cp))).float().mean())
    # does the target image prefer its goal caption over its input caption (edits at caption level)?
    _, in_caps, _, _ = retrieval_set()
    fg = F.normalize(_batched(model.encode_image, to_input(goal_imgs)), dim=-1)
    t_goal = F.normalize(model.encode_text(tok(goal_caps, truncate=True)), dim=-1)
    t_in = F.normalize(model.encode_text(tok(in_caps, truncate=True)), dim=-1)
    differ = torch.tensor([a != b for a, b in zip(goal_caps, in_caps)])
    better = ((fg * t_goal).sum(1) > (fg * t_in).sum(1))[differ]
    out["edit_pair_accuracy"] = float(better.float().mean())
    return out


# --------------------------------------------------------------------------- DINO
def _augment(x: torch.Tensor, out_size: int, scale: tuple[float, float], g: torch.Generator,
             jitter: bool = True) -> torch.Tensor:
    """Random resized crop (+ flip) to ``out_size``, colour jitter and random grayscale; x in [0,1]."""
    n = x.shape[0]
    area = torch.empty(n).uniform_(*scale, generator=g)
    logr = torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g)
    ratio = logr.exp()
    w = (area * ratio).sqrt().clamp(max=1.0)
    h = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=g) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (n, 3, out_size, out_size), align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if jitter:
        b = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
        c = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
        s = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
        apply = (torch.rand(n, 1, 1, 1, generator=g) < 0.8).float()
        y2 = y * b
        mean = y2.mean(dim=(1, 2, 3), keepdim=True)
        y2 = (y2 - mean) * c + mean
        grey = y2.mean(dim=1, keepdim=True)
        y2 = (y2 - grey) * s + grey
        y = apply * y2 + (1 - apply) * y
        gs = (torch.rand(n, 1, 1, 1, generator=g) < 0.2).float()
        y = gs * y.mean(dim=1, keepdim=True).expand_as(y) + (1 - gs) * y
    return y.clamp(0, 1)


EASY_VIEWS = {"zoom": (3.0, 3.0), "background": "solid", "recolour": True, "jitter": 0.1}
SCENE_VIEWS = {"zoom": (1.0, 1.5), "background": "any", "recolour": True, "jitter": 0.1}


def render_object_view(scene, rng: np.random.Generator, zoom=(1.0, 1.0), background: str = "keep",
                       recolour: bool = False, jitter: float = 0.0) -> np.ndarray:
    """One view of a single-object scene, re-rendered (uint8 64 x 64 x 3): zoomed by a factor drawn
    from ``zoom`` onto the object (window centre jittered by ``jitter`` of its width), over a freshly
    drawn background (``"solid"``, ``"any"``) or the scene's own (``"keep"``), the object recoloured
    (to a colour that contrasts with the background) if ``recolour``. The synth analogue of
    DINO's crops and photometric augmentations: a view keeps the object's kind and nothing else."""
    import dataclasses

    from benchmark.datasets import synth
    from benchmark.datasets.synth import scene as SC

    bg = {"solid": lambda: SC.random_background(rng, kinds=("solid",)),
          "any": lambda: SC.random_background(rng), "keep": lambda: scene.background}[background]()
    shapes = list(scene.shapes)
    if recolour:
        far = [c for c in SC.COLOURS
               if all(SC.colour_distance(c, b) >= SC.MIN_CONTRAST for b in bg.colours)]
        shapes = [dataclasses.replace(s, colour=far[rng.integers(len(far))]) for s in shapes]
    scene = dataclasses.replace(scene, background=bg, shapes=type(scene.shapes)(shapes))
    z, obj = float(rng.uniform(*zoom)), scene.shapes[0]
    view = None
    if z > 1.0:
        view = SC.View(z, obj.x + rng.uniform(-jitter, jitter) / z,
                       obj.y + rng.uniform(-jitter, jitter) / z)
    return synth.render(scene, S.INPUT_SIZE, view=view)[0]


def object_view_batch(scenes, policy: dict, n: int, rng: np.random.Generator, g: torch.Generator,
                      augment: bool = True) -> torch.Tensor:
    """``n`` views of every scene under ``policy`` (``render_object_view``'s keywords), each batch
    passed through ``_augment`` (crop, flip, colour jitter, grayscale) unless ``augment`` is off,
    concatenated view by view and normalised as the synth backbones' input."""
    out = []
    for _ in range(n):
        v = torch.from_numpy(np.stack([render_object_view(sc, rng, **policy) for sc in scenes]))
        v = v.permute(0, 3, 1, 2).float() / 255
        out.append(_augment(v, S.INPUT_SIZE, (0.6, 1.0), g) if augment else v)
    return (torch.cat(out) - _MEAN) / _STD


def dino_loss(teacher_probs: Sequence[torch.Tensor], student_logits: Sequence[torch.Tensor],
              student_temp: float = 0.1) -> torch.Tensor:
    """DINO's cross-view loss: the mean over (teacher view i, student view j != i) of the cross-entropy
    H(P_t(i), softmax(s_j / student_temp)); the teacher's views come first among the student's."""
    loss, terms = 0.0, 0
    for iq, q in enumerate(teacher_probs):
        for iv, v in enumerate(student_logits):
            if iv == iq:
                continue
            loss = loss + (-q * F.log_softmax(v / student_temp, dim=-1)).sum(-1).mean()
            terms += 1
    return loss / terms


@torch.no_grad()
def ema_update(students: Sequence[nn.Module], teachers: Sequence[nn.Module], momentum: float) -> None:
    """DINO's teacher update: teacher <- momentum * teacher + (1 - momentum) * student."""
    for s_mod, t_mod in zip(students, teachers):
        for ps, pt in zip(s_mod.parameters(), t_mod.parameters()):
            pt.mul_(momentum).add_(ps.detach(), alpha=1 - momentum)


def train_dino(steps: int, seed: int = SEED, batch: int = 64, n_student: int = 2,
               out_dim: int = 256, lr: float = 5e-4, monitor=None,
               teacher_views: dict = EASY_VIEWS, student_views: dict = SCENE_VIEWS):
    """DINO on ``SynthDINO`` (edge-map input): student/teacher (EMA, momentum 0.996 -> 1, cosine),
    centring (0.9) and sharpening (teacher 0.04, student 0.1), prototypes frozen for the first 50
    steps, AdamW (weight decay 0.04), gradient clip 3, lr warm-up then cosine. Each single-object
    scene gives two views under ``teacher_views`` (zoomed onto the object over a solid background:
    what DINO's teacher sees, global views) that both networks see, and ``n_student`` views under
    ``student_views`` (at the scale of a whole scene, over any background) that only the student
    sees, as DINO's local crops; every view then gets ``_augment``'s crop, flip, colour jitter and
    grayscale. No labels are used. The teacher is the network kept (as DINO's)."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed + 13)
    from benchmark.datasets import synth

    srng = np.random.default_rng(seed + 11)
    scenes = [synth.random_scene(srng, n_shapes=1) for _ in range(8000)]
    student, teacher = S.SynthDINO(), S.SynthDINO()
    width = student.trunk.out_channels
    s_head, t_head = S.DINOHead(width, out_dim), S.DINOHead(width, out_dim)
    teacher.load_state_dict(student.state_dict())
    t_head.load_state_dict(s_head.state_dict())
    for p in list(teacher.parameters()) + list(t_head.parameters()):
        p.requires_grad_(False)
    params = list(student.parameters()) + list(s_head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.04)
    center = torch.zeros(1, out_dim)
    _log(f"synth-dino: {len(scenes)} scenes, {steps} steps of {batch} (2 teacher + {n_student} "
         "student-only views)")
    t0 = time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _schedule(step, steps, lr, 50)
        momentum = 1 - (1 - 0.996) * (math.cos(math.pi * step / steps) + 1) / 2
        chosen = [scenes[i] for i in torch.randint(0, len(scenes), (batch,), generator=g).tolist()]
        x = object_view_batch(chosen, teacher_views, 2, rng, g)
        with torch.no_grad():
            t_out = t_head(teacher(x))
            t_prob = F.softmax((t_out - center) / 0.04, dim=-1).chunk(2)
        s_out = s_head(student(x)).chunk(2)
        if n_student:
            extra = object_view_batch(chosen, student_views, n_student, rng, g)
            s_out = s_out + s_head(student(extra)).chunk(n_student)
        loss = dino_loss(t_prob, s_out)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 3.0)
        if step < 50:  # DINO keeps the prototypes fixed at first
            for p in s_head.last.parameters():
                p.grad = None
        opt.step()
        ema_update((student, s_head), (teacher, t_head), momentum)
        center = center * 0.9 + t_out.mean(0, keepdim=True) * 0.1
        if step % 100 == 0 or step == steps - 1:
            _log(f"  step {step:5d} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
            if monitor is not None:
                teacher.eval()
                monitor(step, teacher)
                teacher.train()
    teacher.eval()
    return teacher, {}


@torch.no_grad()
def knn_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
                 test_y: torch.Tensor, k: int = 20, temperature: float = 0.07) -> float:
    """DINO's weighted k-NN classifier on l2-normalised features."""
    train_f, test_f = F.normalize(train_f, dim=1), F.normalize(test_f, dim=1)
    n_cls = int(max(train_y.max(), test_y.max())) + 1
    sim = test_f @ train_f.T
    top, idx = sim.topk(k, dim=1)
    votes = torch.zeros(len(test_f), n_cls)
    votes.scatter_add_(1, train_y[idx], (top / temperature).exp())
    return float((votes.argmax(1) == test_y).float().mean())


@torch.no_grad()
def eval_dino(model: S.SynthDINO, meta=None) -> dict[str, float]:
    from benchmark.datasets.synth.scene import KINDS

    bank, bank_sc = render_scenes(90_001, 3000, n_shapes=1)
    test, test_sc = render_scenes(90_002, 1000, n_shapes=1)
    yb = torch.tensor([KINDS.index(s.shapes[0].kind) for s in bank_sc])
    yt = torch.tensor([KINDS.index(s.shapes[0].kind) for s in test_sc])
    fb = _batched(model, to_input(bank))
    ft = _batched(model, to_input(test))
    return {"knn_shape_accuracy": knn_accuracy(fb, yb, ft, yt)}


# --------------------------------------------------------------------------- classifier
def train_classifier(steps: int, seed: int = SEED, batch: int = 128):
    """Cross-entropy on the per-cell kind/colour and background labels, plus an auxiliary dense
    loss (per-pixel kind and colour at the 16x16 and 8x8 stages, from the renderer's coverage
    masks; training-only 1x1 heads, not shipped): without it a small net learns colours quickly
    but takes far longer to find the shapes at all."""
    g = torch.Generator().manual_seed(seed)
    _log("synth-classifier: rendering scenes ...")
    images, scenes, pix_k, pix_c = render_scenes(seed + 21, 30000, masks=True)
    kinds, colours, bgs = (torch.from_numpy(a) for a in cell_labels(scenes))
    pix_k, pix_c = torch.from_numpy(pix_k).long(), torch.from_numpy(pix_c).long()
    model = S.SynthClassifier()
    w1, w3 = S.TRUNK_WIDTHS[1], S.TRUNK_WIDTHS[3]
    aux = nn.ModuleList([nn.Conv2d(w1, S.N_KINDS + 1, 1), nn.Conv2d(w1, S.N_COLOURS + 1, 1),
                         nn.Conv2d(w3, S.N_KINDS + 1, 1), nn.Conv2d(w3, S.N_COLOURS + 1, 1)])
    opt = torch.optim.AdamW(list(model.parameters()) + list(aux.parameters()), lr=2e-3,
                            weight_decay=0.05)
    n = len(images)
    _log(f"synth-classifier: {n} scenes, {steps} steps of {batch}")
    t0 = time.time()

    def down(lab: torch.Tensor, size: int) -> torch.Tensor:
        return F.interpolate(lab[:, None].float(), size=size, mode="nearest")[:, 0].long()

    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _schedule(step, steps, 2e-3, 100)
        idx = torch.randint(0, n, (batch,), generator=g)
        x = to_input(images[idx.numpy()])
        stages = model.trunk(x)
        cells = F.relu(model.cell(S.grid_cells(stages[-1])))
        k = model.kind_head(cells).flatten(2).transpose(1, 2)
        c = model.colour_head(cells).flatten(2).transpose(1, 2)
        b = model.background_head(stages[-1].mean(dim=(2, 3)))
        loss = (F.cross_entropy(k.reshape(-1, k.shape[-1]), kinds[idx].reshape(-1))
                + F.cross_entropy(c.reshape(-1, c.shape[-1]), colours[idx].reshape(-1))
                + 0.5 * F.cross_entropy(b, bgs[idx]))
        pk, pc = pix_k[idx], pix_c[idx]
        dense = (F.cross_entropy(aux[0](stages[1]), down(pk, 16)) + F.cross_entropy(aux[1](stages[1]), down(pc, 16))
                 + F.cross_entropy(aux[2](stages[3]), down(pk, 8)) + F.cross_entropy(aux[3](stages[3]), down(pc, 8)))
        loss = loss + dense
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            _log(f"  step {step:5d} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
    model.eval()
    return model, {}


@torch.no_grad()
def eval_classifier(model: S.SynthClassifier, meta=None) -> dict[str, float]:
    images, scenes = render_scenes(90_003, 2000)
    kinds, colours, bgs = (torch.from_numpy(a) for a in cell_labels(scenes))
    outs = [model(to_input(images[i:i + 256])) for i in range(0, len(images), 256)]
    k = torch.cat([o[0] for o in outs]).argmax(-1)
    c = torch.cat([o[1] for o in outs]).argmax(-1)
    b = torch.cat([o[2] for o in outs]).argmax(-1)
    occupied = kinds > 0
    both = (k == kinds) & (c == colours)
    return {"object_accuracy": float(both[occupied].float().mean()),
            "kind_accuracy": float((k == kinds)[occupied].float().mean()),
            "colour_accuracy": float((c == colours)[occupied].float().mean()),
            "cell_accuracy": float(both.float().mean()),
            "background_accuracy": float((b == bgs).float().mean())}


TRAINERS = {"synth-clip": (train_clip, eval_clip), "synth-dino": (train_dino, eval_dino),
            "synth-classifier": (train_classifier, eval_classifier)}


# --------------------------------------------------------------------------- command
def run(which: Sequence[str], steps: dict[str, int] | None = None, out_dir: Path | None = None,
        seed: int = SEED, eval_only: bool = False, command: str | None = None,
        threads: int = 1) -> dict:
    # the thread count is part of the recipe: CPU kernels may sum in another order with more threads
    torch.set_num_threads(threads)
    out_dir = Path(out_dir) if out_dir else S.HERE
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    report = {}
    for name in which:
        train_fn, eval_fn = TRAINERS[name]
        path = out_dir / S.FILES[name]
        n_steps = (steps or {}).get(name, DEFAULT_STEPS[name])
        t0 = time.time()
        if not eval_only:
            torch.manual_seed(seed)
            model, meta = train_fn(n_steps, seed)
            S.save_model(model, path, {"name": name, "seed": str(seed), "steps": str(n_steps),
                                       **meta})
        seconds = time.time() - t0
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; train it first")
        state, meta = S._load_state(path)
        model = {"synth-clip": lambda: S.SynthCLIP(len(json.loads(meta["vocab"]))),
                 "synth-dino": S.SynthDINO, "synth-classifier": S.SynthClassifier}[name]()
        model.load_state_dict(state)
        model.eval()
        quality = eval_fn(model, meta)
        key, bar = BARS[name]
        ok = quality[key] >= bar
        report[name] = {"quality": quality, "bar": {key: bar}, "passed": ok}
        _log(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in quality.items())
             + f"  [bar {key} >= {bar}: {'PASS' if ok else 'FAIL'}]")
        entry = manifest.get(name, {})
        if not eval_only:
            entry = {"file": S.FILES[name], "sha256": sha256_file(path),
                     "bytes": path.stat().st_size, "seed": seed, "steps": n_steps,
                     "command": command or f"editbench train-backbones --only {name}",
                     "train_seconds": round(seconds, 1), "torch": torch.__version__,
                     "threads": threads}
        entry.update({"quality": quality, "bar": {key: bar}, "passed": ok})
        manifest[name] = entry
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return report


def cmd_train_backbones(args: argparse.Namespace) -> int:
    which = args.only.split(",") if args.only else list(TRAINERS)
    unknown = [w for w in which if w not in TRAINERS]
    if unknown:
        raise ValueError(f"unknown synth backbone(s) {unknown}; known: {', '.join(TRAINERS)}")
    steps = {}
    for item in args.steps or []:
        name, _, n = item.partition("=")
        steps[name] = int(n)
    command = "editbench train-backbones" + (f" --only {args.only}" if args.only else "")
    command += "".join(f" --steps {s}" for s in args.steps or [])
    command += f" --threads {args.threads}" if args.threads != 1 else ""
    report = run(which, steps, Path(args.output_dir) if args.output_dir else None,
                 seed=args.seed, eval_only=args.eval_only, command=command, threads=args.threads)
    print(f"{'backbone':18s} {'bar':32s} {'measured':>9s}  result")
    for name, r in report.items():
        (key, bar), = r["bar"].items()
        print(f"{name:18s} {key + ' >= ' + str(bar):32s} {r['quality'][key]:9.4f}  "
              f"{'PASS' if r['passed'] else 'FAIL'}")
    return 0 if all(r["passed"] for r in report.values()) else 1


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("train-backbones", help="train the synth metric backbones (CPU, one "
                              "thread unless --threads) and print their quality bars")
    p.add_argument("--only", default=None, help="comma-separated subset of "
                   + ", ".join(TRAINERS))
    p.add_argument("--steps", action="append", metavar="NAME=N", help="override a step count")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--output-dir", default=None, help="where to write the weights and manifest "
                   "(default: the package's backbones folder)")
    p.add_argument("--eval-only", action="store_true", help="only evaluate the existing files")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (recorded in the manifest)")
    p.set_defaults(func=cmd_train_backbones)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(prog="python -m benchmark.metrics.backbones.train")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli(sub)
    a = parser.parse_args(["train-backbones", *sys.argv[1:]])
    sys.exit(a.func(a))
