"""The full-size (``7b``) preset of LGIE and MGIE: a pretrained (M)LLM and Stable Diffusion v1.5
by public name, trained jointly as in the MGIE paper (section 4.1) on accelerate.

Conventions, from the paper and apple/ml-mgie (``mgie_train.py``, ``mgie_llava.py``):
- the MLLM is LLaVA-7B, the LLM of LGIE LLaMA-7B, the diffusion model SD-v1.5 with its UNet's
  ``conv_in`` widened to 8 channels (new weights zero) and its VAE frozen;
- the prompt is Vicuna v1.1's chat template around ``what will this image be like if
  '[instruction]'`` followed by the image; the answer is ``E [IMG0] ... [IMG7]</s>``;
- the MLLM sees the source centre-cropped to a square, through its own image processor; the
  diffusion model trains at 256 px (``p2p_inp`` / ``p2p_ans``) from the same square crop;
- trainable: word embeddings, LM head, edit head (4 + 4 layers, 512 wide, 77 queries) and UNet;
  AdamW, weight decay 0, lr 5e-4 (MLLM side) / 1e-4 (UNet), cosine after a 3% warm-up, batch 128,
  L_all = L_ins + 0.5 L_edit, conditioning dropout 5/5/5%.

One deviation, forced by the library: transformers' ``LlavaForConditionalGeneration`` has a
two-layer projector, which LLaVA-7B v1 (MGIE's MLLM, a single linear projector) cannot be loaded
into, so the default MLLM is ``llava-hf/llava-1.5-7b-hf``; any folder in that format works
(``--recipe lm=DIR``). MGIE's expressive instructions come from LLaVA's answers summarised by
Flan-T5-XXL; they are not public, so training reads them from ``--recipe expressive_file=PATH``
(JSON: IPr2Pr prompt folder name or instruction -> expressive instruction).

A trained folder holds ``unet/``, ``vae/`` and ``scheduler/`` (diffusers, safetensors), the
tokenizer with the [IMG] tokens, ``guide_trainable.safetensors`` (word embeddings, LM head and edit
head: what training changed of the (M)LLM) and ``manifest.json`` (sha256 of every file, the base
models, recipe, command); the frozen (M)LLM body is read from the base model at load time.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mgie.core import EditHead, MLLMGuide, add_mgie_tokens, freeze_for_mgie

LLAVA_7B = "llava-hf/llava-1.5-7b-hf"
LLAMA_7B = "huggyllama/llama-7b"
SD15 = "runwayml/stable-diffusion-v1-5"
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The "
                 "assistant gives helpful, detailed, and polite answers to the user's questions.")
TEMPLATE_MLLM = VICUNA_SYSTEM + " USER: what will this image be like if '{instruction}'\n<image> ASSISTANT:"
TEMPLATE_LLM = VICUNA_SYSTEM + " USER: what will this image be like if '{instruction}' ASSISTANT:"
FORMAT = "editbench-mgie-7b/1"
RECIPE_7B = {"lm": None,  # None: LLAVA_7B for MGIE, LLAMA_7B for LGIE; or a local folder
             "batch_size": 128, "per_device_batch_size": 8, "steps": 10_000,
             "lr_mllm": 5e-4, "lr_unet": 1e-4, "weight_decay": 0.0, "lr_schedule": "cosine",
             "warmup_ratio": 0.03, "edit_weight": 0.5, "conditioning_dropout": 0.05,
             "instruction_loss": True, "resolution": 256, "max_grad_norm": 1.0,
             "mixed_precision": "bf16",  # on GPUs; CPU runs stay float32
             "expressive_file": None}


def default_lm(multimodal: bool) -> str:
    return LLAVA_7B if multimodal else LLAMA_7B


def square(image: Image.Image) -> Image.Image:
    """ml-mgie's ``resize`` without the final size: the centred square crop of the short side."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.convert("RGB").crop((left, top, left + side, top + side))


def _missing(what: str, source: str, exc: Exception):
    from benchmark.api import MissingWeightsError

    return MissingWeightsError(
        f"{what} not found locally ({source}); on a machine with network run `huggingface-cli "
        f"download {source}` or pass a local folder ({type(exc).__name__})")


