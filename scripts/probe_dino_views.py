"""Can a view-invariance objective find shape in the synth world at all? (dev aid for synth-dino)

    python scripts/probe_dino_views.py [--loss dino|simclr|supervised] [--steps 300]
        [--views '{"zoom": [3, 3], "background": "solid", "recolour": true, "jitter": 0.1}']
        [--then VIEWS] [--n-student K --student-views VIEWS] [--momentum 0.996] [--lr 5e-4] [--out-dim 256] [--no-augment] [--edges P] [--edge-eval]

Trains the synth trunk (``Trunk``, max-pooled) on single-object scenes, two views per scene, each
re-rendered from the scene under ``--views`` (``train.render_object_view``): zoomed on the object (``zoom`` range, centre jittered
by ``jitter`` of the window), over a freshly drawn background (``"solid"``, ``"any"``, or the
scene's own with ``"keep"``), with the object recoloured per view; then, unless
``--no-augment``, the DINO random resized crop, flip, colour jitter and grayscale of
``train._augment``; then, with probability ``--edges`` per view, the edge map (``synth.edge_map``: a
colour- and polarity-blind view, Sobel magnitude); ``--edge-eval`` scores the k-NN on edge maps too.
``--n-student K --student-views VIEWS`` adds K views that only the DINO student sees (the
teacher sees only the two ``--views`` views, as DINO's teacher sees only global crops).
``--then`` gives the view policy of the second half of the run (a curriculum). The loss is
DINO's (the loop of ``train.train_dino``), SimCLR's InfoNCE on the head's bottleneck, or, as the
ceiling, cross-entropy on the object's kind (labels). Every 100 steps
it prints the teacher's entropy and the weighted 20-NN shape accuracy both in the view domain and
on the bar's scenes (1x, own background). docs/synth-backbones.md's "easiest form" figures come from it;
the shipped synth-dino (``train.train_dino``) is its zoomed-teacher edge-map run.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark.datasets import synth
from benchmark.datasets.synth import scene as SC
from benchmark.metrics.backbones import synth as S
from benchmark.metrics.backbones.synth import edge_map
from benchmark.metrics.backbones.train import (_schedule, dino_loss, ema_update, knn_accuracy,
                                               object_view_batch, render_object_view, to_input)


class MaxPooled(nn.Module):
    def __init__(self, edge_eval: bool = False):
        super().__init__()
        self.trunk = S.Trunk()
        self.edge_eval = edge_eval

    def forward(self, x):
        if self.edge_eval and not self.training:
            x = edge_map(x)
        return self.trunk(x)[-1].amax(dim=(2, 3))


def labelled(seed, n, **views):
    rng = np.random.default_rng(seed)
    scenes = [synth.random_scene(rng, n_shapes=1) for _ in range(n)]
    return (np.stack([render_object_view(s, rng, **views) for s in scenes]),
            torch.tensor([SC.KINDS.index(s.shapes[0].kind) for s in scenes]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loss", default="dino", choices=("dino", "simclr", "supervised"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--views", default='{"zoom": [3, 3], "background": "solid", "recolour": true, "jitter": 0.1}')
    p.add_argument("--student-views", default=None, help="view policy (JSON) of --n-student extra views only the student sees")
    p.add_argument("--n-student", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--then", default=None, help="views (JSON) for the second half of the run: a curriculum")
    p.add_argument("--momentum", type=float, default=0.996, help="teacher EMA momentum at step 0 (cosine to 1)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--out-dim", type=int, default=256)
    p.add_argument("--teacher-temp", type=float, default=0.04)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--edges", type=float, default=0.0, help="probability of the edge-map view")
    p.add_argument("--edge-eval", action="store_true", help="k-NN on edge maps")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    views = json.loads(a.views)
    evals = {"view domain": (labelled(1, 1500, **views), labelled(2, 500, **views)),
             "bar scenes": (labelled(90_001, 1500), labelled(90_002, 500))}

    @torch.no_grad()
    def knn(net):
        net.eval()
        out = {k: round(knn_accuracy(net(to_input(bi)), by, net(to_input(ti)), ty), 3)
               for k, ((bi, by), (ti, ty)) in evals.items()}
        net.train()
        return out

    g, rng = torch.Generator().manual_seed(0), np.random.default_rng(13)
    srng = np.random.default_rng(11)
    scenes = [synth.random_scene(srng, n_shapes=1) for _ in range(8000)]
    student, teacher = MaxPooled(a.edge_eval), MaxPooled(a.edge_eval)
    s_head, t_head = S.DINOHead(128, a.out_dim), S.DINOHead(128, a.out_dim)
    classifier = nn.Linear(128, len(SC.KINDS))
    teacher.load_state_dict(student.state_dict())
    t_head.load_state_dict(s_head.state_dict())
    for q in list(teacher.parameters()) + list(t_head.parameters()):
        q.requires_grad_(False)
    params = list(student.parameters()) + list(s_head.parameters()) + list(classifier.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.04)
    center = torch.zeros(1, a.out_dim)
    student_views = json.loads(a.student_views) if a.student_views else views

    def make_views(chosen, policy, n):
        x = object_view_batch(chosen, policy, n, rng, g, augment=not a.no_augment)
        if a.edges > 0:
            as_edges = (torch.rand(len(x), 1, 1, 1, generator=g) < a.edges).float()
            x = as_edges * edge_map(x) + (1 - as_edges) * x
        return x

    t0 = time.time()
    for step in range(a.steps + 1):
        for group in opt.param_groups:
            group["lr"] = _schedule(step, a.steps, a.lr, 50)
        momentum = 1 - (1 - a.momentum) * (math.cos(math.pi * step / a.steps) + 1) / 2
        if a.then and step == a.steps // 2:
            views = json.loads(a.then)
        chosen = [scenes[i] for i in torch.randint(0, len(scenes), (a.batch,), generator=g).tolist()]
        x = make_views(chosen, views, 2)
        extra = make_views(chosen, student_views, a.n_student) if a.n_student else None
        with torch.no_grad():
            t_out = t_head(teacher(x))
            t_prob = F.softmax((t_out - center) / a.teacher_temp, dim=-1).chunk(2)
        feats = student(x)
        if a.loss == "dino":
            s_out = s_head(feats).chunk(2)
            if extra is not None:
                s_out = s_out + s_head(student(extra)).chunk(a.n_student)
            loss = dino_loss(t_prob, s_out)
        elif a.loss == "simclr":
            z = F.normalize(s_head.mlp(feats), dim=-1)
            sim = (z @ z.T / 0.1).fill_diagonal_(-1e9)
            b = len(chosen)
            loss = F.cross_entropy(sim, torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]))
        else:
            kinds = torch.tensor([SC.KINDS.index(s.shapes[0].kind) for s in chosen]).repeat(2)
            loss = F.cross_entropy(classifier(feats), kinds)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 3.0)
        if step < 50:  # DINO keeps the prototypes fixed at first
            for q in s_head.last.parameters():
                q.grad = None
        opt.step()
        ema_update((student, s_head), (teacher, t_head), momentum)
        center = center * 0.9 + t_out.mean(0, keepdim=True) * 0.1
        if step % 100 == 0:
            ent = float(-(t_prob[0] * t_prob[0].clamp_min(1e-12).log()).sum(-1).mean())
            net = student if a.loss == "supervised" else teacher
            print(f"step {step:5d} loss {loss.item():.3f} teacher entropy {ent:.2f} "
                  f"(uniform {math.log(a.out_dim):.2f}) shape k-NN {knn(net)} {time.time() - t0:.0f}s",
                  flush=True)


if __name__ == "__main__":
    main()
