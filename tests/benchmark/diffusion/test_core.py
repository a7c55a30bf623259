"""The diffusion editing core: exact autoencoder, conv_in surgery, conditioning dropout, and
fidelity of the sampler to diffusers' InstructPix2Pix pipeline."""

import numpy as np
import pytest
import torch
from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler,
                       StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel)
from PIL import Image
from transformers import CLIPTextModel

from _helpers import needs_cuda
from benchmark.diffusion.autoencoders import PixelUnshuffleAutoencoder
from benchmark.diffusion.sampling import edit_images
from benchmark.diffusion.text import tiny_clip_text_config, tokenize, train_tokenizer
from benchmark.diffusion.training import (conditioning_dropout, diffusion_loss, kept_latent_mask,
                                          timestep_bias_weights)
from benchmark.diffusion.unet import expand_conv_in

PROMPTS = ["make the red circle blue", "remove the square", "brighten the image", ""]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(PROMPTS * 5, vocab_size=300)


def test_pixel_unshuffle_autoencoder_is_exact_and_kl_compatible():
    ae = PixelUnshuffleAutoencoder(factor=4, scaling_factor=1.5)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    dist = ae.encode(x).latent_dist
    assert dist.mode().shape == (2, 48, 8, 8)
    assert torch.equal(dist.sample(), dist.mode())
    assert torch.equal(ae.decode(dist.mode()).sample, x)
    assert ae.config.latent_channels == 48 and 2 ** (len(ae.config.block_out_channels) - 1) == 4
    with pytest.raises(ValueError):
        PixelUnshuffleAutoencoder(factor=3)


def test_conv_in_surgery_keeps_old_weights_and_zeroes_new():
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 32),
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                                cross_attention_dim=16, norm_num_groups=8, attention_head_dim=8)
    old = unet.conv_in.weight.detach().clone()
    x, h = torch.randn(1, 4, 8, 8), torch.randn(1, 5, 16)
    before = unet(x, 3, encoder_hidden_states=h).sample
    expand_conv_in(unet)
    assert unet.config.in_channels == 8 and unet.conv_in.weight.shape[1] == 8
    assert torch.equal(unet.conv_in.weight[:, :4], old)
    assert torch.count_nonzero(unet.conv_in.weight[:, 4:]) == 0
    after = unet(torch.cat([x, torch.randn(1, 4, 8, 8)], 1), 3, encoder_hidden_states=h).sample
    assert torch.allclose(before, after, atol=1e-6)  # the new channels change nothing yet


def test_conditioning_dropout_rates():
    n = 20000
    cond = torch.ones(n, 1, 1)
    img = torch.ones(n, 1, 1, 1)
    c, i = conditioning_dropout(cond, torch.zeros(1, 1, 1), img, torch.Generator().manual_seed(0))
    text_dropped = c.flatten() == 0
    image_dropped = i.flatten() == 0
    for frac, want in (((text_dropped & ~image_dropped).float().mean(), 0.05),
                       ((text_dropped & image_dropped).float().mean(), 0.05),
                       ((~text_dropped & image_dropped).float().mean(), 0.05)):
        assert abs(float(frac) - want) < 0.01


def test_extra_text_dropout_adds_text_only_drops_and_keeps_the_papers_draws():
    n = 20000
    cond, img, null = torch.ones(n, 1, 1), torch.ones(n, 1, 1, 1), torch.zeros(1, 1, 1)
    c0, i0 = conditioning_dropout(cond, null, img, torch.Generator().manual_seed(0))
    c, i = conditioning_dropout(cond, null, img, torch.Generator().manual_seed(0), extra_text_p=0.15)
    assert torch.equal(i, i0)  # image drops untouched
    assert bool((c <= c0).all())  # every paper drop kept, new ones only added
    text_only = (c.flatten() == 0) & (i.flatten() != 0)
    assert abs(float(text_only.float().mean()) - 0.20) < 0.01
    with pytest.raises(ValueError, match="at most 1"):
        conditioning_dropout(cond, null, img, None, p=0.3, extra_text_p=0.2)