def load_pretrained_guide(source: str, multimodal: bool, cross_attention_dim: int,
                          tokenizer_dir: str | Path | None = None, dtype: torch.dtype = torch.float32):
    """(MLLMGuide, pixel function) from a pretrained LLaVA (``multimodal``) or LLaMA folder or hub
    name: [IMG] tokens added (embeddings resized), a fresh edit head of MGIE-7B's size.
    ``tokenizer_dir``: a trained checkpoint's tokenizer (it already holds the [IMG] tokens)."""
    from transformers import AutoImageProcessor, AutoTokenizer, LlamaForCausalLM
    from transformers import LlavaForConditionalGeneration

    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or source, local_files_only=True)
        cls = LlavaForConditionalGeneration if multimodal else LlamaForCausalLM
        lm = cls.from_pretrained(source, local_files_only=True, torch_dtype=dtype)
        processor = AutoImageProcessor.from_pretrained(source, local_files_only=True) if multimodal else None
    except OSError as exc:
        raise _missing("MLLM" if multimodal else "LLM", source, exc) from None
    if tokenizer.pad_token is None:  # LLaMA's tokenizer has none; ml-mgie (v1) pads with unk
        tokenizer.pad_token = tokenizer.unk_token
    add_mgie_tokens(tokenizer, multimodal)
    if lm.get_input_embeddings().weight.shape[0] != len(tokenizer):
        lm.resize_token_embeddings(len(tokenizer))
    lm.generation_config.pad_token_id = tokenizer.pad_token_id
    n_image = 0
    if multimodal:
        vc = lm.config.vision_config
        n_image = (vc.image_size // vc.patch_size) ** 2 + (
            1 if getattr(lm.config, "vision_feature_select_strategy", "default") == "full" else 0)
    hidden = lm.get_input_embeddings().weight.shape[1]
    head = EditHead(hidden, cross_attention_dim, query_std=1.0).to(dtype)
    guide = MLLMGuide(lm, tokenizer, head, multimodal=multimodal, n_image_tokens=n_image,
                      template=TEMPLATE_MLLM if multimodal else TEMPLATE_LLM)

    def pixels(images) -> torch.Tensor:
        return processor(images=[square(im) for im in images], return_tensors="pt").pixel_values.to(dtype)

    return guide, (pixels if multimodal else None)


def trainable_state(guide: MLLMGuide) -> dict[str, torch.Tensor]:
    """What MGIE training changes of the guide: word embeddings, LM head, edit head."""
    state = {"embed_tokens": guide.lm.get_input_embeddings().weight}
    head = guide.lm.get_output_embeddings().weight
    if head is not state["embed_tokens"]:
        state["lm_head"] = head
    state.update({f"edit_head.{k}": v for k, v in guide.edit_head.state_dict().items()})
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def load_trainable_state(guide: MLLMGuide, path: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(path))
    with torch.no_grad():
        emb = guide.lm.get_input_embeddings().weight
        if state["embed_tokens"].shape != emb.shape:
            raise ValueError(f"{path}: word embeddings {tuple(state['embed_tokens'].shape)} do not fit "
                             f"the base model's {tuple(emb.shape)} (another base model?)")
        emb.copy_(state["embed_tokens"])
        if "lm_head" in state:
            guide.lm.get_output_embeddings().weight.copy_(state["lm_head"])
    guide.edit_head.load_state_dict({k[len("edit_head."):]: v for k, v in state.items()
                                     if k.startswith("edit_head.")})


def load_diffusion(folder: str | Path, dtype: torch.dtype = torch.float32):
    """UNet, VAE and scheduler config of a trained 7b folder (or any diffusers SD folder)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    try:
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", local_files_only=True,
                                                    torch_dtype=dtype)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", local_files_only=True)
        sched = DDPMScheduler.from_pretrained(folder, subfolder="scheduler", local_files_only=True)
    except (OSError, EnvironmentError) as exc:
        raise _missing("Stable Diffusion (unet, vae, scheduler)", str(folder), exc) from None
    return unet, vae, sched


def expressive_table(path: str | None) -> dict[str, str]:
    """key -> expressive instruction, from ``{key: "E"}`` or ml-mgie's ``{key: {"expressive": "E"}}``."""
    if not path:
        raise ValueError("7b training needs the expressive instructions: --recipe expressive_file=PATH "
                         "(JSON: IPr2Pr prompt folder name or instruction -> expressive instruction; "
                         "MGIE's own are not public)")
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"expressive_file {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"expressive_file {path}: expected a JSON object")
    table = {}
    for key, value in raw.items():
        text = value.get("expressive") if isinstance(value, dict) else value
        if isinstance(text, str) and text.strip():
            table[str(key)] = text.strip()
    return table


