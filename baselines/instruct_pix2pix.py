"""InstructPix2Pix (Brooks et al. 2023) on the shared diffusion editing core.

Presets
-------
``tiny``  in-code configs: a small ``UNet2DConditionModel`` (8-channel-style input: noisy latents
          + source latents), the exact ``PixelUnshuffleAutoencoder`` (factor 4: 64 px -> 48 x 16
          x 16), a 2-layer CLIP text encoder and a BPE tokenizer trained on synth text. Trained in
          this repo on the synth train split; the checkpoint ships in
          ``baselines/checkpoints/instruct-pix2pix-tiny/`` with a manifest (sha256 of every file,
          exact command, seed, steps, wall time, final loss).
``sd15``  ``timbrooks/instruct-pix2pix`` by public name through diffusers, from the local
          Hugging Face cache or ``--weights-dir``; its training recipe starts from
          ``runwayml/stable-diffusion-v1-5`` as in the paper (256 px, batch 1024, lr 1e-4, no
          warm-up, 10,000 steps, random flip and resize-crop 256-288 -> 256).

Input transform (documented, not silent): a source whose size differs from the preset's
resolution is resized to ``resolution x resolution`` with PIL bicubic; outputs come back at that
resolution (metrics resize outputs to the target's size, MagicBrush's convention). Instructions
longer than the tokenizer's 77 tokens are truncated, and the result records a warning.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmark.api import (BaseEditModel, EditRequest, EditResult, MissingWeightsError,
                           stable_hash)
from benchmark.diffusion.checkpoints import (load_manifest, load_module_weights, manifest_digest,
                                             write_checkpoint)

NAME = "instruct-pix2pix"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints" / "instruct-pix2pix-tiny"
SD15_REPO = "timbrooks/instruct-pix2pix"
SD15_BASE_REPO = "runwayml/stable-diffusion-v1-5"

TINY = {
    "resolution": 64,
    "ae_factor": 4,
    # Cross-attention at the 8 x 8 level only: self-attention over the 16 x 16 grid made a CPU
    # edit 4x slower for no measured gain on synth edits.
    # The instruction also reaches every ResNet block at every resolution, through diffusers'
    # `addition_embed_type="text"` (attention-pooled encoder_hidden_states added to the time
    # embedding) and FiLM (`scale_shift`). Why: with cross-attention alone the tiny UNet barely
    # read its instruction; "make it much brighter" and "... darker" gave mean luma 0.515 vs 0.513,
    # and its x0 prediction from pure noise was as good with another sample's instruction
    # (scripts/probe_text_conditioning.py). Global retouches need the instruction everywhere.
    # With it (2,000 steps, same recipe): unguided 20-step edits reach synth-ma5k l1 0.063 vs
    # identity's 0.084 (24 samples, seed 0; the previous model: 0.088). The pooled path reads only
    # encoder_hidden_states, so any conditioning (the MLLM edit head's) still plugs in unchanged.
    # Width (32, 64), 2 attention heads, no mid block: 0.089-0.115 s per edit (batch 8, 20 steps,
    # 3-way guidance, float32, 2-core AMD EPYC) against 0.366-0.381 s for the previous (64, 128)
    # UNet with 16 heads, measured alongside. Its 16 heads were 4- and 8-wide: PyTorch's CPU flash
    # attention is slow at such widths, and attention took a third of an edit. Note diffusers'
    # legacy naming: in UNet2DConditionModel `attention_head_dim` is the number of heads. On the
    # validation probes the smaller UNet edits as well, but keeps unmasked pixels less well at
    # αX = 7.5 until trained longer (l1_out_mask 0.063 / 0.050 / 0.043 at 2,000 / 3,000 / 4,000
    # steps vs 0.032), hence the recipe's 4,000 steps (docs/tiny-models.md, "A smaller UNet").
    "unet": dict(sample_size=16, block_out_channels=(32, 64),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), mid_block_type=None,
                 layers_per_block=1, cross_attention_dim=64, attention_head_dim=2,
                 norm_num_groups=16, addition_embed_type="text", addition_embed_type_num_heads=4,
                 resnet_time_scale_shift="scale_shift"),
    "source_residual": True,  # see benchmark.diffusion.unet.SourceResidualUNet
    "text_hidden": 64,
    "vocab_size": 1024,
    # x0 ("sample") prediction, not SD's epsilon: with an exact autoencoder every bit of noise left
    # at the last step is visible, and an epsilon/v model must learn pixel-level noise at low
    # noise levels (measured: v-prediction after 750 steps still left its outputs noisy, l1 3.4x
    # identity's on synth-ma5k); predicting the clean image lets the UNet copy the source.
    # Zero terminal SNR (Lin et al. 2024, "Common diffusion noise schedules and sample steps are
    # flawed"): SD's schedule keeps sqrt(alphas_cumprod[999]) = 0.068 of the target in the
    # "pure-noise" training input, and the tiny model learned to read the edit off that leak: its
    # x0 prediction at t = 999 had l1 0.057 from a noised target but 0.148 from the pure noise
    # sampling starts with (identity: 0.084; synth-ma5k, 24 samples).
    "scheduler": dict(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                      beta_end=0.012, prediction_type="sample",
                      timestep_spacing="trailing", rescale_betas_zero_snr=True),
    # Lin et al.'s third fix, which they pair with zero terminal SNR: rescale the guided
    # prediction towards the conditioned one's std (phi = 0.7, their value). Eq. 5 at αX = 7.5
    # extrapolates a model that follows its instruction far past the edit (synth-ma5k l1 0.107 at
    # the protocol's guidance vs 0.063 unguided; 0.088 with the rescale; 24 samples, seed 0).
    "guidance_rescale": 0.7,
}

# Published InstructPix2Pix recipe (paper, section 4 / appendix): used by `--preset sd15`.
SD15_RECIPE = {"resolution": 256, "batch_size": 1024, "learning_rate": 1e-4, "steps": 10_000,
               "warmup_steps": 0, "flip": True, "resize_range": (256, 288),
               "conditioning_dropout": 0.05, "per_device_batch_size": 32, "max_grad_norm": 1.0}
TINY_RECIPE = {"resolution": 64, "batch_size": 32, "learning_rate": 1e-3, "steps": 4000,
               "warmup_steps": 100, "flip": False, "conditioning_dropout": 0.05,
               "timestep_bias": "none", "timestep_bias_multiplier": 1.0, "timestep_bias_portion": 0.25,
               # "bf16": autocast (weights and optimizer stay float32), on the CPU too; with the
               # plain attention processor a step runs 2.86 vs 2.19 steps/s on the 2-core CPU (native
               # bf16: AMX). Not the default: a bf16 run of 3,000 steps (1,048 s) scored better on
               # four synth tasks but worse on synth-magicbrush (l1_in_mask 0.2908 vs 0.2868,
               # l1_out_mask 0.0385 vs 0.0318), and the MGIE-tiny trained on it regressed (docs/tiny-models.md, bf16 training probe).
               "mixed_precision": "no",
               # loss weight of the samples whose image was dropped (InstructPix2Pix: 1);
               # benchmark.diffusion.training.diffusion_loss says why it is a knob
               "dropped_image_weight": 1.0,
               # extra share of samples whose instruction alone is dropped, on top of the 5/5/5
               # (0 = InstructPix2Pix's scheme); benchmark.diffusion.training.conditioning_dropout
               "extra_text_dropout": 0.0,
               # loss weight of the latent elements the edit leaves unchanged, over the changed
               # ones (1 = the plain MSE); benchmark.diffusion.training.diffusion_loss says why
               "kept_weight": 1.0,
               # exponential moving average of the trained weights, written as the checkpoint:
               # diffusers' EMAModel with its defaults (decay min(0.9999, (1 + s) / (10 + s))), as
               # its train_instruct_pix2pix.py --use_ema; InstructPix2Pix's own config trains with EMA
               "ema": False,
               # diffusers' get_scheduler name; "constant" (with warmup_steps=0) matches MGIE's
               # joint stage (fixed lr 1e-4), for fine-tuning a trained checkpoint (--base-checkpoint)
               "lr_schedule": "cosine",
               # the latents' scaling_factor: None = 1 / std of synth targets' latents (SD's rule
               # for its 0.18215); a number is used as is. Larger scales (6.5, 13: more signal per
               # noise at every timestep) guided worse (docs/tiny-models.md, "A larger latent scale")
               "latent_scale": None,
               # {synth sample category: weight} over the train mixture, the rest weighing 1
               # (_synth_batches); {} is the plain mixture, in which background swaps are about
               # 4% of samples (docs/tiny-models.md, "Background swaps")
               "category_weights": {}}


def _bare(unet):
    """The UNet2DConditionModel inside optional SourceResidualUNet / InferenceUNet wrappers (what
    checkpoints store)."""
    while hasattr(unet, "unet"):
        unet = unet.unet
    return unet


def build_tiny_components(tokenizer, tiny: dict | None = None):
    """Fresh (untrained) tiny UNet, autoencoder, text encoder and noise scheduler, from ``tiny``
    (default ``TINY``; a checkpoint passes the config it was trained with). ``tokenizer=None``
    builds no text encoder (None in its place), for conditioning that is not text."""
    tiny = tiny or TINY
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    from benchmark.diffusion.autoencoders import PixelUnshuffleAutoencoder
    from benchmark.diffusion.text import tiny_clip_text_config

    vae = PixelUnshuffleAutoencoder(factor=tiny["ae_factor"])
    ch = vae.config.latent_channels
    unet = UNet2DConditionModel(in_channels=2 * ch, out_channels=ch, **tiny["unet"])
    text_encoder = (None if tokenizer is None else
                    CLIPTextModel(tiny_clip_text_config(len(tokenizer), tokenizer, tiny["text_hidden"])))
    scheduler = DDPMScheduler(**tiny["scheduler"])
    return unet, vae, text_encoder, scheduler


class InstructPix2Pix(BaseEditModel):
    name = NAME

    def __init__(self, preset: str | None = None, device: str = "cpu",
                 weights_dir: str | None = None, checkpoint: str | None = None,
                 dtype: str = "float32", compile: bool = False, **_: Any):
        """``dtype`` / ``compile``: how the UNet runs (``benchmark.diffusion.unet.for_inference``;
        recorded in ``config()``)."""
        from benchmark.diffusion.unet import for_inference

        self.preset = preset or "tiny"
        self.device = device
        if self.preset == "tiny":
            self._load_tiny(Path(checkpoint) if checkpoint else CHECKPOINT_DIR, dtype, compile)
        elif self.preset == "sd15":
            self._load_sd15(weights_dir)
            self.unet = for_inference(self.unet, dtype, compile, device)
        else:
            raise ValueError(f"unknown preset {self.preset!r} for {NAME} (tiny, sd15)")
        self.inference = {"dtype": dtype, "compile": bool(compile)}
        self.unet.eval().to(device)
        self.text_encoder.eval().to(device)
        self.vae.eval().to(device)
        self._null = None

    # ---------------------------------------------------------------- loading
    def _load_tiny(self, ckpt: Path, dtype: str = "float32", compile: bool = False) -> None:
        from diffusers import EulerAncestralDiscreteScheduler

        from benchmark.diffusion.unet import for_inference

        from benchmark.diffusion.autoencoders import PixelUnshuffleAutoencoder
        from benchmark.diffusion.text import load_tokenizer

        manifest = load_manifest(ckpt, what=f"{NAME} tiny checkpoint",
                                 how=f"editbench train --model {NAME} --preset tiny")
        self.manifest = manifest
        self.tokenizer = load_tokenizer(ckpt / "tokenizer.json")
        unet, _, text_encoder, _ = build_tiny_components(self.tokenizer, manifest["config"].get("tiny"))
        self.vae = PixelUnshuffleAutoencoder(**manifest["config"]["vae"])
        load_module_weights(unet, ckpt / "unet.safetensors")
        load_module_weights(text_encoder, ckpt / "text_encoder.safetensors")
        unet = for_inference(unet, dtype, compile, self.device)
        if manifest["config"].get("tiny", {}).get("source_residual"):
            from benchmark.diffusion.unet import SourceResidualUNet

            unet = SourceResidualUNet(unet, self.vae.config.latent_channels,
                                      self.vae.config.scaling_factor)
        self.unet, self.text_encoder = unet, text_encoder
        self.scheduler_config = EulerAncestralDiscreteScheduler.from_config(
            manifest["config"]["scheduler"]).config
        self.resolution = TINY["resolution"]
        # checkpoints from before the rescale was part of the preset sample without it
        self.guidance_rescale = float(manifest["config"].get("tiny", {}).get("guidance_rescale", 0.0))
        self._weights_sha = manifest_digest(manifest)

    def _load_sd15(self, weights_dir: str | None) -> None:
        from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline

        source = weights_dir or SD15_REPO
        try:
            pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
                source, local_files_only=True, safety_checker=None, torch_dtype=torch.float32)
        except Exception as exc:  # noqa: BLE001 - turn a deep library error into one clear line
            raise MissingWeightsError(
                f"{NAME} sd15 weights not found locally ({SD15_REPO}); on a machine with network run "
                f"`huggingface-cli download {SD15_REPO}` or pass --weights-dir DIR "
                f"({type(exc).__name__})") from None
        self.unet, self.vae, self.text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
        self.tokenizer = pipe.tokenizer
        self.scheduler_config = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config).config
        # 512 for SD-v1.5-sized checkpoints: the UNet's sample size times the VAE's scale factor
        self.resolution = int(self.unet.config.sample_size) * 2 ** (len(self.vae.config.block_out_channels) - 1)
        h = stable_hash({k: str(v.dtype) + str(tuple(v.shape))
                         for k, v in list(self.unet.state_dict().items())[:50]})
        self._weights_sha = f"{SD15_REPO}:{h}"
        self.manifest = None
        self.guidance_rescale = 0.0  # diffusers' InstructPix2Pix pipeline has none

    # ---------------------------------------------------------------- identity
    def config(self) -> dict[str, Any]:
        return {"name": NAME, "preset": self.preset, "resolution": self.resolution,
                "unet": dict(self.unet.config), "scheduler": dict(self.scheduler_config),
                "guidance_rescale": self.guidance_rescale,
                "dtype": str(_bare(self.unet).dtype)} | self._inference_extra()

    def _inference_extra(self) -> dict[str, Any]:
        # only a compiled UNet adds a key, so float32 rows keep the config hash they always had
        return {"compile": True} if self.inference["compile"] else {}

    @property
    def variant(self) -> str | None:
        from benchmark.diffusion.unet import inference_variant

        return inference_variant(**self.inference)

    @property
    def weights_sha256(self) -> str | None:
        return self._weights_sha

    # ---------------------------------------------------------------- editing
    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        from benchmark.diffusion.text import tokenize

        ids = tokenize(self.tokenizer, texts).to(self.device)
        return self.text_encoder(ids)[0]

    def null_condition(self) -> torch.Tensor:
        if self._null is None:
            self._null = self.encode_text([""])
        return self._null

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        from diffusers import EulerAncestralDiscreteScheduler

        from benchmark.diffusion.sampling import (CPU_CHUNK, edit_images_batched, fixed_chunks,
                                                  images_to_tensor,
                                                  sampling_kwargs)

        if not requests:
            return []
        settings = dict(requests[0].settings)
        if any(dict(r.settings) != settings for r in requests):
            raise ValueError("one batch must share generation settings")
        texts = [r.sample.instruction for r in requests]
        lengths = [len(self.tokenizer(t).input_ids) for t in texts]
        source = images_to_tensor([r.sample.source for r in requests], self.resolution).to(self.device)
        chunk = CPU_CHUNK if self.device == "cpu" else None  # see sampling.CPU_CHUNK
        if chunk is None:
            cond = self.encode_text(texts)
        else:  # the text encoder too runs at one fixed batch size on CPU
            cond = torch.cat([self.encode_text([texts[i] for i in idx])[:real]
                              for idx, real in fixed_chunks(len(texts), chunk)])
        kwargs = sampling_kwargs(settings, self.guidance_rescale)
        # CPU generators on every device: a seed draws the same noise on a CPU and a GPU
        # (diffusers' randn_tensor draws on the generator's device and moves the noise)
        gens = [r.generator() for r in requests]
        images = edit_images_batched(
            self.unet, self.vae, lambda: EulerAncestralDiscreteScheduler.from_config(self.scheduler_config),
            source, cond, self.null_condition(), gens, chunk=chunk, **kwargs)
        out = []
        for img, n in zip(images.cpu(), lengths):
            extra = {}
            if n > self.tokenizer.model_max_length:
                extra["warning"] = (f"instruction truncated from {n} to "
                                    f"{self.tokenizer.model_max_length} tokens")
            out.append(EditResult(image=img.permute(1, 2, 0).numpy(), extra=extra))
        return out


# ==================================================================== training
def _check_category_weights(weights: dict | None) -> dict:
    """The recipe's ``category_weights``, checked: synth categories to weights >= 0, one > 0."""
    from benchmark.datasets import synth

    if not isinstance(weights, dict | None):
        raise ValueError(f"category_weights must be a mapping {{category: weight}}, got {weights!r}")
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(synth.CATEGORIES))
    if unknown:
        raise ValueError(f"category_weights: unknown categories {unknown}; the synth categories: "
                         f"{', '.join(synth.CATEGORIES)}")
    if any(isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in weights.values()):
        raise ValueError(f"category_weights: every weight must be a number >= 0, got {weights}")
    if not any(weights.get(c, 1.0) > 0 for c in synth.CATEGORIES):  # nothing could be drawn
        raise ValueError("category_weights: at least one category must weigh more than 0")
    return weights