def test_dropped_image_weight_scales_only_the_image_dropped_samples():
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    n, p = 48, 0.2
    ae, sched = PixelUnshuffleAutoencoder(factor=4), DDPMScheduler(prediction_type="sample")
    src, tgt = torch.rand(n, 3, 32, 32) * 2 - 1, torch.rand(n, 3, 32, 32) * 2 - 1
    cond = torch.randn(n, 3, 8)
    seen = {}

    def unet(x, t, encoder_hidden_states, return_dict=False):  # records its input, predicts 0
        seen["source_latents"] = x[:, 48:]
        return (torch.zeros(n, 48, 8, 8),)

    def loss(w):
        return float(diffusion_loss(unet, ae, sched, src, tgt, cond, torch.zeros(1, 3, 8),
                                    torch.Generator().manual_seed(1), dropout_p=p,
                                    dropped_image_weight=w))

    plain = loss(1.0)
    dropped = seen["source_latents"].flatten(1).abs().sum(1) == 0
    per_sample = (ae.encode(tgt).latent_dist.mode() * ae.config.scaling_factor).pow(2).mean((1, 2, 3))
    assert dropped.any() and (~dropped).any()
    assert plain == pytest.approx(float(per_sample.mean()), rel=1e-6)
    for w in (0.0, 0.1):
        want = float(torch.where(dropped, w, 1.0).mul(per_sample).mean())
        assert loss(w) == pytest.approx(want, rel=1e-6)


def test_kept_latent_mask_is_exact_per_element_for_pixel_unshuffle_and_per_cell_otherwise():
    src = torch.rand(2, 3, 16, 16) * 2 - 1
    tgt = src.clone()
    tgt[0, 1, 5, 6] += 0.5  # one channel of one pixel changed in sample 0
    ae = PixelUnshuffleAutoencoder(factor=4)
    kept = kept_latent_mask(ae, src, tgt, (2, 48, 4, 4))
    changed = ae.encode((tgt != src).float()).latent_dist.mode()  # where that pixel lands
    assert kept.shape == (2, 48, 4, 4) and int((kept == 0).sum()) == 1
    assert torch.equal(kept, 1 - changed)
    cells = kept_latent_mask(None, src, tgt, (2, 4, 4, 4))  # a convolutional VAE's 4-channel latents
    assert cells.shape == (2, 4, 4, 4) and bool((cells[1] == 1).all())
    assert bool((cells[0, :, 1, 1] == 0).all()) and int((cells[0] == 0).sum()) == 4
    tgt[1] += 1e-4  # below the tolerance: still kept
    assert bool((kept_latent_mask(ae, src, tgt, (2, 48, 4, 4))[1] == 1).all())


def test_kept_weight_reweights_mostly_changed_samples_and_keeps_their_total():
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    n = 4
    ae, sched = PixelUnshuffleAutoencoder(factor=4), DDPMScheduler(prediction_type="sample")
    src = torch.rand(n, 3, 32, 32) * 2 - 1
    tgt = src.clone()
    tgt[:, :, 8:] += 0.5  # three quarters edited, the top quarter kept
    cond = torch.randn(n, 3, 8)
    miss = torch.zeros(n, 3, 32, 32)

    def unet(x, t, encoder_hidden_states, return_dict=False):  # off by `miss` (pixel space)
        return (ae.encode(tgt + miss).latent_dist.mode(),)

    def loss(w):
        return float(diffusion_loss(unet, ae, sched, src, tgt, cond, torch.zeros(1, 3, 8),
                                    torch.Generator().manual_seed(1), dropout_p=0.0, kept_weight=w))

    miss.fill_(0.1)  # the same error everywhere: any renormalised weighting gives the plain loss
    assert loss(5.0) == pytest.approx(loss(1.0), rel=1e-6)
    miss.zero_()
    miss[:, :, :8] = 0.1  # errors on kept pixels only: they weigh 5 / (0.75 + 0.25 * 5) = 2.5x
    assert loss(5.0) == pytest.approx(2.5 * loss(1.0), rel=1e-5)
    miss.zero_()
    miss[:, :, 8:] = 0.1  # errors on edited pixels only: 1 / 2 = 0.5x
    assert loss(5.0) == pytest.approx(0.5 * loss(1.0), rel=1e-5)
    tgt[:, :, 8:24] = src[:, :, 8:24]  # now a quarter edited, most kept: left as it is
    miss.zero_()
    miss[:, :, :8] = 0.1
    assert loss(5.0) == pytest.approx(loss(1.0), rel=1e-6)


