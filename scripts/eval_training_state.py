"""Evaluate an in-progress InstructPix2Pix-tiny training state on a synth slice (dev aid).

    python scripts/eval_training_state.py RUN_DIR [--tasks synth-ma5k,synth-magicbrush] [--limit 24]
"""
import argparse
import json
import tempfile
from pathlib import Path


from baselines.instruct_pix2pix import TINY, InstructPix2Pix, build_tiny_components, latent_scale
from baselines.reference import IdentityEditor
from benchmark.diffusion.checkpoints import load_module_weights, write_checkpoint
from benchmark.diffusion.text import load_tokenizer
from benchmark.runner import run_task
from benchmark.tasks import get_task

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("--tasks", default="synth-ma5k,synth-magicbrush,synth-evr")
p.add_argument("--limit", type=int, default=24)
p.add_argument("--seeds", default="0")
p.add_argument("--settings", default="{}", help="JSON overrides of task settings")
p.add_argument("--sampler", default="{}", help="JSON overrides of the sampling scheduler config")
a = p.parse_args()
run = Path(a.run)
state = run / "training-state"
tok = load_tokenizer(state / "tokenizer.json")
unet, vae, text, sched = build_tiny_components(tok)
load_module_weights(unet, state / "unet.safetensors")
load_module_weights(text, state / "text_encoder.safetensors")
meta = json.loads((state / "state.json").read_text())
vae.register_to_config(scaling_factor=latent_scale(vae))  # as train() measured it
tmp = Path(tempfile.mkdtemp())
write_checkpoint(tmp, {"unet": unet, "text_encoder": text}, tok,
                 config={"vae": dict(vae.config), "scheduler": dict(sched.config), "tiny": TINY}, info={})
model = InstructPix2Pix(checkpoint=str(tmp))
model.scheduler_config = {**model.scheduler_config, **json.loads(a.sampler)}
seeds = [int(s) for s in a.seeds.split(",")]
print(f"state at step {meta['step']}", flush=True)
for name in a.tasks.split(","):
    task = get_task(name)
    from benchmark.registry import METRICS

    task = task.from_dict({**task.to_dict(), "settings": {**task.settings, **json.loads(a.settings)},
                           "metrics": [m for m in task.metrics if m in METRICS]})
    r = run_task(model, task, seeds=seeds, limit=a.limit, cache_dir=str(tmp / "cache"), progress=False)
    i = run_task(IdentityEditor(), task, seeds=seeds, limit=a.limit, cache_dir=str(tmp / "cache"), progress=False)
    if r["failures"]:
        print("failures:", r["failures"][:2])
    keys = [k for k in ("l1", "l1_in_mask", "l1_out_mask", "ssim") if k in r["metrics"]]
    line = "  ".join(f"{k} {r['metrics'][k]['mean']:.4f} (id {i['metrics'][k]['mean']:.4f})" for k in keys)
    ratio = r["metrics"]["l1"]["mean"] / i["metrics"]["l1"]["mean"]
    print(f"{name}: {line}  l1 ratio {ratio:.3f}  {r['timing']['seconds_per_edit']:.3f} s/edit")
    cats = {c: f"{v['l1']['mean']:.3f}/{i['by_category'][c]['l1']['mean']:.3f}" for c, v in r["by_category"].items() if "l1" in v}
    print("   by category (model/identity l1):", cats)
