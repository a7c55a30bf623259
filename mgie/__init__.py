"""The MLLM-guided family: a shared (M)LLM + [IMG] tokens + edit head core (``mgie.core``) on the
shared diffusion editing core, and the MGIE adapter. LGIE lives in ``baselines/lgie.py``."""