def test_timestep_bias_weights_follow_the_sdxl_script_convention():
    uniform = timestep_bias_weights(1000)
    assert torch.allclose(uniform, torch.full((1000,), 1e-3))
    later = timestep_bias_weights(1000, "later", multiplier=5.0, portion=0.25)
    # the noisiest 250 timesteps weigh 5x: 250 * 5 / (750 + 1250) of the draws
    assert later[-250:].sum().item() == pytest.approx(1250 / 2000)
    assert later[0].item() == pytest.approx(1 / 2000) and later[-1].item() == pytest.approx(5 / 2000)
    earlier = timestep_bias_weights(1000, "earlier", multiplier=3.0, portion=0.1)
    assert earlier[:100].sum().item() == pytest.approx(300 / 1200)
    for bad in ("middle", "Later"):
        with pytest.raises(ValueError, match="strategy"):
            timestep_bias_weights(1000, bad, multiplier=1.0)


def _components(tokenizer, vae):
    torch.manual_seed(0)
    ch = vae.config.latent_channels
    unet = UNet2DConditionModel(sample_size=8, in_channels=2 * ch, out_channels=ch,
                                block_out_channels=(32, 64),
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                                cross_attention_dim=32, norm_num_groups=16, attention_head_dim=8).eval()
    text = CLIPTextModel(tiny_clip_text_config(len(tokenizer), tokenizer, hidden_size=32)).eval()
    sched = EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                            beta_end=0.012, prediction_type="epsilon")
    return unet, text, sched


def _vae_kl():
    torch.manual_seed(1)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32),
                         down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=16,
                         sample_size=32).eval()


@pytest.mark.parametrize("make_vae", [_vae_kl, lambda: PixelUnshuffleAutoencoder(factor=2, scaling_factor=1.3)],
                         ids=["autoencoder-kl", "pixel-unshuffle"])
def test_sampler_matches_diffusers_instruct_pix2pix_pipeline(tokenizer, make_vae):
    vae = make_vae()
    unet, text, sched = _components(tokenizer, vae)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(2)]
    prompts = PROMPTS[:2]
    pipe = StableDiffusionInstructPix2PixPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer,
                                                   unet=unet, scheduler=sched, safety_checker=None,
                                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    gens = [torch.Generator().manual_seed(s) for s in (11, 12)]
    ref = pipe(prompt=prompts, image=images, num_inference_steps=4, guidance_scale=7.5,
               image_guidance_scale=1.5, generator=gens, output_type="np").images

    src = torch.from_numpy(np.stack([np.asarray(im, dtype=np.float32) for im in images])).permute(0, 3, 1, 2)
    src = src / 255.0 * 2 - 1
    with torch.no_grad():
        cond = text(tokenize(tokenizer, prompts))[0]
        null = text(tokenize(tokenizer, [""]))[0]
    ours = edit_images(unet, vae, EulerAncestralDiscreteScheduler.from_config(sched.config), src, cond,
                       null, [torch.Generator().manual_seed(s) for s in (11, 12)], steps=4,
                       image_guidance_scale=1.5, text_guidance_scale=7.5)
    diff = np.abs(ours.permute(0, 2, 3, 1).numpy() - ref).max()
    assert diff <= 1e-5, diff
    # and the guidance really matters: other scales give other images
    other = edit_images(unet, vae, EulerAncestralDiscreteScheduler.from_config(sched.config), src, cond,
                        null, [torch.Generator().manual_seed(s) for s in (11, 12)], steps=4,
                        image_guidance_scale=1.0, text_guidance_scale=1.0)
    assert np.abs(other.permute(0, 2, 3, 1).numpy() - ref).max() > 1e-3


