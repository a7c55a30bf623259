"""LPIPS between output and target, lower is better.

Convention (the ``lpips`` package, v0.1, ``net="alex"``; torchmetrics'
``LearnedPerceptualImagePatchSimilarity(net_type="alex")`` wraps the same): both images as
ToTensor in [0, 1] mapped to [-1, 1] (``2 x - 1``), the output first resized to the target's size
with PIL bicubic when the sizes differ (MagicBrush's convention for the pixel metrics; the lpips
package itself requires equal sizes), AlexNet taps unit-normalised per channel, squared
differences weighted by the v0.1 lin layers, averaged over space and summed over the five taps.
See ``benchmark.metrics.backbones.lpips_net``.

Backbone role ``lpips`` (``lpips-alex-v0.1``; on the synth backbones ``synth-lpips-uncalibrated``:
the same formula on the synth classifier's features with uniform weights, not calibrated on human
judgements and labelled so in every result).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from benchmark.metrics.backbones.base import rgb
from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import LearnedMetric


def lpips_distance(lin, output_taps: Sequence[Sequence[torch.Tensor]],
                   target_taps: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """Per-pair LPIPS from per-image lists of normalised taps (each tap CxHxW)."""
    vals = [lin([t[None] for t in a], [t[None] for t in b])[0] for a, b in zip(output_taps, target_taps)]
    return torch.stack(vals).double() if vals else torch.zeros(0, dtype=torch.float64)


class LPIPS(LearnedMetric):
    key = "lpips"
    higher_is_better = False
    requires = ("target",)
    role = "lpips"
    view = "lpips"

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        bb = self.model
        outputs = []
        for it in items:
            out, tgt = rgb(it.output), it.sample.target
            if out.size != tgt.size:
                out = out.resize(tgt.size, Image.BICUBIC)
            outputs.append(out)
        out_taps = self.cache.image_features(bb, self.view, outputs)
        tgt_taps = self.cache.image_features(bb, self.view, [it.sample.target for it in items],
                                             dataset_side=True)
        return lpips_distance(bb.lin, out_taps, tgt_taps).tolist()