def _synth_batches(batch_size: int, seed: int, resolution: int, start: int = 0,
                   category_weights: dict | None = None):
    """Endless deterministic batches of (source, target, instruction) from every synth variant's
    train split; batch k is a function of (seed, k) only, so a resumed run sees the same data.
    ``category_weights`` ({sample category: weight}, others 1) reweights the mixture by rejection:
    a drawn sample is kept with probability weight / the largest weight. None or {} draws exactly
    the batches of the unweighted mixture."""
    from benchmark.datasets import synth
    from benchmark.diffusion.sampling import images_to_tensor

    per_variant = synth.SPLITS["train"]
    weights = _check_category_weights(category_weights)
    top = max([1.0, *weights.values()])
    k = start
    while True:
        rng = np.random.default_rng([seed, k])
        sources, targets, texts = [], [], []
        while len(texts) < batch_size:
            variant = synth.VARIANTS[int(rng.integers(len(synth.VARIANTS)))]
            samples = synth.generate(variant, "train", int(rng.integers(per_variant)), size=resolution)
            s = samples[int(rng.integers(len(samples)))]
            if weights and rng.random() >= weights.get(s.category, 1.0) / top:
                continue
            sources.append(s.source)
            targets.append(s.target)
            texts.append(s.instruction)
        yield k, images_to_tensor(sources, resolution), images_to_tensor(targets, resolution), texts
        k += 1