def test_x0_prediction_is_sampled_as_the_equivalent_epsilon_model(tokenizer):
    """An x0-predicting UNet sampled with prediction_type='sample' gives exactly what the same
    network wrapped as an epsilon predictor gives under prediction_type='epsilon'."""
    vae = PixelUnshuffleAutoencoder(factor=2, scaling_factor=1.3)
    unet, text, sched = _components(tokenizer, vae)
    ch = vae.config.latent_channels
    x0_sched = EulerAncestralDiscreteScheduler.from_config(sched.config, prediction_type="sample")
    probe = EulerAncestralDiscreteScheduler.from_config(sched.config)
    probe.set_timesteps(4)

    class AsEpsilon(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.config = inner.config

        @property
        def dtype(self):
            return self.inner.dtype

        def forward(self, model_in, t, encoder_hidden_states, return_dict=False):
            sigma = probe.sigmas[(probe.timesteps == t).nonzero()[0, 0]]
            z = model_in[:, :ch] * (sigma**2 + 1) ** 0.5
            x0 = self.inner(model_in, t, encoder_hidden_states=encoder_hidden_states).sample
            return ((z - x0) / sigma,)

    src = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        cond = text(tokenize(tokenizer, PROMPTS[:2]))[0]
        null = text(tokenize(tokenizer, [""]))[0]
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2)]  # noqa: E731
    a = edit_images(unet, vae, x0_sched, src, cond, null, gens(), steps=4)
    b = edit_images(AsEpsilon(unet), vae, EulerAncestralDiscreteScheduler.from_config(sched.config),
                    src, cond, null, gens(), steps=4)
    assert torch.allclose(a, b, atol=1e-5)


def test_guidance_rescale_matches_lin_et_al_formula():
    """One x0-prediction step returns the guided x0 itself, so the output must be eq. 5 followed by
    Lin et al.'s rescale (section 3.4), written out here: x = phi * x_cfg * std(x_full) / std(x_cfg)
    + (1 - phi) * x_cfg, std per sample over all latent values."""
    vae = PixelUnshuffleAutoencoder(factor=2, scaling_factor=1.0)
    g = torch.Generator().manual_seed(0)
    full, image, uncond = (torch.randn(2, 12, 8, 8, generator=g) * s for s in (0.5, 0.3, 0.2))

    class Branches(torch.nn.Module):  # the three guidance branches return fixed x0 predictions
        dtype = torch.float32

        def forward(self, model_in, t, encoder_hidden_states, return_dict=False):
            return (torch.cat([full, image, uncond]),)

    sched = EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                            beta_end=0.012, prediction_type="sample")
    src = torch.zeros(2, 3, 16, 16)
    cond, null = torch.zeros(2, 4, 8), torch.zeros(1, 4, 8)
    cfg = uncond + 7.5 * (full - image) + 1.5 * (image - uncond)
    dims = (1, 2, 3)
    for phi in (0.0, 0.7, 1.0):
        want = phi * cfg * full.std(dim=dims, keepdim=True) / cfg.std(dim=dims, keepdim=True) + (1 - phi) * cfg
        out = edit_images(Branches(), vae, sched, src, cond, null,
                          [torch.Generator().manual_seed(s) for s in (1, 2)], steps=1,
                          guidance_rescale=phi)
        expect = (vae.decode(want).sample / 2 + 0.5).clamp(0, 1)
        assert torch.allclose(out, expect, atol=1e-4), (phi, (out - expect).abs().max())


def test_source_residual_unet_keeps_the_source_when_the_unet_outputs_zero(tokenizer):
    from benchmark.diffusion.unet import SourceResidualUNet

    vae = PixelUnshuffleAutoencoder(factor=2, scaling_factor=1.3)
    unet, _, _ = _components(tokenizer, vae)
    with torch.no_grad():
        unet.conv_out.weight.zero_()
        unet.conv_out.bias.zero_()
    wrapped = SourceResidualUNet(unet, vae.config.latent_channels, 1.3)
    src = vae.encode(torch.rand(2, 3, 16, 16) * 2 - 1).latent_dist.mode()
    noisy = torch.randn_like(src)
    out = wrapped(torch.cat([noisy, src], 1), 10, encoder_hidden_states=torch.randn(2, 5, 32))[0]
    assert torch.equal(out, 1.3 * src)
    assert wrapped.config is unet.config and wrapped.dtype == unet.dtype


