"""The MLLM-guided editor: an ``MLLMGuide`` (LM + [IMG] tokens + edit head) conditioning the shared
diffusion editing core. LGIE (text-only LLM) and MGIE (LLaVA) are presets of this one class;
their adapter files only say which LM they use.

Tiny presets (in-code configs, trained on the synth train split):
0. *Vision pretraining* (MGIE, ``vision_pretrain_steps``; the shipped MGIE-tiny ran it; LLaVA's
   vision tower is OpenAI's CLIP ViT, kept frozen): the tiny tower is trained as the image
   encoder of a tiny CLIP on synth (picture, caption) pairs, then frozen.
1. *LM pretraining* (stands in for LLaMA/LLaVA pretraining, which a tiny random model lacks):
   all LM weights (and, for LLaVA, the vision tower unless stage 0 ran, and the projector) learn
   L_ins on synth
   (instruction [+ image] -> ground-truth expressive instruction + [IMG] tokens).
2. *MGIE training* (paper, section 4.1): LM body frozen; word embeddings, LM head, edit head and
   UNet trained with L_all = L_ins + 0.5 L_edit, AdamW, lr 5e-4 (MLLM side) / 1e-4 (UNet). The
   UNet, autoencoder and noise schedule start from an InstructPix2Pix-tiny checkpoint, the
   shipped one unless ``--base-checkpoint`` names another (the paper starts from Stable Diffusion;
   our tiny stand-in for a pretrained diffusion model).
Full-size presets (``7b``, ``mgie.pretrained``): a pretrained LLaVA / LLaMA-7B and SD-v1.5 by
public name, the paper's hyper-parameters (batch 128, lr 5e-4 / 1e-4, AdamW), training on
accelerate across GPUs; inference loads the trained folder (``--weights-dir``).

CPU determinism: the MLLM runs one request at a time and the diffusion core in fixed chunks of
``benchmark.diffusion.sampling.CPU_CHUNK`` (see there), so results do not depend on the batch
size; the expressive instruction is greedy and so seed-independent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.api import BaseEditModel, EditRequest, EditResult
from benchmark.diffusion.checkpoints import (load_manifest, load_module_weights, manifest_digest,
                                             write_checkpoint)
from mgie.core import Derived, EditHead, MLLMGuide, add_mgie_tokens, freeze_for_mgie

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

TINY_LM = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
               num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=False)
TINY_VISION = dict(image_size=64, patch_size=8, hidden_size=96, intermediate_size=192,
                   num_hidden_layers=3, num_attention_heads=3)
TINY_HEAD = dict(d_model=128, nhead=4, num_layers=2, dim_feedforward=256)
# instruction_loss=False is the paper's "w/o L_ins" ablation (Table 3): stage 2 trains on
# 0.5 * L_edit alone, so the MLLM's expressive instructions get no supervision there.
TINY_RECIPE = {"pretrain_steps": 1500, "pretrain_lr": 2e-3, "steps": 1000, "batch_size": 32,
               "lr_mllm": 5e-4, "lr_unet": 1e-4, "edit_weight": 0.5, "conditioning_dropout": 0.05,
               "instruction_loss": True,
               # whether stage 1 (the stand-in for LLaMA/LLaVA pretraining) already trains the
               # [IMG] tokens; False is the paper's order: the pretrained (M)LLM never saw them,
               # they are added for MGIE training with only embeddings and LM head trainable.
               # True (the shipped checkpoints' recipe): False at 3,000 joint steps scored
               # synth-referring cvs 0.7375 against the then shipped 0.7551 (docs/tiny-models.md,
               # "language-only pretraining").
               "pretrain_img_tokens": True,
               # MGIE only, stage 0: LLaVA's vision tower is a CLIP image encoder, pretrained
               # contrastively and kept frozen. With N > 0 steps the tiny tower is likewise trained
               # first, as the image half of a tiny CLIP on synth (source picture, input caption)
               # pairs, then frozen. 0: the tower trains from scratch with the LM in stage 1 (LGIE
               # has no tower). The shipped MGIE-tiny was trained with 1,500 steps here and
               # pretrain_steps=3000 (its manifest's command); with the 1,500 pretraining steps
               # alone the frozen tower encoded contrast but the LM did not use it
               # (docs/tiny-models.md, "The vision tower").
               "vision_pretrain_steps": 0, "vision_pretrain_batch_size": 64,
               "vision_pretrain_lr": 1e-3,
               # "bf16": autocast, as in InstructPix2Pix-tiny's recipe (weights stay float32)
               "mixed_precision": "no",
               # the joint stage's optimiser as apple/ml-mgie's released training command runs it:
               # AdamW, weight decay 0, cosine schedule after a linear warmup over 3% of the steps
               # (`--weight_decay 0. --warmup_ratio 0.03 --lr_scheduler_type cosine`). The
               # checkpoints before this (git history) kept both rates constant with AdamW's
               # default decay (0.01), so their end state was one point of a noisy trajectory:
               # 300 more constant-rate steps moved synth-referring cvs from 0.755 to 0.788 and
               # l1_in_mask from 0.319 to 0.336.
               "lr_schedule": "cosine", "warmup_ratio": 0.03, "weight_decay": 0.0}


def pixel_values(images, size: int = 64) -> torch.Tensor:
    """CLIP-normalised pixels for the tiny vision tower (images resized bicubic to ``size``)."""
    from PIL import Image

    arr = np.stack([np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC)
                               if im.size != (size, size) else im.convert("RGB"), dtype=np.float32)
                    for im in images]) / 255.0
    x = torch.from_numpy(arr).permute(0, 3, 1, 2)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def build_tiny_guide(tokenizer, multimodal: bool, cross_attention_dim: int) -> MLLMGuide:
    from transformers import CLIPVisionConfig, LlamaConfig, LlamaForCausalLM, LlavaConfig
    from transformers import LlavaForConditionalGeneration

    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    text = LlamaConfig(vocab_size=len(tokenizer), **TINY_LM, **ids)
    if multimodal:
        n_patches = (TINY_VISION["image_size"] // TINY_VISION["patch_size"]) ** 2
        cfg = LlavaConfig(vision_config=CLIPVisionConfig(**TINY_VISION), text_config=text,
                          image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                          image_seq_length=n_patches, vision_feature_layer=-1,
                          tie_word_embeddings=False)
        lm = LlavaForConditionalGeneration(cfg)
    else:
        n_patches = 0
        lm = LlamaForCausalLM(text)
    lm.generation_config.pad_token_id = tokenizer.pad_token_id
    head = EditHead(TINY_LM["hidden_size"], cross_attention_dim, **TINY_HEAD)
    return MLLMGuide(lm, tokenizer, head, multimodal=multimodal, n_image_tokens=n_patches)


class MLLMGuidedEditor(BaseEditModel):
    """Base for LGIE and MGIE: subclasses set ``name`` and ``multimodal``."""

    name = "mllm-guided"
    multimodal = True

    def __init__(self, preset: str | None = None, device: str = "cpu",
                 checkpoint: str | None = None, weights_dir: str | None = None,
                 dtype: str = "float32", compile: bool = False, **_: Any):
        """``dtype`` / ``compile``: how the UNet runs (``benchmark.diffusion.unet.for_inference``)."""
        self.preset = preset or "tiny"
        self.device = device
        self.inference = {"dtype": dtype, "compile": bool(compile)}
        if self.preset == "7b":
            self._load_full_size(checkpoint or weights_dir)
            return
        if self.preset != "tiny":
            raise ValueError(f"unknown preset {self.preset!r} for {self.name} (tiny, 7b)")
        self._load_tiny(Path(checkpoint) if checkpoint else CHECKPOINTS / f"{self.name}-tiny")

    def _load_full_size(self, folder: str | None) -> None:
        """A folder written by ``editbench train --model NAME --preset 7b`` (mgie.pretrained): its
        UNet, VAE, scheduler and trained (M)LLM parts, on the base (M)LLM it names."""
        from diffusers import EulerAncestralDiscreteScheduler

        from benchmark.api import MissingWeightsError
        from benchmark.diffusion.unet import for_inference
        from mgie import pretrained

        how = (f"editbench train --model {self.name} --preset 7b --data-dir IPR2PR_DIR --recipe "
               "expressive_file=PATH")
        if folder is None:
            raise MissingWeightsError(
                f"{self.name} 7b needs a trained folder (--weights-dir DIR); build it on GPUs with "
                f"`{how}` (base models {pretrained.default_lm(self.multimodal)} and {pretrained.SD15})")
        m = load_manifest(folder, what=f"{self.name} 7b checkpoint", how=how)
        if m.get("format") != pretrained.FORMAT or m.get("multimodal") != self.multimodal:
            raise ValueError(f"{folder} is not a {self.name} 7b checkpoint (format {m.get('format')!r}, "
                             f"model {m.get('model')!r})")
        folder = Path(folder)
        lm_dtype = torch.bfloat16 if str(self.device).startswith("cuda") else torch.float32
        unet, self.vae, sched = pretrained.load_diffusion(folder)
        self.unet = for_inference(unet, **self.inference, device=self.device)
        self.guide, self._pixels = pretrained.load_pretrained_guide(
            m["base_lm"], self.multimodal, unet.config.cross_attention_dim,
            tokenizer_dir=folder / "tokenizer", dtype=lm_dtype)
        pretrained.load_trainable_state(self.guide, folder / "guide_trainable.safetensors")
        self.scheduler_config = EulerAncestralDiscreteScheduler.from_config(sched.config).config
        # 512 for SD-v1.5: the UNet's sample size times the VAE's scale factor
        self.resolution = int(unet.config.sample_size) * 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.guidance_rescale = 0.0  # as diffusers' InstructPix2Pix pipeline and ml-mgie
        self.manifest = m
        self._weights = f"{manifest_digest(m)}+{m['base_lm']}"
        for mod in (self.unet, self.guide, self.vae):
            mod.eval().to(self.device)

    def _load_tiny(self, ckpt: Path) -> None:
        from diffusers import EulerAncestralDiscreteScheduler, UNet2DConditionModel

        from benchmark.diffusion.autoencoders import PixelUnshuffleAutoencoder
        from benchmark.diffusion.text import load_tokenizer

        m = load_manifest(ckpt, what=f"{self.name} tiny checkpoint",
                          how=f"editbench train --model {self.name} --preset tiny")
        tok = load_tokenizer(ckpt / "tokenizer.json")
        self.unet = UNet2DConditionModel.from_config(m["config"]["unet"])
        load_module_weights(self.unet, ckpt / "unet.safetensors")
        from benchmark.diffusion.unet import for_inference

        self.unet = for_inference(self.unet, **self.inference, device=self.device)
        self.guide = build_tiny_guide(tok, self.multimodal, self.unet.config.cross_attention_dim)
        load_module_weights(self.guide, ckpt / "guide.safetensors")
        self.vae = PixelUnshuffleAutoencoder(**m["config"]["vae"])
        if m["config"].get("source_residual"):
            from benchmark.diffusion.unet import SourceResidualUNet

            self.unet = SourceResidualUNet(self.unet, self.vae.config.latent_channels,
                                           self.vae.config.scaling_factor)
        self.scheduler_config = EulerAncestralDiscreteScheduler.from_config(m["config"]["scheduler"]).config
        self.resolution = m["config"].get("resolution", 64)
        # sampled as its InstructPix2Pix base's preset is (benchmark.diffusion.sampling.edit_images)
        self.guidance_rescale = float(m["config"].get("guidance_rescale", 0.0))
        self.manifest = m
        self._weights = manifest_digest(m)
        self._pixels = pixel_values
        for mod in (self.unet, self.guide, self.vae):
            mod.eval().to(self.device)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "preset": self.preset, "multimodal": self.multimodal,
                "resolution": self.resolution, "unet": dict(self.unet.config),
                "scheduler": dict(self.scheduler_config), "guidance_rescale": self.guidance_rescale,
                "lm": self.guide.lm.config.to_dict()} | {
                    # only non-default inference modes add keys: float32 rows keep their hash
                    k: v for k, v in self.inference.items() if v != {"dtype": "float32", "compile": False}[k]}

    @property
    def variant(self) -> str | None:
        from benchmark.diffusion.unet import inference_variant

        return inference_variant(**self.inference)

    @property
    def weights_sha256(self) -> str | None:
        return self._weights

    @property
    def derived_cache(self) -> dict:
        """derivation_key(sample) -> Derived, filled by ``derive`` (a probe may pre-fill it)."""
        return self.__dict__.setdefault("_derived", {})

    def derivation_key(self, sample) -> tuple[str, str]:
        """What a derivation depends on: the instruction, and for an MLLM the source's pixels."""
        import hashlib

        return (sample.instruction,
                hashlib.sha256(sample.source.tobytes()).hexdigest() if self.multimodal else "")

    def derive(self, sample) -> Derived:
        """The greedy expressive instruction and [IMG] states of ``sample``, which do not depend
        on the seed: derived once per (instruction, image), the MLLM at batch 1 (bitwise batch
        invariance), and reused by the other seeds."""
        key = self.derivation_key(sample)
        cache = self.derived_cache
        if key not in cache:
            if len(cache) > 4096:  # a bound, not an LRU: a run revisits samples seed by seed
                cache.clear()
            pv = self._pixels([sample.source]).to(self.device) if self.multimodal else None
            cache[key] = self.guide.derive(sample.instruction, pv)
        return cache[key]

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        from diffusers import EulerAncestralDiscreteScheduler

        from benchmark.diffusion.sampling import (CPU_CHUNK, edit_images_batched, images_to_tensor,
                                                  sampling_kwargs)

        if not requests:
            return []
        s = dict(requests[0].settings)
        if any(dict(r.settings) != s for r in requests):
            raise ValueError("one batch must share generation settings")
        derived = [self.derive(r.sample) for r in requests]
        with torch.no_grad():
            # float32 for the sampler (the 7b preset runs its MLLM in bf16 on GPUs)
            cond = torch.cat([self.guide.condition(d.hidden) for d in derived]).float()
            images = edit_images_batched(
                self.unet, self.vae,
                lambda: EulerAncestralDiscreteScheduler.from_config(self.scheduler_config),
                images_to_tensor([r.sample.source for r in requests], self.resolution).to(self.device),
                cond, self.guide.null_condition(1).float(),
                [r.generator() for r in requests],  # CPU generators: the same noise on any device
                chunk=CPU_CHUNK if self.device == "cpu" else None,
                **sampling_kwargs(s, self.guidance_rescale))
        out = []
        for img, d in zip(images, derived):
            extra = {} if d.img_tokens == "generated" else {"img_tokens": d.img_tokens}
            out.append(EditResult(image=img.permute(1, 2, 0).cpu().numpy(),
                                  expressive=d.expressive, extra=extra))
        return out

    # ================================================================== training
    @classmethod
    def train(cls, preset: str = "tiny", output_dir: str | None = None, steps: int | None = None,
              batch_size: int | None = None, learning_rate: float | None = None, seed: int = 0,
              device: str | None = None, resume: bool = False, command: str | None = None,
              data_dir: str | None = None, log_every: int = 50, pretrain_steps: int | None = None,
              base_checkpoint: str | None = None, recipe_overrides: dict | None = None,
              checkpoint_every: int = 500, **_: Any) -> dict:
        """``checkpoint_every``: the 7b preset's training-state interval (the tiny run saves at the
        end only: it fits in the 20-minute budget)."""
        if learning_rate is not None:  # --lr would otherwise be a silent no-op
            raise ValueError(f"{cls.name} trains with two learning rates: use --recipe lr_mllm=X "
                             "and --recipe lr_unet=Y instead of --lr")
        if preset == "7b":
            from mgie import pretrained

            return pretrained.train(cls, output_dir=output_dir, steps=steps, batch_size=batch_size,
                                    seed=seed, device=device, resume=resume, command=command,
                                    data_dir=data_dir, base_checkpoint=base_checkpoint,
                                    recipe_overrides=recipe_overrides, log_every=log_every,
                                    checkpoint_every=checkpoint_every)
        if preset != "tiny":
            raise ValueError(f"unknown preset {preset!r} for {cls.name} (tiny, 7b)")
        if data_dir is not None:  # it would otherwise be a silent no-op
            raise ValueError("the tiny preset trains on the synth train split; --data-dir is for the "
                             "full-size presets")
        from diffusers import DDPMScheduler, UNet2DConditionModel
        from diffusers.optimization import get_scheduler

        from baselines.instruct_pix2pix import CHECKPOINT_DIR
        from benchmark.diffusion.autoencoders import PixelUnshuffleAutoencoder
        from benchmark.diffusion.sampling import images_to_tensor
        from benchmark.diffusion.text import load_tokenizer
        from benchmark.diffusion.training import autocast_for, diffusion_loss, resolve_recipe

        defaults = TINY_RECIPE
        if not cls.multimodal:  # LGIE has no vision tower: no vision keys, recorded or accepted
            defaults = {k: v for k, v in TINY_RECIPE.items() if not k.startswith("vision_")}
        recipe = resolve_recipe(defaults, recipe_overrides, steps=steps, batch_size=batch_size,
                                pretrain_steps=pretrain_steps)
        autocast_for(recipe)  # checks the mixed_precision value before any work
        base = Path(base_checkpoint) if base_checkpoint else CHECKPOINT_DIR
        bm = load_manifest(base, what="InstructPix2Pix tiny checkpoint (MGIE's diffusion start)",
                           how="editbench train --model instruct-pix2pix --preset tiny")
        torch.manual_seed(seed)
        tok = load_tokenizer(base / "tokenizer.json")
        add_mgie_tokens(tok, cls.multimodal)
        unet = UNet2DConditionModel.from_config(bm["config"]["tiny"]["unet"] | {
            "in_channels": 2 * bm["config"]["vae"]["latent_channels"],
            "out_channels": bm["config"]["vae"]["latent_channels"]})
        if recipe["mixed_precision"] == "bf16":
            from benchmark.diffusion.unet import use_plain_attention

            use_plain_attention(unet)  # see InstructPix2Pix-tiny's recipe
        load_module_weights(unet, base / "unet.safetensors")
        vae = PixelUnshuffleAutoencoder(**bm["config"]["vae"])
        noise_sched = DDPMScheduler.from_config(bm["config"]["scheduler"])
        residual = bool(bm["config"]["tiny"].get("source_residual"))
        bare_unet = unet
        if residual:
            from benchmark.diffusion.unet import SourceResidualUNet

            unet = SourceResidualUNet(unet, vae.config.latent_channels, vae.config.scaling_factor)
        guide = build_tiny_guide(tok, cls.multimodal, unet.config.cross_attention_dim)
        gen = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        history: list[dict] = []

        def batches(start: int):
            k = start
            while True:
                yield k, _sample_batch(recipe["batch_size"], seed, k)
                k += 1

        # Stage 0 (MGIE): the vision tower as a tiny CLIP's image encoder, then frozen.
        if cls.multimodal and recipe["vision_pretrain_steps"]:
            for step, loss in _pretrain_vision_tower(guide, tok, recipe, seed):
                if step % log_every == 0 or step == recipe["vision_pretrain_steps"]:
                    history.append({"stage": "vision", "step": step, "loss_clip": loss})  # that step's
                    print(f"vision {step}/{recipe['vision_pretrain_steps']} L_clip {loss:.4f}", flush=True)
            guide.lm.model.vision_tower.requires_grad_(False)

        # Stage 1: LM pretraining on L_ins (all LM weights but a pretrained vision tower).
        opt = torch.optim.AdamW([p for p in guide.lm.parameters() if p.requires_grad],
                                lr=recipe["pretrain_lr"], weight_decay=0.0)
        guide.train()
        losses = []
        for k, b in batches(0):
            if k >= recipe["pretrain_steps"]:
                break
            pv = pixel_values(b["sources"]) if cls.multimodal else None
            with autocast_for(recipe):  # the tiny preset trains on the CPU
                loss, _ = guide.instruction_loss(b["instructions"], b["expressives"], pv,
                                                 img_tokens=recipe["pretrain_img_tokens"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(guide.lm.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            if (k + 1) % log_every == 0 or k + 1 == recipe["pretrain_steps"]:
                history.append({"stage": "pretrain", "step": k + 1, "loss_ins": float(np.mean(losses[-log_every:]))})
                print(f"pretrain {k + 1}/{recipe['pretrain_steps']} L_ins {history[-1]['loss_ins']:.4f}", flush=True)

        # Stage 2: MGIE joint training, LM body frozen.
        mllm_params = freeze_for_mgie(guide)
        opt = torch.optim.AdamW([{"params": mllm_params, "lr": recipe["lr_mllm"]},
                                 {"params": unet.parameters(), "lr": recipe["lr_unet"]}],
                                weight_decay=recipe["weight_decay"])
        lr_sched = get_scheduler(recipe["lr_schedule"], opt,
                                 num_warmup_steps=round(recipe["warmup_ratio"] * recipe["steps"]),
                                 num_training_steps=recipe["steps"])
        unet.train()
        ins_l, edit_l = [], []
        offset = recipe["pretrain_steps"]
        for k, b in batches(offset):
            step = k - offset
            if step >= recipe["steps"]:
                break
            pv = pixel_values(b["sources"]) if cls.multimodal else None
            with autocast_for(recipe):
                l_ins, hidden = guide.instruction_loss(b["instructions"], b["expressives"], pv)
                cond = guide.condition(hidden)
                null = guide.null_condition(1)
                l_edit = diffusion_loss(unet, vae, noise_sched, images_to_tensor(b["sources"], 64),
                                        images_to_tensor(b["targets"], 64), cond, null, gen,
                                        recipe["conditioning_dropout"])
            loss = recipe["edit_weight"] * l_edit
            if recipe["instruction_loss"]:
                loss = loss + l_ins
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(mllm_params) + list(unet.parameters()), 1.0)
            opt.step()
            lr_sched.step()
            opt.zero_grad(set_to_none=True)
            ins_l.append(float(l_ins.detach()))
            edit_l.append(float(l_edit.detach()))
            if (step + 1) % log_every == 0 or step + 1 == recipe["steps"]:
                history.append({"stage": "mgie", "step": step + 1,
                                "loss_ins": float(np.mean(ins_l[-log_every:])),
                                "loss_edit": float(np.mean(edit_l[-log_every:]))})
                print(f"mgie {step + 1}/{recipe['steps']} L_ins {history[-1]['loss_ins']:.4f} "
                      f"L_edit {history[-1]['loss_edit']:.4f}", flush=True)
        wall = time.perf_counter() - t0
        out = Path(output_dir) if output_dir else CHECKPOINTS / f"{cls.name}-tiny"
        final = history[-1] if history else {}
        return write_checkpoint(
            out, {"unet": bare_unet, "guide": guide}, tok, dtype=torch.float16,
            config={"unet": dict(unet.config), "vae": dict(vae.config), "source_residual": residual,
                    "scheduler": dict(noise_sched.config), "resolution": 64,
                    "guidance_rescale": bm["config"]["tiny"].get("guidance_rescale", 0.0), "lm": TINY_LM,
                    "vision": TINY_VISION if cls.multimodal else None, "edit_head": TINY_HEAD,
                    "recipe": recipe, "base_checkpoint": manifest_digest(bm)},
            info={"model": cls.name, "preset": preset, "seed": seed,
                  "steps": recipe["pretrain_steps"] + recipe["steps"], "wall_seconds": round(wall, 1),
                  "final_loss": _final_loss(final, recipe),
                  "loss_history": history,
                  "command": command or f"editbench train --model {cls.name} --preset tiny --seed {seed}",
                  "torch": torch.__version__, "threads": torch.get_num_threads()})


def _final_loss(last: dict, recipe: dict) -> float | None:
    """The loss the last logged window trained on: L_all = L_ins + 0.5 · L_edit in the joint stage
    (without L_ins for the w/o-L_ins ablation), L_ins if training stopped after pretraining, and
    None (JSON null) when nothing was logged."""
    if "loss_edit" in last:
        return (last["loss_ins"] if recipe["instruction_loss"] else 0.0) + recipe["edit_weight"] * last["loss_edit"]
    return last.get("loss_ins")


def _pretrain_vision_tower(guide: MLLMGuide, tokenizer, recipe: dict, seed: int):
    """Train the guide's vision tower as the image encoder of a tiny CLIP (transformers'
    ``CLIPModel``: symmetric InfoNCE, learned temperature) on synth (source picture, input
    caption) pairs of the training split; yields (step, loss). The text tower is thrown away."""
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig

    from benchmark.diffusion.text import tiny_clip_text_config, tokenize

    width = TINY_VISION["hidden_size"]
    cfg = CLIPConfig(text_config=tiny_clip_text_config(len(tokenizer), tokenizer, width).to_dict(),
                     vision_config=CLIPVisionConfig(**TINY_VISION).to_dict(), projection_dim=width)
    clip = CLIPModel(cfg)
    tower = guide.lm.model.vision_tower
    clip.vision_model.load_state_dict(tower.state_dict())  # start from the guide's init
    # weight decay as CLIP's (Radford et al. 2021, 0.1 on the large models)
    opt = torch.optim.AdamW(clip.parameters(), lr=recipe["vision_pretrain_lr"], weight_decay=0.1)
    clip.train()
    for k in range(recipe["vision_pretrain_steps"]):
        b = _sample_batch(recipe["vision_pretrain_batch_size"], seed, k, stream=11)
        loss = clip(input_ids=tokenize(tokenizer, b["input_captions"]), pixel_values=pixel_values(b["sources"]),
                    return_loss=True).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clip.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        yield k + 1, float(loss.detach())
    tower.load_state_dict(clip.vision_model.state_dict())


def _sample_batch(batch_size: int, seed: int, k: int, stream: int = 7) -> dict[str, list]:
    """Batch k of synth training samples (a function of (seed, k, stream) only)."""
    from benchmark.datasets import synth

    rng = np.random.default_rng([seed, stream, k])
    out: dict[str, list] = {"sources": [], "targets": [], "instructions": [], "expressives": [],
                            "input_captions": []}
    while len(out["sources"]) < batch_size:
        variant = synth.VARIANTS[int(rng.integers(len(synth.VARIANTS)))]
        samples = synth.generate(variant, "train", int(rng.integers(synth.SPLITS["train"])))
        s = samples[int(rng.integers(len(samples)))]
        out["sources"].append(s.source)
        out["targets"].append(s.target)
        out["instructions"].append(s.instruction)
        out["expressives"].append(s.expressive)
        out["input_captions"].append(s.input_caption)
    return out
