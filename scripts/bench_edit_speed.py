"""Seconds per edit of a model on synth samples (load time excluded).

    python scripts/bench_edit_speed.py --model instruct-pix2pix [--preset tiny] [--batch 8]
        [--steps 20] [--repeats 2] [--device cpu]
"""
import argparse
import time

from benchmark.api import EditRequest
from benchmark.datasets import synth
from benchmark.registry import MODELS

p = argparse.ArgumentParser()
p.add_argument("--model", default="instruct-pix2pix")
p.add_argument("--preset", default=None)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--repeats", type=int, default=2)
p.add_argument("--device", default="cpu")
a = p.parse_args()
model = MODELS.get(a.model)(preset=a.preset, device=a.device)
samples = synth.load("magicbrush", "test", limit=a.batch)[: a.batch]
settings = {"steps": a.steps, "image_guidance_scale": 1.5, "text_guidance_scale": 7.5}
reqs = [EditRequest(s, seed=0, settings=settings) for s in samples]
model.edit(reqs[:1])  # warm-up
times = []
for _ in range(a.repeats):
    t0 = time.perf_counter()
    model.edit(reqs)
    times.append((time.perf_counter() - t0) / len(reqs))
print(f"{a.model} ({model.preset}) on {a.device}: batch {len(reqs)}, {a.steps} steps, "
      f"best {min(times):.3f} s/edit, mean {sum(times) / len(times):.3f} s/edit")
