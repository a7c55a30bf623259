"""The InstructPix2Pix adapter: equal to diffusers' pipeline on the same weights, batch-size
invariant, clear errors, and a training run that learns and resumes."""

import json

import numpy as np
import pytest
import torch
from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline
from PIL import Image

from _helpers import needs_cuda
from baselines.instruct_pix2pix import InstructPix2Pix, _synth_batches, build_tiny_components, train
from benchmark.api import EditRequest, EditSample
from benchmark.diffusion.checkpoints import write_checkpoint
from benchmark.diffusion.sampling import CPU_CHUNK
from benchmark.diffusion.text import train_tokenizer
from benchmark.diffusion.training import diffusion_loss
from benchmark.files import to_rgb_image

WORDS = ["make the red circle blue", "remove the square", "brighten the image", "zoom in", ""]


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    tok = train_tokenizer(WORDS * 5, vocab_size=300)
    unet, vae, text, sched = build_tiny_components(tok)
    vae.register_to_config(scaling_factor=1.7)
    # diffusers' pipeline steps only epsilon/v models; the x0 conversion has its own test
    sched.register_to_config(prediction_type="epsilon")
    out = tmp_path_factory.mktemp("ckpt")
    write_checkpoint(out, {"unet": unet, "text_encoder": text}, tok,
                     config={"vae": dict(vae.config), "scheduler": dict(sched.config)},
                     info={"steps": 0})
    return out


def test_tiny_components_without_a_tokenizer_build_no_text_encoder():
    torch.manual_seed(0)
    unet, vae, text, sched = build_tiny_components(None)
    assert text is None
    torch.manual_seed(0)
    unet_with_text, *_ = build_tiny_components(train_tokenizer(WORDS * 5, vocab_size=300))
    for a, b in zip(unet.parameters(), unet_with_text.parameters()):  # the same UNet either way
        assert torch.equal(a, b)


def _samples(n):
    rng = np.random.default_rng(1)
    return [EditSample(id=f"x{i}", source=Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
                       instruction=WORDS[i % 4]) for i in range(n)]


def test_adapter_equals_diffusers_pipeline(random_checkpoint):
    model = InstructPix2Pix(checkpoint=str(random_checkpoint))
    # One full CPU chunk, so both sides run the UNet at the same batch size (at another size the
    # CPU kernels differ in the last bits, which a random UNet under 7.5x guidance amplifies).
    samples = _samples(CPU_CHUNK)
    settings = {"steps": 3, "image_guidance_scale": 1.5, "text_guidance_scale": 7.5}
    ours = model.edit([EditRequest(s, seed=0, settings=settings) for s in samples])
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
        scheduler=EulerAncestralDiscreteScheduler.from_config(model.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(prompt=[s.instruction for s in samples], image=[s.source for s in samples],
               num_inference_steps=3, generator=[EditRequest(s, 0).generator() for s in samples],
               output_type="np").images
    for o, r in zip(ours, ref):
        assert np.abs(o.image - r).max() <= 1e-5


def test_batch_size_invariance_and_seed_determinism(random_checkpoint):
    model = InstructPix2Pix(checkpoint=str(random_checkpoint))
    # 11 requests: a full CPU chunk and a padded one; each must equal the request edited alone
    reqs = [EditRequest(s, seed=3, settings={"steps": 2}) for s in _samples(CPU_CHUNK + 3)]
    batched = [np.asarray(to_rgb_image(r.image)) for r in model.edit(reqs)]
    single = [np.asarray(to_rgb_image(model.edit([q])[0].image)) for q in reqs]
    assert all(np.array_equal(a, b) for a, b in zip(batched, single))
    other_seed = model.edit([EditRequest(reqs[0].sample, seed=4, settings={"steps": 2})])[0]
    assert not np.array_equal(np.asarray(to_rgb_image(other_seed.image)), batched[0])


def test_bfloat16_editing_is_batch_size_invariant_recorded_and_close_to_float32(random_checkpoint):
    fp32 = InstructPix2Pix(checkpoint=str(random_checkpoint))
    bf16 = InstructPix2Pix(checkpoint=str(random_checkpoint), dtype="bfloat16")
    reqs = [EditRequest(s, seed=3, settings={"steps": 2}) for s in _samples(CPU_CHUNK + 1)]
    batched = [r.image for r in bf16.edit(reqs)]
    assert all(np.array_equal(a, bf16.edit([q])[0].image) for a, q in zip(batched, reqs))
    # close to float32 with the shipped weights (a random UNet amplifies any rounding)
    from benchmark.datasets import synth

    settings = {"steps": 4, "image_guidance_scale": 1.0, "text_guidance_scale": 1.0}
    shipped = [EditRequest(s, seed=0, settings=settings) for s in synth.load("ma5k", "test", limit=8)]
    low, ref = (np.stack([r.image for r in InstructPix2Pix(dtype=d).edit(shipped)])
                for d in ("bfloat16", "float32"))
    diff = np.abs(low - ref)
    assert 0 < diff.mean() < 2e-3 and diff.max() < 0.02, (diff.mean(), diff.max())
    assert bf16.config()["dtype"] == "torch.bfloat16" and fp32.config()["dtype"] == "torch.float32"
    assert "compile" not in fp32.config()  # float32 rows keep the config hash they always had


def test_run_with_bfloat16_records_the_variant_and_keeps_its_own_results(tmp_path, monkeypatch,
                                                                        editbench):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--model", "instruct-pix2pix", "--task", "synth-ma5k", "--limit", "1",
            "--seeds", "0", "--cache-dir", tmp_path / "cache", "--no-progress", "--backbones", "synth"]
    assert editbench(*args, "--dtype", "bfloat16") == 0
    low = json.loads((tmp_path / "results/instruct-pix2pix-tiny-bfloat16/synth-ma5k.json").read_text())
    assert low["model"]["variant"] == "bfloat16"
    assert editbench(*args) == 0
    plain = json.loads((tmp_path / "results/instruct-pix2pix-tiny/synth-ma5k.json").read_text())
    assert "variant" not in plain["model"]
    assert plain["model"]["config_hash"] != low["model"]["config_hash"]
    assert plain["model"]["weights_sha256"] == low["model"]["weights_sha256"]


