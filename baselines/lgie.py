"""LGIE (the MGIE paper's LLM-guided baseline): a text-only causal LM (LLaMA family) derives the
expressive instruction from the instruction alone, without seeing the image; everything else is
MGIE's (shared core in ``mgie/``). Presets: ``tiny`` and ``7b`` (LLaMA-7B + SD-v1.5)."""

from mgie.editor import MLLMGuidedEditor


class LGIE(MLLMGuidedEditor):
    name = "lgie"
    multimodal = False
