"""Seconds per edit at full size, random weights (timing only; the numbers mean nothing).

    python scripts/bench_full_size.py --model mgie [--device cuda] [--steps 100] [--resolution 512]
        [--repeats 3] [--tiny] [--compile] [--fuse-qkv] [--inductor-tuning (needs --compile)]

The adapters' own ``edit`` on random-weight parts of the published sizes, batch 1, eq. 5's 3-way
guidance, the UNet in bf16 behind the float32 sampler (``--dtype bfloat16``), channels-last, PyTorch
SDPA (diffusers' default attention):
- ``instruct-pix2pix``: SD-v1.5's UNet (8 input channels) and VAE, CLIP ViT-L/14's text encoder;
- ``mgie``: that, plus LLaVA-1.5-7B (Llama-2-7B shape + CLIP ViT-L/14-336, 576 image tokens) in
  bf16 and MGIE's edit head; ``lgie``: a LLaMA-7B-shaped LM instead. Random LMs never stop early,
  so every derivation generates the full 32 tokens of E (the worst case) before the [IMG] pass.
The issues' goals (H100): InstructPix2Pix ≤ 1.0 s, MGIE ≤ 1.8 s per edit at 100 steps, 512 px.
``--tiny`` shrinks every part (a CPU smoke run of the same code path). Load and warm-up excluded.

Two opt-in speed-ups from diffusers' "Accelerate inference of text-to-image diffusion models"
tutorial, kept out of the adapters until a GPU run measures them (docs/speed.md): ``--fuse-qkv``
(diffusers' ``fuse_qkv_projections``: one matmul for q, k, v in self-attention, for k, v in
cross-attention) and ``--inductor-tuning`` (Inductor's ``conv_1x1_as_mm``,
``coordinate_descent_tuning`` and ``coordinate_descent_check_all_directions`` on,
``epilogue_fusion`` off; with ``--compile``).
"""
import argparse
import time

import torch
from PIL import Image

from benchmark.api import EditRequest, EditSample
from benchmark.diffusion.text import train_tokenizer
from benchmark.diffusion.unet import for_inference
from benchmark.results import device_info, device_label

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--model", default="mgie", choices=["instruct-pix2pix", "mgie", "lgie"])
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--steps", type=int, default=100)
p.add_argument("--resolution", type=int, default=512)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--tiny", action="store_true", help="shrink every part (CPU smoke run)")
p.add_argument("--compile", action="store_true", help="torch.compile the UNet (benchmark.diffusion.unet)")
p.add_argument("--fuse-qkv", action="store_true", help="diffusers' fuse_qkv_projections on the UNet")
p.add_argument("--inductor-tuning", action="store_true",
               help="Inductor settings of diffusers' tutorial (with --compile)")
a = p.parse_args()
if a.inductor_tuning and not a.compile:
    p.error("--inductor-tuning sets how torch.compile builds kernels: add --compile")
if a.inductor_tuning:
    from torch._inductor import config as inductor_config

    inductor_config.conv_1x1_as_mm = True
    inductor_config.coordinate_descent_tuning = True
    inductor_config.coordinate_descent_check_all_directions = True
    inductor_config.epilogue_fusion = False
dev, lm_dtype = a.device, (torch.bfloat16 if a.device.startswith("cuda") else torch.float32)
torch.manual_seed(0)


def sd15_parts(resolution: int, tiny: bool):
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, UNet2DConditionModel

    # diffusers' UNet2DConditionModel defaults are SD-v1's architecture
    unet_kw = dict(block_out_channels=(32, 64, 64, 64), norm_num_groups=8, attention_head_dim=2) if tiny else {}
    vae_kw = dict(block_out_channels=(16, 16, 32, 32), norm_num_groups=8) if tiny else dict(
        block_out_channels=(128, 256, 512, 512))
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        latent_channels=4, layers_per_block=2, sample_size=resolution, **vae_kw)
    vae.register_to_config(scaling_factor=0.18215)
    unet = UNet2DConditionModel(sample_size=resolution // 8, in_channels=8, out_channels=4,
                                cross_attention_dim=768, **unet_kw)
    unet = unet.to(dev, memory_format=torch.channels_last)
    if a.fuse_qkv:
        unet.fuse_qkv_projections()
    unet = for_inference(unet, "bfloat16", a.compile, dev)
    with torch.device("cpu"):  # its numpy tables cannot be built on the GPU
        sched = EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                                beta_end=0.012, steps_offset=1)
    return unet, vae.to(dev).eval(), dict(sched.config)


tok = train_tokenizer(["what will this image be like if", "make it look like a painting",
                       "USER: ASSISTANT: a chat between a curious user"] * 8, vocab_size=300)