def _training_pairs(data_dir: str | None, table: dict[str, str]):
    """(IPr2Pr ``TrainingPairs``, the indices that have an expressive instruction, index ->
    expressive instruction), looked up by prompt folder name, then by instruction; no image is
    read here."""
    from benchmark.datasets import ipr2pr

    pairs = ipr2pr.pairs(data_dir, "train")
    expressive: dict[int, str] = {}
    for i in range(len(pairs)):
        e = table.get(str(pairs.prompt_name(i))) or table.get(pairs.instruction(i))
        if e:
            expressive[i] = e
    if not expressive:
        raise ValueError("7b training: no IPr2Pr train pair under --data-dir has an expressive "
                         "instruction in expressive_file")
    return pairs, sorted(expressive), expressive


class JointLoss(torch.nn.Module):
    """L_all for one batch, as one module so that accelerate's DDP wrapper syncs every gradient."""

    def __init__(self, guide: MLLMGuide, unet, vae, noise_scheduler, recipe: dict):
        super().__init__()
        self.guide, self.unet, self.vae = guide, unet, vae
        self.noise_scheduler, self.recipe = noise_scheduler, recipe

    def forward(self, instructions, expressives, pixel_values, source, target, generator):
        from benchmark.diffusion.training import diffusion_loss

        l_ins, hidden = self.guide.instruction_loss(instructions, expressives, pixel_values)
        cond = self.guide.condition(hidden)
        null = self.guide.null_condition(1)
        l_edit = diffusion_loss(self.unet, self.vae, self.noise_scheduler, source, target,
                                cond.to(self.unet.dtype), null.to(self.unet.dtype), generator,
                                self.recipe["conditioning_dropout"])
        loss = self.recipe["edit_weight"] * l_edit + (l_ins if self.recipe["instruction_loss"] else 0.0)
        return loss, l_ins.detach(), l_edit.detach()


