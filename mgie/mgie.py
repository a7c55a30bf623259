"""MGIE (Fu et al., ICLR 2024): a LLaVA-style MLLM that sees the image, derives an expressive
instruction and [IMG] tokens, and guides the diffusion editor through the edit head.
Presets: ``tiny`` (in-code LLaVA config, trained here) and ``7b`` (LLaVA-7B + SD-v1.5)."""

from mgie.editor import MLLMGuidedEditor


class MGIE(MLLMGuidedEditor):
    name = "mgie"
    multimodal = True