t_build = time.perf_counter()
torch.set_default_device(dev)  # random init where the parts run: 7B parameters init slowly on a CPU
unet, vae, sched_cfg = sd15_parts(a.resolution, a.tiny)
if a.model == "instruct-pix2pix":
    from transformers import CLIPTextConfig, CLIPTextModel

    from baselines.instruct_pix2pix import InstructPix2Pix

    text_cfg = CLIPTextConfig(vocab_size=len(tok), max_position_embeddings=77, hidden_size=768,
                              intermediate_size=3072, num_hidden_layers=2 if a.tiny else 12,
                              num_attention_heads=12, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = InstructPix2Pix.__new__(InstructPix2Pix)
    model.__dict__.update(preset="full-size-random", device=dev, unet=unet, vae=vae, tokenizer=tok,
                          text_encoder=CLIPTextModel(text_cfg).to(dev).eval(), scheduler_config=sched_cfg,
                          resolution=a.resolution, guidance_rescale=0.0, _null=None,
                          inference={"dtype": "bfloat16", "compile": a.compile})
else:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlamaForCausalLM
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    from mgie.core import EditHead, MLLMGuide, add_mgie_tokens
    from mgie.pretrained import TEMPLATE_LLM, TEMPLATE_MLLM, square
    from mgie.mgie import MGIE
    from baselines.lgie import LGIE

    multimodal = a.model == "mgie"
    tok.model_max_length = 4096  # an LLM's context, not CLIP's 77
    add_mgie_tokens(tok, multimodal)
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    text = LlamaConfig(vocab_size=32064, **ids, **(dict(hidden_size=64, intermediate_size=128,
                                                        num_hidden_layers=2, num_attention_heads=2)
                                                   if a.tiny else {}))  # LlamaConfig defaults: 7B
    image = 336 if not a.tiny else 56
    if multimodal:
        vision = CLIPVisionConfig(hidden_size=64 if a.tiny else 1024, intermediate_size=128 if a.tiny else 4096,
                                  num_hidden_layers=2 if a.tiny else 24, num_attention_heads=2 if a.tiny else 16,
                                  image_size=image, patch_size=14)
        n_image = (image // 14) ** 2
        cfg = LlavaConfig(vision_config=vision, text_config=text, vision_feature_layer=-2,
                          image_token_index=tok.convert_tokens_to_ids("<image>"), image_seq_length=n_image)
        lm = LlavaForConditionalGeneration._from_config(cfg, torch_dtype=lm_dtype)
    else:
        n_image = 0
        lm = LlamaForCausalLM._from_config(text, torch_dtype=lm_dtype)
    lm.generation_config.pad_token_id = tok.pad_token_id
    hidden = lm.get_input_embeddings().weight.shape[1]
    guide = MLLMGuide(lm, tok, EditHead(hidden, 768, query_std=1.0).to(lm_dtype), multimodal=multimodal,
                      n_image_tokens=n_image, template=TEMPLATE_MLLM if multimodal else TEMPLATE_LLM)
    proc = CLIPImageProcessor(size={"shortest_edge": image}, crop_size={"height": image, "width": image})
    cls = MGIE if multimodal else LGIE
    model = cls.__new__(cls)
    model.__dict__.update(preset="full-size-random", device=dev, unet=unet, vae=vae, guide=guide.to(dev).eval(),
                          _pixels=lambda ims: proc(images=[square(im) for im in ims],
                                                   return_tensors="pt").pixel_values.to(lm_dtype),
                          scheduler_config=sched_cfg, resolution=a.resolution, guidance_rescale=0.0,
                          inference={"dtype": "bfloat16", "compile": a.compile})
torch.set_default_device("cpu")
build = time.perf_counter() - t_build

settings = {"steps": a.steps, "image_guidance_scale": 1.5, "text_guidance_scale": 7.5}
source = Image.new("RGB", (a.resolution, a.resolution), (120, 80, 40))


def one_edit(i: int) -> float:
    # a new instruction each time: the MLLM editors derive E once per (instruction, image)
    sample = EditSample(id=f"s{i}", source=source, instruction=f"make it look like a painting {i}")
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.edit([EditRequest(sample, seed=0, settings=settings)])
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def unet_alone(n: int = 20) -> float:
    """Seconds per UNet call at the sampler's batch (3 guidance branches): the floor of a step."""
    lat = a.resolution // 8
    x = torch.randn(3, 8, lat, lat, device=dev)
    hidden = torch.randn(3, 77, 768, device=dev)
    t = torch.tensor(500, device=dev)
    model.unet(x, t, encoder_hidden_states=hidden)  # warm
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        model.unet(x, t, encoder_hidden_states=hidden)
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n


with torch.no_grad():
    warm = one_edit(-1)
    times = [one_edit(i) for i in range(a.repeats)]
    unet_s = unet_alone()
peak = (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
        if dev.startswith("cuda") else "")
print(f"{a.model} full-size{' (tiny stand-in)' if a.tiny else ''}, random weights, on "
      f"{device_label({'device': dev, **device_info(dev)})}: batch 1, {a.steps} steps, {a.resolution} px, "
      f"UNet bf16 channels-last{' compiled' if a.compile else ''}{' fused-qkv' if a.fuse_qkv else ''}"
      f"{' inductor-tuning' if a.inductor_tuning else ''}: best {min(times):.3f} s/edit, mean {sum(times) / len(times):.3f} "
      f"(warm-up {warm:.1f} s, parts built in {build:.1f} s{peak}); the UNet alone: "
      f"{1000 * unet_s:.1f} ms per call x {a.steps} steps = {unet_s * a.steps:.3f} s")