def test_plain_attention_processor_computes_the_same_function(tokenizer):
    import copy

    from benchmark.diffusion.unet import use_plain_attention

    vae = PixelUnshuffleAutoencoder(factor=2)
    unet, _, _ = _components(tokenizer, vae)
    plain = use_plain_attention(copy.deepcopy(unet))
    x, hidden = torch.randn(3, unet.config.in_channels, 8, 8), torch.randn(3, 5, 32)
    with torch.no_grad():
        a = unet(x, 500, encoder_hidden_states=hidden).sample
        b = plain(x, 500, encoder_hidden_states=hidden).sample
    assert type(plain.attn_processors[next(iter(plain.attn_processors))]).__name__ == "AttnProcessor"
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_inference_unet_runs_in_bfloat16_behind_a_float32_interface(tokenizer):
    import copy

    from benchmark.diffusion.unet import InferenceUNet, SourceResidualUNet, for_inference

    vae = PixelUnshuffleAutoencoder(factor=2, scaling_factor=1.3)
    unet, _, _ = _components(tokenizer, vae)
    assert for_inference(unet) is unet  # float32, not compiled: untouched
    with pytest.raises(ValueError, match="unknown inference dtype 'float16x'"):
        for_inference(unet, "float16x")
    low = for_inference(copy.deepcopy(unet), "bfloat16")
    assert isinstance(low, InferenceUNet) and low.dtype == torch.float32
    assert next(low.unet.parameters()).dtype == torch.bfloat16 and low.config is low.unet.config
    src = vae.encode(torch.rand(2, 3, 16, 16) * 2 - 1).latent_dist.mode()
    x, hidden = torch.cat([torch.randn_like(src), src], 1), torch.randn(2, 5, 32)
    with torch.no_grad():
        ref = unet(x, 500, encoder_hidden_states=hidden).sample
        out = low(x, 500, encoder_hidden_states=hidden)[0]
        again = low(x, 500, encoder_hidden_states=hidden)[0]
        residual = SourceResidualUNet(low, vae.config.latent_channels, 1.3)(
            x, 500, encoder_hidden_states=hidden)[0]
    assert out.dtype == torch.float32 and torch.equal(out, again)
    assert not torch.equal(out, ref)  # really computed in bf16 ...
    assert (out - ref).abs().max() <= 0.02 * ref.abs().max()  # ... to bf16's precision
    # the source residual is added in float32, after the cast back
    assert residual.dtype == torch.float32 and torch.equal(residual, out + 1.3 * src)


@pytest.mark.slow  # compiling takes tens of seconds; `make test-slow` runs it
def test_compiled_inference_unet_matches_the_eager_one(tokenizer):
    import copy

    from benchmark.diffusion.unet import for_inference

    vae = PixelUnshuffleAutoencoder(factor=2)
    unet, _, _ = _components(tokenizer, vae)
    eager = for_inference(copy.deepcopy(unet), "bfloat16")
    compiled = for_inference(copy.deepcopy(unet), "bfloat16", compile=True)
    x, hidden = torch.randn(2, unet.config.in_channels, 8, 8), torch.randn(2, 5, 32)
    with torch.no_grad():
        a = eager(x, 500, encoder_hidden_states=hidden)[0]
        b = compiled(x, 500, encoder_hidden_states=hidden)[0]
        c = compiled(x, 500, encoder_hidden_states=hidden)[0]
    assert compiled.compiled and torch.equal(b, c)
    assert (a - b).abs().max() <= 0.02 * a.abs().max(), (a - b).abs().max()