def train(cls, output_dir: str | None = None, steps: int | None = None, batch_size: int | None = None,
          seed: int = 0, device: str | None = None, resume: bool = False, command: str | None = None,
          data_dir: str | None = None, base_checkpoint: str | None = None,
          recipe_overrides: dict | None = None, log_every: int = 50, checkpoint_every: int = 500,
          **_: Any) -> dict:
    """Train ``cls`` (LGIE or MGIE) at full size: base (M)LLM ``recipe["lm"]``, diffusion from
    ``base_checkpoint`` (a diffusers SD folder; default SD-v1.5 from the local cache), data IPr2Pr
    under ``data_dir``. Batch = per-device batch x processes x gradient accumulation; bf16 on
    GPUs. Every ``checkpoint_every`` steps the main process saves the training state (UNet, the
    trained (M)LLM parts, optimizer, schedule: safetensors + JSON) under ``OUT/training-state``;
    ``resume`` goes on from it."""
    from diffusers import EulerAncestralDiscreteScheduler
    from diffusers.optimization import get_scheduler

    from benchmark.diffusion.checkpoints import (folder_digests, load_training_state,
                                                 save_training_state)
    from benchmark.diffusion.sampling import images_to_tensor
    from benchmark.diffusion.training import (batch_plan, draw_pairs, fresh_accelerator,
                                              resolve_recipe, stream_seed)
    from benchmark.diffusion.unet import expand_conv_in
    from benchmark.files import atomic_write_json

    recipe = resolve_recipe(RECIPE_7B, recipe_overrides, steps=steps, batch_size=batch_size)
    out = Path(output_dir) if output_dir else Path("checkpoints") / f"{cls.name}-7b"
    work = out / "training-state"
    table = expressive_table(recipe["expressive_file"])
    pairs, eligible, expressive = _training_pairs(data_dir, table)
    lm_source = recipe["lm"] or default_lm(cls.multimodal)
    sd_source = base_checkpoint or SD15
    on_gpu = torch.cuda.is_available() and device != "cpu"
    per_device, accum, procs = batch_plan(recipe)
    accelerator = fresh_accelerator(cpu=not on_gpu, gradient_accumulation_steps=accum,
                                     mixed_precision=recipe["mixed_precision"] if on_gpu else "no")
    torch.manual_seed(seed)
    unet, vae, noise_sched = load_diffusion(sd_source)
    if unet.config.in_channels == vae.config.latent_channels:
        expand_conv_in(unet)  # SD-v1.5's 4 channels + the source latents (ml-mgie: the same)
    vae.requires_grad_(False)
    guide, pixels = load_pretrained_guide(lm_source, cls.multimodal, unet.config.cross_attention_dim)
    guide.lm.config.use_cache = False
    mllm_params = freeze_for_mgie(guide)
    optimizer = torch.optim.AdamW([{"params": mllm_params, "lr": recipe["lr_mllm"]},
                                   {"params": list(unet.parameters()), "lr": recipe["lr_unet"]}],
                                  weight_decay=recipe["weight_decay"])
    lr_sched = get_scheduler(recipe["lr_schedule"], optimizer,
                             num_warmup_steps=round(recipe["warmup_ratio"] * recipe["steps"]),
                             num_training_steps=recipe["steps"])
    joint = JointLoss(guide, unet, vae, noise_sched, recipe)
    joint, optimizer, lr_sched = accelerator.prepare(joint, optimizer, lr_sched)
    vae.to(accelerator.device)
    trainable = [p for p in accelerator.unwrap_model(joint).parameters() if p.requires_grad]
    start, history, elapsed0 = 0, [], 0.0
    if resume and (work / "state.json").is_file():
        start, history, elapsed0 = load_training_state(work, unet, None, optimizer, lr_sched)
        load_trainable_state(guide, work / "guide_trainable.safetensors")
        accelerator.print(f"resuming at step {start}")
    ins_l, edit_l, t0 = [], [], time.perf_counter()
    micro = k = start * accum
    joint.train()
    while micro < recipe["steps"] * accum:
        rng = np.random.default_rng([seed, 13, k, accelerator.process_index])
        gen = torch.Generator().manual_seed(stream_seed(seed, k, accelerator.process_index))
        pick = draw_pairs(pairs, per_device, rng, eligible)
        k += 1
        dev = accelerator.device
        src = images_to_tensor([square(it.source) for _, it in pick], recipe["resolution"]).to(dev)
        tgt = images_to_tensor([square(it.target) for _, it in pick], recipe["resolution"]).to(dev)
        pv = pixels([it.source for _, it in pick]).to(dev) if pixels else None
        with accelerator.accumulate(joint), accelerator.autocast():
            loss, l_ins, l_edit = joint([it.instruction for _, it in pick], [expressive[i] for i, _ in pick],
                                        pv, src, tgt, gen)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(trainable, recipe["max_grad_norm"])
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
        micro += 1
        ins_l.append(float(l_ins))
        edit_l.append(float(l_edit))
        step = micro // accum
        if accelerator.sync_gradients and (step % log_every == 0 or step == recipe["steps"]):
            n = log_every * accum
            history.append({"step": step, "loss_ins": float(np.mean(ins_l[-n:])),
                            "loss_edit": float(np.mean(edit_l[-n:]))})
            accelerator.print(f"{cls.name} 7b {step}/{recipe['steps']} L_ins {history[-1]['loss_ins']:.4f} "
                              f"L_edit {history[-1]['loss_edit']:.4f}")
        if (accelerator.sync_gradients and step % checkpoint_every == 0 and step < recipe["steps"]
                and accelerator.is_main_process):
            save_training_state(work, step, history, elapsed0 + time.perf_counter() - t0, unet, None,
                                optimizer, lr_sched, extra={"guide_trainable": trainable_state(guide)})
    if not accelerator.is_main_process:
        return {}
    from safetensors.torch import save_file

    final = accelerator.unwrap_model(joint)
    out.mkdir(parents=True, exist_ok=True)
    final.unet.save_pretrained(out / "unet", safe_serialization=True)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    EulerAncestralDiscreteScheduler.from_config(noise_sched.config).save_pretrained(out / "scheduler")
    guide.tokenizer.save_pretrained(out / "tokenizer")
    save_file(trainable_state(final.guide), str(out / "guide_trainable.safetensors"))
    files = folder_digests(out)
    last = history[-1] if history else {}
    manifest = {"format": FORMAT, "files": files, "model": cls.name, "preset": "7b",
                "base_lm": lm_source, "base_diffusion": sd_source, "multimodal": cls.multimodal,
                "edit_head": {"llm_hidden": final.guide.edit_head.llm2hid.in_features},
                "recipe": recipe, "seed": seed, "steps": recipe["steps"], "n_pairs": len(eligible),
                "gradient_accumulation": accum, "processes": procs,
                "wall_seconds": round(elapsed0 + time.perf_counter() - t0, 1),
                "final_loss": (last["loss_ins"] * recipe["instruction_loss"]
                               + recipe["edit_weight"] * last["loss_edit"]) if last else math.nan,
                "loss_history": history, "device": str(accelerator.device),
                "mixed_precision": accelerator.mixed_precision,
                "command": command or f"editbench train --model {cls.name} --preset 7b",
                "torch": torch.__version__}
    atomic_write_json(out / "manifest.json", json.loads(json.dumps(manifest, default=str)))
    return manifest
