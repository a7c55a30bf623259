"""Seconds per edit of a model on synth samples (load time excluded).

    python scripts/bench_edit_speed.py --model instruct-pix2pix [--preset tiny] [--batch 8]
        [--steps 20] [--repeats 2] [--device cpu] [--dtype bfloat16] [--compile]

Load time, and torch.compile's one-off compilation (in the warm-up edit), are excluded and printed.
"""
import argparse
import time

from benchmark.api import EditRequest
from benchmark.datasets import synth
from benchmark.registry import MODELS
from benchmark.results import device_info, device_label

p = argparse.ArgumentParser()
p.add_argument("--model", default="instruct-pix2pix")
p.add_argument("--preset", default=None)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--repeats", type=int, default=2)
p.add_argument("--device", default="cpu")
p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
p.add_argument("--compile", action="store_true")
a = p.parse_args()
model = MODELS.get(a.model)(preset=a.preset, device=a.device, dtype=a.dtype, compile=a.compile)
samples = synth.load("magicbrush", "test", limit=a.batch)[: a.batch]
settings = {"steps": a.steps, "image_guidance_scale": 1.5, "text_guidance_scale": 7.5}
reqs = [EditRequest(s, seed=0, settings=settings) for s in samples]
t0 = time.perf_counter()
model.edit(reqs[:1])  # warm-up (and compilation)
warm_up = time.perf_counter() - t0
times = []
for _ in range(a.repeats):
    t0 = time.perf_counter()
    model.edit(reqs)
    times.append((time.perf_counter() - t0) / len(reqs))
print(f"{a.model} ({model.preset}, {a.dtype}{', compiled' if a.compile else ''}) on "
      f"{device_label({'device': a.device, **device_info(a.device)})}: "
      f"batch {len(reqs)}, {a.steps} steps, best {min(times):.3f} s/edit, "
      f"mean {sum(times) / len(times):.3f} s/edit (warm-up edit {warm_up:.1f} s)")