@pytest.mark.slow  # compiling takes tens of seconds; `make test-slow` runs it
def test_compiled_float32_unet_keeps_rows_independent_at_a_fixed_batch_size(tokenizer):
    """What the CPU chunking (sampling.CPU_CHUNK) relies on, for the compiled float32 mode too: at
    one batch size a row's bits do not depend on the other rows, and repeat calls agree."""
    import copy

    from benchmark.diffusion.unet import for_inference

    vae = PixelUnshuffleAutoencoder(factor=2)
    unet, _, _ = _components(tokenizer, vae)
    compiled = for_inference(copy.deepcopy(unet), "float32", compile=True)
    x, hidden = torch.randn(4, unet.config.in_channels, 8, 8), torch.randn(4, 5, 32)
    x2, hidden2 = x.clone(), hidden.clone()
    x2[1:], hidden2[1:] = torch.randn_like(x2[1:]), torch.randn_like(hidden2[1:])
    with torch.no_grad():
        ref = unet(x, 500, encoder_hidden_states=hidden).sample
        a = compiled(x, 500, encoder_hidden_states=hidden)[0]
        b = compiled(x2, 500, encoder_hidden_states=hidden2)[0]
        c = compiled(x, 500, encoder_hidden_states=hidden)[0]
    assert compiled.compiled and torch.equal(a, c)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    # float32 throughout: the compiled kernels differ from eager only in rounding
    assert (a - ref).abs().max() <= 1e-4 * ref.abs().max(), (a - ref).abs().max()


def test_compile_on_cpu_without_a_cpp_compiler_is_one_clear_error(tokenizer):
    from torch._inductor import config

    from benchmark.diffusion.unet import CompilerNotFoundError, InferenceUNet, for_inference

    unet, _, _ = _components(tokenizer, PixelUnshuffleAutoencoder(factor=2))
    # config.patch, not monkeypatch: the config proxy does not survive monkeypatch's undo
    with config.patch({"cpp.cxx": ("/nonexistent/g++",)}), pytest.raises(
            CompilerNotFoundError, match=r"needs a C\+\+ compiler .*/nonexistent/g\+\+"):
        for_inference(unet, "float32", compile=True)
    # a GPU compiles with Triton: no C++ check there (torch.compile itself is lazy)
    assert isinstance(for_inference(unet, "float32", compile=True, device="cuda"), InferenceUNet)


def test_fresh_accelerator_keeps_the_cpu_it_was_asked_for():
    from benchmark.diffusion.training import fresh_accelerator

    assert fresh_accelerator(cpu=True).device.type == "cpu"
    assert fresh_accelerator(cpu=True, mixed_precision="bf16").mixed_precision == "bf16"


@needs_cuda
def test_fresh_accelerator_follows_the_device_asked_for_after_a_gpu_run():
    from benchmark.diffusion.training import fresh_accelerator

    # accelerate's process-wide state holds the device: a CPU run after a GPU one used to train on cuda
    assert fresh_accelerator().device.type == "cuda"
    assert fresh_accelerator(cpu=True).device.type == "cpu"
    assert fresh_accelerator().device.type == "cuda"


def test_draw_pairs_skips_unreadable_pairs_deterministically(tmp_path):
    import numpy as np

    import _dataset_fixtures as fx
    from benchmark.api import EditSample
    from benchmark.datasets import ipr2pr
    from benchmark.diffusion.training import draw_pairs

    data = fx.write_ipr2pr_folder(tmp_path / "ip", n_prompts=4, seeds_per_prompt=2)
    name0, seeds0 = data["seeds"][0]
    fx.truncate(data["root"] / name0 / f"{seeds0[1]}_1.jpg")  # pair 1
    pairs = ipr2pr.pairs(str(data["root"]))
    a = draw_pairs(pairs, 12, np.random.default_rng(3))
    b = draw_pairs(pairs, 12, np.random.default_rng(3))
    assert [i for i, _ in a] == [i for i, _ in b] and len(a) == 12
    assert 1 not in {i for i, _ in a} and all(isinstance(it, EditSample) for _, it in a)
    assert {i for i, _ in draw_pairs(pairs, 8, np.random.default_rng(0), eligible=[4, 5])} <= {4, 5}
    with pytest.raises(ValueError, match="unreadable training pairs"):
        draw_pairs(pairs, 2, np.random.default_rng(0), eligible=[1], max_failures=5)
