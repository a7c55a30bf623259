"""Metric backbones: standard ones loaded by public name, and the embedded synth ones.

Metrics ask for a *role*, and ``resolve(role, mode)`` picks the backbone:

=============  ======================  ==============================  ==========================
role           used by                 standard                        synth
=============  ======================  ==============================  ==========================
``clip``       cvs, cts, clip_s_*      ``clip-vit-b-32``               ``synth-clip``
``clip-large`` clip_dir                ``clip-vit-l-14``               ``synth-clip``
``dino``       dino                    ``dino-vits16``                 ``synth-dino``
``inception``  fid, kid                ``inception-v3-fid``            ``synth-classifier``
``lpips``      lpips                   ``lpips-alex-v0.1``             ``synth-lpips-uncalibrated``
=============  ======================  ==============================  ==========================

``mode``: ``standard`` (standard weights or a ``MissingWeightsError`` naming the file and the
command that fetches it), ``synth`` (always the embedded ones), ``auto`` (standard where its
weights are on this machine, synth otherwise; the default). Every number records the backbone
name and weights sha256 that made it, so standard and synth numbers are never mixed.
"""

from __future__ import annotations

from functools import lru_cache

from benchmark.metrics.backbones.base import Backbone, MissingWeightsError

__all__ = ["Backbone", "MissingWeightsError", "ROLES", "MODES", "resolve", "STANDARD", "SYNTH",
           "backbone_factory", "add_backbone_args"]

MODES = ("auto", "standard", "synth")
STANDARD = {"clip": "clip-vit-b-32", "clip-large": "clip-vit-l-14", "dino": "dino-vits16",
            "inception": "inception-v3-fid", "lpips": "lpips-alex-v0.1"}
SYNTH = {"clip": "synth-clip", "clip-large": "synth-clip", "dino": "synth-dino",
         "inception": "synth-classifier", "lpips": "synth-lpips-uncalibrated"}
ROLES = tuple(STANDARD)


def _synth(name: str, device: str) -> Backbone:
    from benchmark.metrics.backbones import synth

    cls = {"synth-clip": synth.SynthCLIPBackbone, "synth-dino": synth.SynthDINOBackbone,
           "synth-classifier": synth.SynthClassifierBackbone,
           "synth-lpips-uncalibrated": synth.SynthLPIPSBackbone}[name]
    return _cached_synth(cls, device)


@lru_cache(maxsize=None)
def _cached_synth(cls, device: str) -> Backbone:
    return cls(device)


def backbone_factory(name: str):
    """A zero-argument-friendly loader for a backbone by public name (registry entries)."""

    def load(weights_dir: str | None = None, device: str = "cpu") -> Backbone:
        if name.startswith("synth-"):
            return _synth(name, device)
        from benchmark.metrics.backbones.standard import load_standard

        return load_standard(name, weights_dir, device)

    load.__name__ = name.replace("-", "_").replace(".", "_")
    load.__doc__ = f"Load the {name} metric backbone."
    return load


# registry targets: ``benchmark.metrics.backbones:clip_vit_b_32`` etc.
clip_vit_b_32 = backbone_factory("clip-vit-b-32")
clip_vit_l_14 = backbone_factory("clip-vit-l-14")
dino_vits16 = backbone_factory("dino-vits16")
inception_v3_fid = backbone_factory("inception-v3-fid")
lpips_alex_v0_1 = backbone_factory("lpips-alex-v0.1")
synth_clip = backbone_factory("synth-clip")
synth_dino = backbone_factory("synth-dino")
synth_classifier = backbone_factory("synth-classifier")
synth_lpips_uncalibrated = backbone_factory("synth-lpips-uncalibrated")


def resolve(role: str, mode: str = "auto", weights_dir: str | None = None,
            device: str = "cpu") -> Backbone:
    """The backbone that plays ``role`` under ``mode`` (see the module docstring)."""
    if role not in STANDARD:
        raise ValueError(f"unknown backbone role {role!r}; known: {', '.join(ROLES)}")
    if mode not in MODES:
        raise ValueError(f"unknown backbones mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "synth":
        return _synth(SYNTH[role], device)
    from benchmark.metrics.backbones import standard

    name = STANDARD[role]
    if mode == "standard" or standard.available(name, weights_dir):
        return standard.load_standard(name, weights_dir, device)
    return _synth(SYNTH[role], device)


def add_backbone_args(parser) -> None:
    """``--backbones {auto,standard,synth}`` and ``--weights-dir DIR`` for ``run``/``score``."""
    parser.add_argument("--backbones", choices=MODES, default="auto",
                        help="metric backbones: standard (public weights, error if missing), synth "
                        "(embedded tiny ones), auto (standard where present, else synth; default)")
    parser.add_argument("--weights-dir", default=None,
                        help="folder with standard backbone weights (also $EDITBENCH_WEIGHTS_DIR)")