def latent_scale(vae, seed: int = 0, resolution: int = 64) -> float:
    """1 / std of the latents of 256 synth training targets, as SD's 0.18215 was chosen for its
    VAE; a function of the seed only, so an evaluation can recompute it."""
    _, _, probe, _ = next(_synth_batches(256, seed + 10_000, resolution))
    return round(float(1.0 / vae.encode(probe).latent_dist.mode().std()), 4)


def train(preset: str = "tiny", output_dir: str | None = None, steps: int | None = None,
          batch_size: int | None = None, learning_rate: float | None = None, seed: int = 0,
          device: str | None = None, resume: bool = False, log_every: int = 50,
          checkpoint_every: int = 500, command: str | None = None, data_dir: str | None = None,
          corpus_per_variant: int = 2000, recipe_overrides: dict | None = None,
          base_checkpoint: str | None = None, **_: Any) -> dict:
    """Train a preset; returns the manifest. Tiny: builds the tokenizer, measures the latent
    scale, then trains UNet + text encoder on synth (accelerate; CPU or GPU). Tiny with
    ``base_checkpoint``: fine-tunes that checkpoint (its tokenizer, weights and latent scale)
    instead, e.g. to give InstructPix2Pix-tiny the UNet steps MGIE's joint stage adds on top of
    it (docs/tiny-models.md, LGIE-tiny and MGIE-tiny: the control row)."""
    if preset == "sd15":
        return train_sd15(output_dir=output_dir, steps=steps, batch_size=batch_size,
                          learning_rate=learning_rate, seed=seed, device=device, resume=resume,
                          log_every=log_every, checkpoint_every=checkpoint_every, command=command,
                          data_dir=data_dir, recipe_overrides=recipe_overrides,
                          base_checkpoint=base_checkpoint, **_)
    if preset != "tiny":
        raise ValueError(f"unknown preset {preset!r} for {NAME} (tiny, sd15)")
    if data_dir is not None:  # it would otherwise be a silent no-op
        raise ValueError("the tiny preset trains on the synth train split; --data-dir is for the "
                         "full-size presets")
    from diffusers.optimization import get_scheduler

    from benchmark.diffusion.checkpoints import load_training_state, save_training_state
    from benchmark.diffusion.text import (load_tokenizer, save_tokenizer, synth_corpus, tokenize,
                                          train_tokenizer)
    from benchmark.diffusion.training import (autocast_for, diffusion_loss, fresh_accelerator,
                                              resolve_recipe, timestep_bias_weights)

    recipe = resolve_recipe(TINY_RECIPE, recipe_overrides, steps=steps, batch_size=batch_size,
                            learning_rate=learning_rate)
    out = Path(output_dir) if output_dir else CHECKPOINT_DIR
    work = out / "training-state"
    _check_category_weights(recipe["category_weights"])
    if not recipe["kept_weight"] > 0:
        raise ValueError(f"kept_weight must be > 0, got {recipe['kept_weight']}")
    autocast_for(recipe)  # checks the mixed_precision value before any work
    accelerator = fresh_accelerator(cpu=(device == "cpu") or not torch.cuda.is_available(),
                                     mixed_precision=recipe["mixed_precision"])
    torch.manual_seed(seed)

    tok_path = work / "tokenizer.json"
    base = None
    if base_checkpoint:
        base = load_manifest(base_checkpoint, what="InstructPix2Pix tiny checkpoint to fine-tune",
                             how="editbench train --model instruct-pix2pix --preset tiny")
        if base.get("model") != NAME or base.get("preset") != "tiny":
            raise ValueError(f"--base-checkpoint {base_checkpoint} holds {base.get('model')} "
                             f"({base.get('preset')}), not {NAME} (tiny)")
    if resume and tok_path.is_file():
        tokenizer = load_tokenizer(tok_path)
    elif base is not None:
        tokenizer = load_tokenizer(Path(base_checkpoint) / "tokenizer.json")
        save_tokenizer(tokenizer, tok_path)
    else:
        tokenizer = train_tokenizer(synth_corpus(corpus_per_variant), vocab_size=TINY["vocab_size"])
        save_tokenizer(tokenizer, tok_path)
    unet, vae, text_encoder, noise_scheduler = build_tiny_components(tokenizer)
    if recipe["mixed_precision"] == "bf16":
        from benchmark.diffusion.unet import use_plain_attention

        use_plain_attention(unet)  # float32 runs keep SDPA, so old commands reproduce bit for bit

    if base is not None:
        if stable_hash(base["config"]["tiny"]) != stable_hash(TINY):  # (JSON has no tuples)
            raise ValueError(f"--base-checkpoint {base_checkpoint} was trained with another tiny "
                             "architecture than this release's")
        load_module_weights(unet, Path(base_checkpoint) / "unet.safetensors")
        load_module_weights(text_encoder, Path(base_checkpoint) / "text_encoder.safetensors")
        scale = float(base["config"]["vae"]["scaling_factor"])
    elif recipe["latent_scale"] is not None:
        scale = float(recipe["latent_scale"])
    else:
        scale = latent_scale(vae, seed, recipe["resolution"])
    vae.register_to_config(scaling_factor=scale)
    if TINY["source_residual"]:
        from benchmark.diffusion.unet import SourceResidualUNet

        if base is None:
            with torch.no_grad():  # start as the identity edit: the residual is zero
                unet.conv_out.weight.zero_()
                unet.conv_out.bias.zero_()
        unet = SourceResidualUNet(unet, vae.config.latent_channels, scale)

    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=recipe["learning_rate"], weight_decay=1e-2)
    lr_sched = get_scheduler(recipe["lr_schedule"], optimizer, num_warmup_steps=recipe["warmup_steps"],
                             num_training_steps=recipe["steps"])
    unet, text_encoder, optimizer = accelerator.prepare(unet, text_encoder, optimizer)
    ema = None
    if recipe["ema"]:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(params)
    start, history, elapsed0 = 0, [], 0.0
    if resume and (work / "state.json").is_file():
        start, history, elapsed0 = load_training_state(work, _bare(accelerator.unwrap_model(unet)),
                                                       accelerator.unwrap_model(text_encoder),
                                                       optimizer, lr_sched)
        if ema is not None:
            from safetensors.torch import load_file

            if not (work / "ema.safetensors").is_file():
                raise ValueError(f"{work} holds no EMA weights (that run trained without ema): "
                                 "resume it without --recipe ema=true")
            shadow = load_file(str(work / "ema.safetensors"))
            # on the parameters' device: load_file reads to the CPU, a GPU run steps on cuda
            ema.shadow_params = [shadow[str(i)].to(p.device) for i, p in enumerate(params)]
            ema.optimization_step = start
    null_ids = tokenize(tokenizer, [""]).to(accelerator.device)
    t_weights = None if recipe["timestep_bias"] == "none" else timestep_bias_weights(
        noise_scheduler.config.num_train_timesteps, recipe["timestep_bias"],
        recipe["timestep_bias_multiplier"], recipe["timestep_bias_portion"])
    gen = torch.Generator().manual_seed(seed * 1_000_003 + start)
    t0 = time.perf_counter()
    losses: list[float] = []
    unet.train()
    text_encoder.train()
    for k, src, tgt, texts in _synth_batches(recipe["batch_size"], seed, recipe["resolution"], start,
                                             recipe["category_weights"]):
        if k >= recipe["steps"]:
            break
        src, tgt = src.to(accelerator.device), tgt.to(accelerator.device)
        with accelerator.autocast():
            cond = text_encoder(tokenize(tokenizer, texts).to(accelerator.device))[0]
            null = text_encoder(null_ids)[0]
            loss = diffusion_loss(unet, vae, noise_scheduler, src, tgt, cond, null, gen,
                                  recipe["conditioning_dropout"], t_weights,
                                  dropped_image_weight=recipe["dropped_image_weight"],
                                  extra_text_dropout=recipe["extra_text_dropout"],
                                  kept_weight=recipe["kept_weight"])
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_sched.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(params)
        losses.append(float(loss.detach()))
        step = k + 1
        if step % log_every == 0 or step == recipe["steps"]:
            mean = float(np.mean(losses[-log_every:]))
            history.append({"step": step, "loss": mean})
            rate = (step - start) / (time.perf_counter() - t0)
            print(f"step {step}/{recipe['steps']} loss {mean:.4f} ({rate:.2f} steps/s)", flush=True)
        if step % checkpoint_every == 0 and step < recipe["steps"]:
            save_training_state(work, step, history, elapsed0 + time.perf_counter() - t0,
                                _bare(accelerator.unwrap_model(unet)), accelerator.unwrap_model(text_encoder),
                                optimizer, lr_sched, tokenizer,
                                extra={"ema": {str(i): p for i, p in enumerate(ema.shadow_params)}}
                                if ema is not None else None)
    wall = elapsed0 + time.perf_counter() - t0
    if ema is not None:
        ema.copy_to(params)  # the checkpoint holds the averaged weights
    final_loss = history[-1]["loss"] if history else math.nan
    manifest = write_checkpoint(
        out,
        modules={"unet": _bare(accelerator.unwrap_model(unet)),
                 "text_encoder": accelerator.unwrap_model(text_encoder)},
        tokenizer=tokenizer,
        config={"vae": dict(vae.config), "scheduler": dict(noise_scheduler.config),
                "tiny": TINY, "recipe": recipe,
                **({"base_checkpoint": manifest_digest(base)} if base is not None else {})},
        dtype=torch.float16,  # the shipped checkpoint must stay under 10 MB
        info={"model": NAME, "preset": preset, "seed": seed, "steps": recipe["steps"],
              "wall_seconds": round(wall, 1), "final_loss": final_loss, "loss_history": history,
              "command": command or f"editbench train --model {NAME} --preset {preset} --seed {seed}",
              "device": str(accelerator.device), "torch": torch.__version__,
              "threads": torch.get_num_threads()},
    )
    return manifest


