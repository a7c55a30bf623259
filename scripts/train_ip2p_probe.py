"""Train an InstructPix2Pix-tiny probe on a restricted slice of the synth train split (dev aid).

    python scripts/train_ip2p_probe.py OUT --steps 600 [--variants magicbrush] [--op add]
        [--sessions 32] [--expressive] [--tiny '{"ae_factor": 2, ...}'] [--threads 1]

The shipped recipe (``editbench train --model instruct-pix2pix --preset tiny``) with, for this
process only, the data narrowed: ``--variants`` keeps those synth variants, ``--op`` keeps samples
of one operation (as ``scripts/probe_edit_ops.py`` prints it), ``--sessions N`` reuses the first N
training sessions (a memorisation test), ``--expressive`` trains on the generator's ground-truth
expressive instructions; ``--tiny`` patches the preset config (``TINY``). Score the result with
``scripts/probe_edit_ops.py OUT``. docs/tiny-models.md's probe tables come from these two scripts (its first rows from a scratch copy).
"""
import argparse
import dataclasses
import json
import shlex
import sys
import time

import torch

import baselines.instruct_pix2pix as ip
from benchmark.datasets import synth
from probe_edit_ops import op_key  # scripts/ is on sys.path when this runs as a script


def narrowed_generate(generate, op: str | None, sessions: int | None, expressive: bool):
    """``synth.generate`` seen through the probe's filters (training split only)."""

    def gen(variant, split, index, **kw):
        if split != "train":
            return generate(variant, split, index, **kw)
        if sessions:
            index %= sessions
        while True:
            samples = generate(variant, split, index, **kw)
            if op:
                samples = [s for s in samples if op_key(s) == op]
            if samples:
                break
            index = (index + 7919) % synth.SPLITS["train"]  # the next session that has the op
        if expressive:
            samples = [dataclasses.replace(s, instruction=s.expressive) if s.expressive else s
                       for s in samples]
        return samples

    return gen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--variants", default=",".join(synth.VARIANTS))
    p.add_argument("--op", default=None)
    p.add_argument("--sessions", type=int, default=None)
    p.add_argument("--expressive", action="store_true")
    p.add_argument("--tiny", default="{}", help="JSON patch of the TINY preset ('unet' merged)")
    p.add_argument("--recipe", default="{}", help="JSON recipe overrides")
    p.add_argument("--checkpoint-every", type=int, default=10**9)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    patch = json.loads(a.tiny)
    unet_patch = patch.pop("unet", {})
    ip.TINY.update(patch)
    ip.TINY["unet"] = {**ip.TINY["unet"], **unet_patch}
    # the training loop reads these module attributes when it starts drawing batches
    synth.VARIANTS = tuple(a.variants.split(","))
    synth.generate = narrowed_generate(synth.generate, a.op, a.sessions, a.expressive)
    print(json.dumps({"variants": synth.VARIANTS, "op": a.op, "sessions": a.sessions,
                      "expressive": a.expressive, "tiny": ip.TINY}, default=list), flush=True)
    t0 = time.time()
    manifest = ip.train(preset="tiny", output_dir=a.out, steps=a.steps, log_every=50,
                        checkpoint_every=a.checkpoint_every, recipe_overrides=json.loads(a.recipe),
                        command="python scripts/train_ip2p_probe.py " + " ".join(
                            shlex.quote(x) for x in sys.argv[1:]))
    print(f"wall {time.time() - t0:.0f} s, final loss {manifest.get('final_loss'):.4f}")


if __name__ == "__main__":
    main()
