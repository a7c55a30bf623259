"""How much of an edit a model's conditioning carries into its UNet (dev aid).

    python scripts/probe_condition_use.py MODEL [--checkpoint DIR] [--variant ma5k] [--n 48]

MODEL is ``instruct-pix2pix``, ``lgie`` or ``mgie`` (tiny presets). Three measurements:

1. *x0 regression at the terminal timestep.* On the first ``n`` training samples of a synth
   variant, the UNet's x0 prediction from pure noise (t = 999, where the input holds nothing of the
   target) with the sample's own condition, with another sample's (shuffled), and with the null
   condition; each as MSE in scaled latent space over the identity edit's MSE. A condition that
   carries the edit gives a ratio well below 1 and below the shuffled one. MLLM models get their
   condition from the ground-truth expressive instruction by teacher forcing, as in training.
2. *Response to the instruction.* The first 16 single-operation global edits of synth-referring's
   test split (brightness, contrast, white balance), each edited unguided (αV = αX = 1, seed 0)
   under six fixed instructions; prints the outputs' mean luma, luma std and red-minus-blue. A
   model that reads its instruction moves luma up for "increase the brightness" and down for
   "decrease".
3. *Global edits end to end.* Whole-image l1 on the 30 single-operation global edits of
   synth-referring's test split (brightness, contrast, white balance, saturation; seed 0), at the
   task's guidance and unguided; for MLLM models also with the ground-truth expressive
   instruction teacher-forced, and the share of samples whose derived one matches it.
4. *Conditional instructions* (MLLM models): on the first 200 conditional instructions ("if the
   picture lacks contrast, increase it ...; otherwise ...") of the variant's training split, how
   often the derived expressive instruction is the ground truth, per operation. The direction of
   such an edit depends on the picture, so only a model that sees it can beat a blind guess.
5. *What the vision tower encodes* (MGIE): held-out R² of a ridge regression from the tower's
   mean-pooled last-layer patch features (and from the projector's output) to the four picture
   statistics the conditional instructions judge (mean luma, chroma, luma std = contrast,
   red minus blue), on the sources of the variant's first training samples (900 fit, 300 held out).
6. *Whether the LM's decision position knows the answer* (MGIE): for 400 conditional contrast and
   400 conditional brightness instructions of the variant's training split, held-out accuracy of
   a ridge classifier (300 fit, 100 held out) from each layer's hidden state at the last prompt
   position, the one whose output is "increase" or "decrease", to the right direction. High
   accuracy with a wrong greedy answer (measurement 4) means the LM computes the picture's
   statistic but does not gate its answer on it.
"""
import argparse
import dataclasses
import numpy as np
import torch

PHRASES = ["increase the brightness by 20%", "decrease the brightness by 20%",
           "increase the contrast by 30%", "decrease the contrast by 30%",
           "warm the white balance: red +10%, blue -10%", "cool the white balance: red -10%, blue +10%"]


def conditions(model, instructions, expressives, sources):
    """(cond, null) for a batch, as the model's training builds them."""
    if hasattr(model, "guide"):
        from mgie.editor import pixel_values

        hidden = [model.guide.instruction_loss([i], [e], pixel_values([s]) if model.multimodal else None)[1]
                  for i, e, s in zip(instructions, expressives, sources)]
        cond = model.guide.condition(torch.cat(hidden))
        return cond, model.guide.null_condition(1).expand_as(cond)
    cond = model.encode_text(list(instructions))
    return cond, model.null_condition().expand_as(cond)


@torch.no_grad()
def terminal_regression(model, variant: str, n: int) -> None:
    from diffusers import DDPMScheduler

    from benchmark.diffusion.sampling import images_to_tensor
    from benchmark.datasets import synth

    samples = [s for i in range(n) for s in synth.generate(variant, "train", i)][:n]
    cond, null = conditions(model, [s.instruction for s in samples],
                            [s.expressive or s.instruction for s in samples], [s.source for s in samples])
    vae, scale = model.vae, model.vae.config.scaling_factor
    target = vae.encode(images_to_tensor([s.target for s in samples], 64)).latent_dist.mode() * scale
    source = vae.encode(images_to_tensor([s.source for s in samples], 64)).latent_dist.mode()
    identity = float(((source * scale - target) ** 2).mean())
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    t = torch.full((len(samples),), 999)
    noisy = DDPMScheduler.from_config(model.scheduler_config).add_noise(target, noise, t)
    shuffled = cond[torch.roll(torch.arange(len(samples)), 1)]
    ratios = [float(((model.unet(torch.cat([noisy, source], 1), t, encoder_hidden_states=c)[0]
                      - target) ** 2).mean()) / identity for c in (cond, shuffled, null)]
    print(f"{variant}, {len(samples)} training samples, t = 999, x0 MSE / identity's "
          f"({identity:.4f}): own condition {ratios[0]:.2f}, shuffled {ratios[1]:.2f}, null {ratios[2]:.2f}")