def _resize_crop_flip(images: Sequence[Image.Image], resolution: int, resize_range, flip: bool,
                      rng: np.random.Generator) -> list[torch.Tensor]:
    """InstructPix2Pix's training augmentation (``edit_dataset.py``): one random square resize in
    ``resize_range``, one random ``resolution`` crop and (optionally) one horizontal flip, the
    *same* for every image of the pair; tensors in [-1, 1]."""
    size = int(rng.integers(resize_range[0], resize_range[1] + 1))
    x0, y0 = (int(rng.integers(0, size - resolution + 1)) for _ in range(2))
    mirror = flip and rng.random() < 0.5
    out = []
    for im in images:
        im = im.convert("RGB").resize((size, size), Image.BICUBIC)
        im = im.crop((x0, y0, x0 + resolution, y0 + resolution))
        if mirror:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        out.append(torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1.0)
    return out


def _ipr2pr_batches(data_dir: str | None, batch_size: int, recipe: dict, seed: int, start: int = 0,
                    rank: int = 0):
    """Endless batches of IPr2Pr train pairs drawn with replacement and read as drawn, batch k a
    function of (seed, k, rank) (each process its own draws; ``start``: the first k, to resume);
    pairs that cannot be read are skipped (``benchmark.diffusion.training.draw_pairs``)."""
    from benchmark.datasets import ipr2pr
    from benchmark.diffusion.training import draw_pairs

    pairs = ipr2pr.pairs(data_dir, "train")
    if not len(pairs):
        raise ValueError("IPr2Pr: no training pairs under --data-dir")
    k = start
    while True:
        rng = np.random.default_rng([seed, 11, k, rank])
        pick = [it for _, it in draw_pairs(pairs, batch_size, rng)]
        crops = [_resize_crop_flip([it.source, it.target], recipe["resolution"],
                                   recipe["resize_range"], recipe["flip"], rng) for it in pick]
        yield (k, torch.stack([c[0] for c in crops]), torch.stack([c[1] for c in crops]),
               [it.instruction for it in pick])
        k += 1


