"""scripts/probe_ideal_denoiser.py: the exact posterior-mean denoiser behind docs/tiny-models.md's
"What an ideal denoiser scores" table."""

import numpy as np
import torch
from _helpers import import_script


def _probe():
    return import_script("probe_ideal_denoiser")


def test_posterior_mean_is_the_prior_mean_at_pure_noise_and_the_candidate_at_low_noise():
    probe = _probe()
    cands = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]])
    logw = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    assert torch.allclose(probe.posterior_mean(torch.zeros(2), 0.0, cands, logw),
                          torch.tensor([1.0, 0.25]))
    abar = 0.999
    z = abar ** 0.5 * cands[2]
    assert torch.allclose(probe.posterior_mean(z, abar, cands, logw), cands[2], atol=1e-4)


def test_ideal_denoiser_reproduces_the_target_and_a_text_error_shows():
    from benchmark.datasets import synth
    from benchmark.diffusion.autoencoders import PixelUnshuffleAutoencoder

    probe = _probe()
    vae = PixelUnshuffleAutoencoder(factor=4)
    vae.register_to_config(scaling_factor=1.6374)
    samples = [synth.generate("ma5k", "val", i, size=64)[-1] for i in range(2)]
    others = probe.latents(vae, np.stack([probe._rgb(synth.generate("evr", "train", i, size=64)[-1].target)
                                          for i in range(3)]))
    tgt = np.stack([probe._rgb(s.target) for s in samples])
    kw = dict(image_guidance_scale=1.0, text_guidance_scale=1.0, guidance_rescale=0.0)
    exact = probe.ideal_edits(samples, others, vae, **kw)
    assert np.abs(exact - tgt).max() <= 1 / 255 + 1e-6
    off = probe.ideal_edits(samples, others, vae, text_error=0.5, **kw)
    assert np.abs(off - tgt).mean() > 0.01


def test_null_prior_is_the_generators_twenty_retouches_or_n_amounts_spanning_them():
    from benchmark.datasets.synth.edits import RETOUCH

    probe = _probe()
    assert len(probe.retouch_params()) == 20
    fine = probe.retouch_params(9)
    assert len(fine) == 5 * 9
    for op, rs in RETOUCH.items():
        firsts = [p[0] for o, p in fine if o == op]
        assert min(firsts) == min(r.params[0] for r in rs) and max(firsts) == max(r.params[0] for r in rs)
    # white balance keeps the generator's r + b = 2 along the span
    assert all(abs(p[0] + p[2] - 2) < 1e-9 for o, p in fine if o == "white_balance")