def response(model) -> None:
    from benchmark.api import EditRequest
    from benchmark.datasets.synth import load_referring

    samples = [s for s in load_referring("test") if s.meta["ops"] in (["brightness"], ["contrast"],
                                                                      ["white_balance"])][:16]
    unguided = {"resolution": 64, "steps": 20, "image_guidance_scale": 1.0, "text_guidance_scale": 1.0}

    def stats(images):
        a = np.stack([np.asarray(im, np.float32) for im in images])
        a = a / 255 if a.max() > 1.5 else a
        luma = a.mean(-1)
        return luma.mean(), luma.std(axis=(1, 2)).mean(), (a[..., 0] - a[..., 2]).mean()

    print("unguided response, %d referring global edits (seed 0): mean luma / luma std / red - blue" % len(samples))
    print("  %-44s %.3f / %.3f / %+.3f" % (("(source)",) + stats([s.source for s in samples])))
    for phrase in PHRASES:
        requests = [EditRequest(dataclasses.replace(s, instruction=phrase), 0, unguided) for s in samples]
        if hasattr(model, "guide"):  # teacher-force E = the phrase, so the MLLM's derivation is out of the way
            teacher_force(model, [r.sample for r in requests], lambda s: phrase)
        out = [r.image for i in range(0, len(requests), 8) for r in model.edit(requests[i:i + 8])]
        print("  %-44s %.3f / %.3f / %+.3f" % ((phrase,) + stats(out)))


def teacher_force(model, samples, expressive_of) -> None:
    """Put (instruction, image) -> Derived(E, [IMG] states of E by teacher forcing) in the MLLM
    editor's derivation cache, so its edits use E = expressive_of(sample)."""
    from mgie.core import Derived
    from mgie.editor import pixel_values

    for s in samples:
        e = expressive_of(s)
        hidden = model.guide.instruction_loss([s.instruction], [e],
                                              pixel_values([s.source]) if model.multimodal else None)[1]
        model.derived_cache[model.derivation_key(s)] = Derived(e, hidden)


def global_edit_l1(model) -> None:
    from benchmark.api import EditRequest
    from benchmark.datasets.synth import load_referring
    from benchmark.files import to_rgb_image
    from benchmark.metrics.base import aligned_pair
    from benchmark.metrics.l1 import l1_distance
    from benchmark.tasks import get_task

    samples = [s for s in load_referring("test")
               if s.meta["ops"] in (["brightness"], ["contrast"], ["white_balance"], ["saturation"])]
    protocol = dict(get_task("synth-referring").settings)
    unguided = protocol | {"image_guidance_scale": 1.0, "text_guidance_scale": 1.0}

    def l1(images):  # the metric suite's l1 on the 8-bit image the runner would store
        return float(np.mean([float(l1_distance(*aligned_pair(to_rgb_image(im), s.target))[0])
                              for im, s in zip(images, samples)]))

    def run(settings):
        requests = [EditRequest(s, 0, settings) for s in samples]
        results = [r for i in range(0, len(requests), 8) for r in model.edit(requests[i:i + 8])]
        return [r.image for r in results], [r.expressive for r in results]

    print(f"{len(samples)} single-operation global edits of synth-referring (seed 0), whole-image l1,"
          f" protocol / unguided: identity {l1([s.source for s in samples]):.3f}")
    rows = [("own instruction", None)]
    if hasattr(model, "guide"):
        rows.append(("ground-truth expressive instruction, teacher-forced", lambda s: s.expressive))
    for label, expressive_of in rows:
        if expressive_of:  # an MLLM model: derive from scratch unless teacher-forced
            model.derived_cache.clear()
            teacher_force(model, samples, expressive_of)
        (guided, derived), (plain, _) = run(protocol), run(unguided)
        match = ("" if derived[0] is None or expressive_of else
                 f" (derived = ground truth for {np.mean([d == s.expressive for d, s in zip(derived, samples)]):.0%})")
        print(f"  {label}: {l1(guided):.3f} / {l1(plain):.3f}{match}")