def train_sd15(output_dir: str | None = None, steps: int | None = None, batch_size: int | None = None,
               learning_rate: float | None = None, seed: int = 0, device: str | None = None,
               resume: bool = False, log_every: int = 50, command: str | None = None,
               data_dir: str | None = None, recipe_overrides: dict | None = None,
               base_checkpoint: str | None = None, checkpoint_every: int = 500, **_: Any) -> dict:
    """The paper's recipe (SD15_RECIPE) from ``runwayml/stable-diffusion-v1-5`` (or
    ``base_checkpoint``, a local diffusers folder with unet/ vae/ text_encoder/ tokenizer/):
    conv_in widened to 8 channels (new ones zero), VAE and text encoder frozen (as diffusers'
    ``train_instruct_pix2pix.py``), UNet trained on IPr2Pr with conditioning dropout; batch =
    per-device batch x processes x gradient accumulation; bf16 on GPUs. Writes a diffusers
    ``StableDiffusionInstructPix2PixPipeline`` folder (safetensors) plus ``manifest.json``, which
    ``--preset sd15 --weights-dir DIR`` loads. Every ``checkpoint_every`` steps the main process
    saves the training state (UNet, optimizer, schedule, history: safetensors + JSON) under
    ``OUT/training-state``; ``--resume`` goes on from it."""
    import json

    from diffusers import (AutoencoderKL, DDPMScheduler, EulerAncestralDiscreteScheduler,
                           StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel)
    from diffusers.optimization import get_scheduler
    from transformers import AutoTokenizer, CLIPTextModel

    from benchmark.diffusion.checkpoints import (folder_digests, load_training_state,
                                                 save_training_state)
    from benchmark.diffusion.training import (batch_plan, diffusion_loss, fresh_accelerator,
                                              resolve_recipe, stream_seed)
    from benchmark.diffusion.unet import expand_conv_in
    from benchmark.files import atomic_write_json

    recipe = resolve_recipe(SD15_RECIPE, recipe_overrides, steps=steps, batch_size=batch_size,
                            learning_rate=learning_rate)
    out = Path(output_dir) if output_dir else Path("checkpoints") / "instruct-pix2pix-sd15"
    work = out / "training-state"
    source = base_checkpoint or SD15_BASE_REPO
    try:
        kw = dict(local_files_only=True)
        unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", **kw)
        vae = AutoencoderKL.from_pretrained(source, subfolder="vae", **kw)
        text_encoder = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **kw)
        tokenizer = AutoTokenizer.from_pretrained(source, subfolder="tokenizer", **kw)
        noise_scheduler = DDPMScheduler.from_pretrained(source, subfolder="scheduler", **kw)
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a deep library error
        raise MissingWeightsError(
            f"{NAME} sd15 training needs {SD15_BASE_REPO} (unet, vae, text_encoder, tokenizer, "
            f"scheduler) locally: on a machine with network run `huggingface-cli download "
            f"{SD15_BASE_REPO}`, or pass a diffusers folder ({type(exc).__name__})") from None
    expand_conv_in(unet)
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)

    on_gpu = torch.cuda.is_available() and device != "cpu"
    per_device, accum, procs = batch_plan(recipe)
    accelerator = fresh_accelerator(cpu=not on_gpu, mixed_precision="bf16" if on_gpu else "no",
                              gradient_accumulation_steps=accum)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=recipe["learning_rate"], weight_decay=1e-2)
    lr_sched = get_scheduler("constant_with_warmup", optimizer,
                             num_warmup_steps=recipe["warmup_steps"])
    unet, optimizer, lr_sched = accelerator.prepare(unet, optimizer, lr_sched)
    vae.to(accelerator.device)
    text_encoder.to(accelerator.device)

    def encode(texts):
        ids = tokenizer(texts, padding="max_length", truncation=True,
                        max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
        with torch.no_grad():
            return text_encoder(ids.to(accelerator.device))[0]

    null = encode([""])
    start, history, elapsed0 = 0, [], 0.0
    if resume and (work / "state.json").is_file():
        start, history, elapsed0 = load_training_state(work, accelerator.unwrap_model(unet), None,
                                                       optimizer, lr_sched)
        accelerator.print(f"resuming at step {start}")
    losses, t0 = [], time.perf_counter()
    micro = start * accum
    unet.train()
    for k, src, tgt, texts in _ipr2pr_batches(data_dir, per_device, recipe, seed, start=micro,
                                              rank=accelerator.process_index):
        if micro >= recipe["steps"] * accum:
            break
        gen = torch.Generator().manual_seed(stream_seed(seed, k, accelerator.process_index))
        with accelerator.accumulate(unet), accelerator.autocast():
            loss = diffusion_loss(unet, vae, noise_scheduler, src.to(accelerator.device),
                                  tgt.to(accelerator.device), encode(texts), null, gen,
                                  recipe["conditioning_dropout"])
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(unet.parameters(), recipe["max_grad_norm"])
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
        micro += 1
        losses.append(float(loss.detach()))
        step = micro // accum
        if accelerator.sync_gradients and (step % log_every == 0 or step == recipe["steps"]):
            history.append({"step": step, "loss": float(np.mean(losses[-log_every * accum:]))})
            accelerator.print(f"step {step}/{recipe['steps']} loss {history[-1]['loss']:.4f}")
        if (accelerator.sync_gradients and step % checkpoint_every == 0 and step < recipe["steps"]
                and accelerator.is_main_process):
            save_training_state(work, step, history, elapsed0 + time.perf_counter() - t0,
                                accelerator.unwrap_model(unet), None, optimizer, lr_sched)
    if accelerator.is_main_process:
        pipe = StableDiffusionInstructPix2PixPipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
            unet=accelerator.unwrap_model(unet),
            scheduler=EulerAncestralDiscreteScheduler.from_config(noise_scheduler.config),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.save_pretrained(out, safe_serialization=True)
        manifest = {"format": "editbench-diffusers-pipeline/1", "files": folder_digests(out), "model": NAME,
                    "preset": "sd15", "base": source, "recipe": recipe, "seed": seed,
                    "steps": recipe["steps"], "gradient_accumulation": accum, "processes": procs,
                    "wall_seconds": round(elapsed0 + time.perf_counter() - t0, 1),
                    "final_loss": history[-1]["loss"] if history else math.nan,
                    "loss_history": history, "device": str(accelerator.device),
                    "mixed_precision": accelerator.mixed_precision,
                    "command": command or f"editbench train --model {NAME} --preset sd15",
                    "torch": torch.__version__}
        atomic_write_json(out / "manifest.json", json.loads(json.dumps(manifest, default=str)))
        return manifest
    return {}


InstructPix2Pix.train = staticmethod(train)  # `editbench train --model instruct-pix2pix`