def test_long_instruction_is_truncated_with_a_warning(random_checkpoint):
    model = InstructPix2Pix(checkpoint=str(random_checkpoint))
    s = _samples(1)[0].replace(instruction="make the red circle blue " * 40)
    res = model.edit([EditRequest(s, seed=0, settings={"steps": 1})])[0]
    assert "truncated" in res.extra["warning"]


def test_missing_and_altered_checkpoints_fail_clearly(tmp_path, random_checkpoint):
    with pytest.raises(FileNotFoundError, match="editbench train --model instruct-pix2pix"):
        InstructPix2Pix(checkpoint=str(tmp_path / "nothing"))
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(random_checkpoint, bad)
    with open(bad / "unet.safetensors", "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(ValueError, match="sha256"):
        InstructPix2Pix(checkpoint=str(bad))
    with pytest.raises(ValueError, match="unknown preset"):
        InstructPix2Pix(preset="xl")


@needs_cuda
def test_gpu_edits_repeat_and_match_the_cpu_within_rounding():
    from benchmark.datasets import synth

    # the protocol's guidance, which amplifies any rounding difference 7.5-fold
    settings = {"steps": 20, "image_guidance_scale": 1.5, "text_guidance_scale": 7.5}
    reqs = [EditRequest(s, seed=0, settings=settings) for s in synth.load("ma5k", "test", limit=8)]
    cpu = np.stack([r.image for r in InstructPix2Pix().edit(reqs)])
    gpu_model = InstructPix2Pix(device="cuda")
    gpu, again = (np.stack([r.image for r in gpu_model.edit(reqs)]) for _ in range(2))
    assert np.array_equal(gpu, again)  # same seed, same batch: same bits on the GPU too
    diff = np.abs(gpu - cpu)  # same noise (CPU generators), so only arithmetic differs
    assert diff.mean() < 2e-3 and diff.max() < 0.05, (diff.mean(), diff.max())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_loss_decreases_when_fitting_a_fixed_batch(device):
    torch.manual_seed(0)
    tok = train_tokenizer(WORDS * 5, vocab_size=300)
    unet, vae, text, sched = build_tiny_components(tok)
    unet, vae, text = unet.to(device), vae.to(device), text.to(device)
    from benchmark.datasets import synth
    from benchmark.diffusion.sampling import images_to_tensor
    from benchmark.diffusion.text import tokenize

    samples = synth.load("ma5k", "train", limit=4)
    src = images_to_tensor([s.source for s in samples], 64).to(device)
    tgt = images_to_tensor([s.target for s in samples], 64).to(device)
    ids = tokenize(tok, [s.instruction for s in samples]).to(device)
    opt = torch.optim.AdamW(list(unet.parameters()) + list(text.parameters()), lr=1e-3)

    def loss_at(seed):
        cond = text(ids)[0]
        null = text(tokenize(tok, [""]).to(device))[0]
        return diffusion_loss(unet, vae, sched, src, tgt, cond, null,
                              torch.Generator().manual_seed(seed), dropout_p=0.0)

    with torch.no_grad():
        before = float(np.mean([float(loss_at(s)) for s in range(3)]))
    for step in range(25):
        loss = loss_at(step % 3)
        loss.backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        after = float(np.mean([float(loss_at(s)) for s in range(3)]))
    assert after < 0.7 * before, (before, after)


def test_train_writes_a_checkpoint_and_resumes(tmp_path):
    out = tmp_path / "run"
    m = train(output_dir=str(out), steps=4, batch_size=2, log_every=1, checkpoint_every=2,
              corpus_per_variant=20, command="test")
    assert m["steps"] == 4 and len(m["loss_history"]) == 4
    assert m["threads"] == torch.get_num_threads()  # the bits of a CPU run depend on it
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"unet.safetensors", "text_encoder.safetensors", "tokenizer.json"}
    assert (out / "training-state" / "state.json").is_file()
    from safetensors import safe_open

    with safe_open(str(out / "unet.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert manifest["stored_dtype"] == "float16"
    model = InstructPix2Pix(checkpoint=str(out))
    assert model.weights_sha256 and len(model.weights_sha256) == 64
    resumed = train(output_dir=str(out), steps=6, batch_size=2, log_every=1, checkpoint_every=100,
                    corpus_per_variant=20, resume=True, command="test")
    # the resumed run continued from the step-2 state: history holds steps 1-2 then 3-6
    assert [h["step"] for h in resumed["loss_history"]] == [1, 2, 3, 4, 5, 6]


def test_recipe_latent_scale_sets_the_scaling_factor_the_adapter_loads(tmp_path):
    measured = train(output_dir=str(tmp_path / "measured"), steps=1, batch_size=2,
                     corpus_per_variant=20, command="test")
    fixed = train(output_dir=str(tmp_path / "fixed"), steps=1, batch_size=2, corpus_per_variant=20,
                  command="test", recipe_overrides={"latent_scale": 6.5})
    assert measured["config"]["vae"]["scaling_factor"] != 6.5
    assert fixed["config"]["vae"]["scaling_factor"] == 6.5
    model = InstructPix2Pix(checkpoint=str(tmp_path / "fixed"))
    assert model.vae.config.scaling_factor == 6.5 and model.unet.scaling_factor == 6.5


def test_ema_checkpoint_holds_the_averaged_weights_and_resumes(tmp_path):
    from safetensors.torch import load_file

    def weights(out):
        return load_file(str(out / "unet.safetensors"))

    # on the CPU, where runs repeat bit for bit (a GPU machine would otherwise train on cuda)
    kw = dict(batch_size=2, log_every=1, corpus_per_variant=20, command="test", device="cpu")
    train(output_dir=str(tmp_path / "plain1"), steps=1, **kw)
    train(output_dir=str(tmp_path / "ema1"), steps=1, recipe_overrides={"ema": True}, **kw)
    # diffusers' EMAModel takes the weights as they are after the first step (decay 0)
    assert all(torch.equal(a, b) for a, b in zip(weights(tmp_path / "plain1").values(),
                                                  weights(tmp_path / "ema1").values()))
    train(output_dir=str(tmp_path / "plain3"), steps=3, **kw)
    ema3 = train(output_dir=str(tmp_path / "ema3"), steps=3, recipe_overrides={"ema": True}, **kw)
    assert ema3["config"]["recipe"]["ema"] is True
    assert any(not torch.equal(a, b) for a, b in zip(weights(tmp_path / "plain3").values(),
                                                      weights(tmp_path / "ema3").values()))
    # the training state carries the EMA weights: resuming from it twice gives the same checkpoint
    part = tmp_path / "part"
    train(output_dir=str(part), steps=3, checkpoint_every=2, recipe_overrides={"ema": True}, **kw)
    assert (part / "training-state" / "ema.safetensors").is_file()
    train(output_dir=str(part), steps=4, resume=True, recipe_overrides={"ema": True}, **kw)
    first = weights(part)
    train(output_dir=str(part), steps=4, resume=True, recipe_overrides={"ema": True}, **kw)
    assert all(torch.equal(a, b) for a, b in zip(first.values(), weights(part).values()))
    (part / "training-state" / "ema.safetensors").unlink()
    with pytest.raises(ValueError, match="no EMA weights"):
        train(output_dir=str(part), steps=4, resume=True, recipe_overrides={"ema": True}, **kw)


@needs_cuda
def test_ema_training_resumes_on_a_gpu(tmp_path):
    # the saved EMA weights are read to the CPU; resuming must move them to the GPU's parameters
    kw = dict(batch_size=2, log_every=1, corpus_per_variant=20, command="test", device="cuda",
              recipe_overrides={"ema": True})
    train(output_dir=str(tmp_path), steps=3, checkpoint_every=2, **kw)
    resumed = train(output_dir=str(tmp_path), steps=4, resume=True, **kw)
    assert [h["step"] for h in resumed["loss_history"]] == [1, 2, 3, 4]
    assert all(np.isfinite(h["loss"]) for h in resumed["loss_history"])


def test_tiny_fine_tunes_from_a_base_checkpoint(tmp_path):
    base = tmp_path / "base"
    train(output_dir=str(base), steps=2, batch_size=2, log_every=1, corpus_per_variant=20,
          command="test")
    base_files = json.loads((base / "manifest.json").read_text())["files"]
    # learning rate 0: the fine-tuned weights equal the base's (so they were loaded); equal as
    # numbers, not as files, because AdamW's zero step turns a stored -0.0 into +0.0
    still = train(output_dir=str(tmp_path / "lr0"), steps=2, batch_size=2, log_every=1,
                  learning_rate=0.0, base_checkpoint=str(base), seed=1, command="test",
                  recipe_overrides={"lr_schedule": "constant_with_warmup"})
    from safetensors.torch import load_file

    for name in ("unet.safetensors", "text_encoder.safetensors"):
        a, b = load_file(str(base / name)), load_file(str(tmp_path / "lr0" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert still["config"]["base_checkpoint"] and still["config"]["recipe"]["lr_schedule"] == \
        "constant_with_warmup"
    moved = train(output_dir=str(tmp_path / "lr"), steps=2, batch_size=2, log_every=1,
                  learning_rate=1e-3, base_checkpoint=str(base), seed=1, command="test")
    assert moved["files"]["tokenizer.json"] == base_files["tokenizer.json"]
    assert moved["files"]["unet.safetensors"] != base_files["unet.safetensors"]
    with pytest.raises(FileNotFoundError, match="missing"):
        train(output_dir=str(tmp_path / "none"), base_checkpoint=str(tmp_path / "absent"))


def test_bf16_mixed_precision_training_is_recorded_and_deterministic(tmp_path):
    runs = [train(output_dir=str(tmp_path / f"run{i}"), steps=3, batch_size=2, log_every=1,
                  corpus_per_variant=20, command="test", recipe_overrides={"mixed_precision": "bf16"})
            for i in range(2)]
    assert runs[0]["config"]["recipe"]["mixed_precision"] == "bf16"
    losses = [[h["loss"] for h in m["loss_history"]] for m in runs]
    assert all(np.isfinite(losses[0])) and losses[0] == losses[1]
    assert runs[0]["files"]["unet.safetensors"] == runs[1]["files"]["unet.safetensors"]
    # a float32 run differs: the recipe key really switched the arithmetic
    fp32 = train(output_dir=str(tmp_path / "fp32"), steps=3, batch_size=2, log_every=1,
                 corpus_per_variant=20, command="test")
    assert [h["loss"] for h in fp32["loss_history"]] != losses[0]


def test_tiny_presets_refuse_a_data_dir_they_would_ignore(tmp_path):
    from mgie.mgie import MGIE

    for trainer in (train, MGIE.train):
        with pytest.raises(ValueError, match="synth train split"):
            trainer(output_dir=str(tmp_path), data_dir=str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_unknown_recipe_override_is_refused_before_training(tmp_path):
    from mgie.mgie import MGIE

    with pytest.raises(ValueError, match="unknown recipe key"):
        train(output_dir=str(tmp_path), recipe_overrides={"learning_rat": 1e-3})
    with pytest.raises(ValueError, match="unknown recipe key"):
        MGIE.train(output_dir=str(tmp_path), recipe_overrides={"instruction_los": False})
    with pytest.raises(ValueError, match="mixed_precision must be 'no' or 'bf16'"):
        train(output_dir=str(tmp_path), recipe_overrides={"mixed_precision": "fp16"})
    with pytest.raises(ValueError, match=r"unknown categories \['backgrond'\]; the synth categories: recolour"):
        train(output_dir=str(tmp_path), recipe_overrides={"category_weights": {"backgrond": 4}})
    with pytest.raises(ValueError, match="every weight must be a number >= 0"):
        train(output_dir=str(tmp_path), recipe_overrides={"category_weights": {"background": -1}})
    with pytest.raises(ValueError, match="kept_weight must be > 0"):
        train(output_dir=str(tmp_path), recipe_overrides={"kept_weight": 0})
    from benchmark.datasets.synth import CATEGORIES

    with pytest.raises(ValueError, match="at least one category must weigh more than 0"):
        train(output_dir=str(tmp_path), recipe_overrides={"category_weights": dict.fromkeys(CATEGORIES, 0)})
    with pytest.raises(ValueError, match="mixed_precision must be 'no' or 'bf16'"):
        MGIE.train(output_dir=str(tmp_path), recipe_overrides={"mixed_precision": "fp16"})
    assert not any(tmp_path.iterdir())


@needs_cuda
def test_tiny_training_on_a_gpu_in_bf16_is_recorded_and_its_checkpoint_edits(tmp_path):
    out = tmp_path / "gpu"
    m = train(output_dir=str(out), steps=6, batch_size=4, device="cuda", log_every=1,
              corpus_per_variant=20, command="test", recipe_overrides={"mixed_precision": "bf16"})
    assert m["device"].startswith("cuda") and m["config"]["recipe"]["mixed_precision"] == "bf16"
    assert len(m["loss_history"]) == 6 and all(np.isfinite(h["loss"]) for h in m["loss_history"])
    model = InstructPix2Pix(checkpoint=str(out), device="cuda")
    res = model.edit([EditRequest(s, seed=0, settings={"steps": 4}) for s in _samples(3)])
    assert all(r.image.shape == (64, 64, 3) and np.isfinite(r.image).all() for r in res)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_sd15_recipe_trains_from_a_diffusers_folder_and_the_adapter_loads_it(tmp_path, device):
    from _dataset_fixtures import write_ipr2pr_folder
    from _helpers import tiny_sd_folder
    from diffusers import UNet2DConditionModel

    base = tiny_sd_folder(tmp_path / "sd", WORDS * 5 + ["make it look like painting 1", "a photo"])
    data = write_ipr2pr_folder(tmp_path / "ipr2pr", n_prompts=6, seeds_per_prompt=2, size=40)["root"]
    out = tmp_path / "out"
    manifest = train(preset="sd15", output_dir=str(out), steps=3, batch_size=4, base_checkpoint=str(base),
                     data_dir=str(data), seed=0, device=device, log_every=1,
                     recipe_overrides={"resolution": 16, "resize_range": [16, 20],
                                       "per_device_batch_size": 2})
    assert manifest["gradient_accumulation"] == 2 and manifest["steps"] == 3
    assert manifest["mixed_precision"] == ("bf16" if device == "cuda" else "no")  # bf16 on GPUs
    assert manifest["device"].startswith(device)
    assert [h["step"] for h in manifest["loss_history"]] == [1, 2, 3]
    assert all(np.isfinite(h["loss"]) for h in manifest["loss_history"])
    unet = UNet2DConditionModel.from_pretrained(out / "unet")
    assert unet.config.in_channels == 8  # conv_in surgery: noisy + source latents
    # the base's 4 input channels were trained from their copy; the 4 new ones from zero
    base_w = UNet2DConditionModel.from_pretrained(base / "unet").conv_in.weight
    assert unet.conv_in.weight.shape[1] == 2 * base_w.shape[1]
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert "unet/diffusion_pytorch_model.safetensors" in files
    assert not any(f.startswith("training-state") for f in files)
    model = InstructPix2Pix(preset="sd15", weights_dir=str(out))
    assert model.resolution == 16  # UNet sample size x VAE scale factor
    sample = _samples(1)[0]
    res = model.edit([EditRequest(sample, seed=0, settings={"steps": 2})])[0]
    assert np.asarray(to_rgb_image(res.image)).shape == (16, 16, 3)


def test_sd15_training_saves_its_state_and_resumes(tmp_path):
    from _dataset_fixtures import write_ipr2pr_folder
    from _helpers import tiny_sd_folder

    base = tiny_sd_folder(tmp_path / "sd", WORDS * 5 + ["make it look like painting 1", "a photo"])
    data = write_ipr2pr_folder(tmp_path / "ipr2pr", n_prompts=6, seeds_per_prompt=2, size=40)["root"]
    kw = dict(preset="sd15", batch_size=2, base_checkpoint=str(base), data_dir=str(data), seed=0,
              device="cpu", log_every=1, recipe_overrides={"resolution": 16, "resize_range": [16, 20],
                                                           "per_device_batch_size": 1})
    out = tmp_path / "out"
    train(output_dir=str(out), steps=3, checkpoint_every=2, **kw)
    state = json.loads((out / "training-state" / "state.json").read_text())
    assert state["step"] == 2 and [h["step"] for h in state["history"]] == [1, 2]
    resumed = train(output_dir=str(out), steps=4, checkpoint_every=100, resume=True, **kw)
    # steps 1-2 come from the saved state; 3-4 were trained after it
    assert [h["step"] for h in resumed["loss_history"]] == [1, 2, 3, 4]
    assert resumed["loss_history"][:2] == state["history"]
    # a resumed run repeats the uninterrupted one: same data, noise and optimizer state
    whole = train(output_dir=str(tmp_path / "whole"), steps=4, checkpoint_every=100, **kw)
    assert whole["loss_history"] == resumed["loss_history"]


def test_sd15_training_without_base_weights_names_what_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match="stable-diffusion-v1-5"):
        train(preset="sd15", output_dir=str(tmp_path), steps=1,
              base_checkpoint=str(tmp_path / "missing"))


def test_config_hash_is_the_same_in_every_process():
    """The output store is keyed by the config hash; diffusers' config bookkeeping (a list built
    from a set) once made it differ between processes, so every run recomputed every edit."""
    import os
    import subprocess
    import sys

    code = ("from baselines.instruct_pix2pix import InstructPix2Pix; "
            "print(InstructPix2Pix().config_hash)")
    hashes = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True)
        hashes.add(out.stdout.strip().splitlines()[-1])
    assert len(hashes) == 1 and len(next(iter(hashes))) == 64


def test_category_weights_reweight_the_training_mixture_deterministically():
    plain = _synth_batches(8, 0, 16)
    assert next(_synth_batches(8, 0, 16, category_weights={}))[3] == next(plain)[3]

    def share(weights):
        batches = _synth_batches(64, 0, 16, category_weights=weights)
        texts = [t for _ in range(6) for t in next(batches)[3]]
        return np.mean(["background" in t for t in texts]), texts

    base, _ = share(None)
    heavy, texts = share({"background": 4})
    # pure background swaps are about 4% of samples, 15% at weight 4; multi-step instructions
    # that mention the background too keep the text share's floor near 4%
    assert heavy > 1.6 * base
    assert share({"background": 4})[1] == texts  # a function of (seed, batch) only
    none, _ = share({"background": 0})
    assert none < base