def conditional_directions(model, variant: str, n: int = 200) -> None:
    from collections import Counter

    from benchmark.datasets import synth

    samples, index = [], 0
    while len(samples) < n and index < synth.SPLITS["train"]:
        samples += [s for s in synth.generate(variant, "train", index) if "otherwise" in s.instruction]
        index += 1
    right, total = Counter(), Counter()
    for s in samples[:n]:
        words = s.expressive.split()  # "increase the contrast by 30%", "warm the white balance: ..."
        op = words[2] if words[0] in ("increase", "decrease") else words[0]
        total[op] += 1
        right[op] += model.derive(s).expressive == s.expressive
    print(f"first {sum(total.values())} conditional instructions of {variant} train, derived = "
          "ground truth: " + ", ".join(f"{op} {right[op]}/{total[op]}" for op in sorted(total)))


def _ridge_held_out(x: np.ndarray, y: np.ndarray, fit: int) -> np.ndarray:
    """Predictions for rows ``fit:`` of a ridge regression (features standardised on rows
    ``:fit``, a bias column, penalty 0.01 per fitted row) fitted on rows ``:fit``."""
    x = np.hstack([(x - x[:fit].mean(0)) / (x[:fit].std(0) + 1e-8), np.ones((len(x), 1))])
    a = x[:fit]
    w = np.linalg.solve(a.T @ a + 1e-2 * fit * np.eye(a.shape[1]), a.T @ y[:fit])
    return x[fit:] @ w


@torch.no_grad()
def tower_statistics(model, variant: str, n: int = 1200) -> None:
    from benchmark.datasets import synth
    from benchmark.datasets.synth.edits import CONDITIONALS
    from mgie.editor import pixel_values

    images, index = [], 0
    while len(images) < n:
        images += [s.source for s in synth.generate(variant, "train", index)]
        index += 1
    images = images[:n]
    stats = np.array([[c.stat(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
                       for c in CONDITIONALS.values()] for im in images])
    lm = model.guide.lm
    tower, proj = [], []
    for b in range(0, n, 100):
        last = lm.model.vision_tower(pixel_values(images[b:b + 100])).last_hidden_state[:, 1:]
        tower.append(last.mean(1))
        proj.append(lm.model.multi_modal_projector(last).mean(1))
    fit = n * 3 // 4
    for label, feats in (("tower", tower), ("projector", proj)):
        pred = _ridge_held_out(torch.cat(feats).double().numpy(), stats, fit)
        r2 = 1 - ((pred - stats[fit:]) ** 2).mean(0) / stats[fit:].var(0)
        print(f"{label} features, held-out R² of " + ", ".join(
            f"{c.stat.__name__.removeprefix('_stat_')} {v:.2f}" for c, v in zip(CONDITIONALS.values(), r2)))


@torch.no_grad()
def decision_readout(model, variant: str, n: int = 400) -> None:
    from benchmark.datasets import synth
    from mgie.editor import pixel_values

    guide = model.guide
    for op in ("contrast", "brightness"):
        states, labels, index = [], [], 0
        while len(states) < n and index < synth.SPLITS["train"]:
            for s in synth.generate(variant, "train", index):
                if "otherwise" in s.instruction and op in s.expressive and len(states) < n:
                    ids = torch.tensor([guide.prompt_ids(s.instruction)])
                    out = guide._forward(ids, torch.ones_like(ids), pixel_values([s.source]))
                    states.append(torch.stack([h[0, -1] for h in out.hidden_states]).double().numpy())
                    labels.append(1.0 if s.expressive.startswith("increase") else -1.0)
            index += 1
        x, y = np.stack(states), np.array(labels)
        fit = len(y) * 3 // 4
        accs = []
        for layer in range(x.shape[1]):
            accs.append(np.mean(np.sign(_ridge_held_out(x[:, layer], y, fit)) == y[fit:]))
        print(f"conditional {op}, decision position, held-out accuracy by layer (embeddings first): "
              + " ".join(f"{a:.2f}" for a in accs) + f" (majority {max(np.mean(y[fit:] > 0), np.mean(y[fit:] < 0)):.2f})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=("instruct-pix2pix", "lgie", "mgie"))
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--variant", default="ma5k")
    p.add_argument("--n", type=int, default=48)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from benchmark.registry import MODELS

    model = MODELS.get(a.model)(**({"checkpoint": a.checkpoint} if a.checkpoint else {}))
    terminal_regression(model, a.variant, a.n)
    response(model)
    global_edit_l1(model)
    if hasattr(model, "guide"):
        conditional_directions(model, a.variant)
    if getattr(model, "multimodal", False):
        tower_statistics(model, a.variant)
        decision_readout(model, a.variant)


if __name__ == "__main__":
    main()
