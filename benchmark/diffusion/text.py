"""Offline text stack for the tiny presets: a BPE tokenizer trained on synth-suite text and a
small CLIP text encoder config. No hub access: the tokenizer is built by a recorded command and
saved as ``tokenizer.json`` beside the checkpoint that uses it.

The tokenizer behaves like CLIP's for the pipelines: lower-cased, ``<|startoftext|>`` /
``<|endoftext|>`` around the text, padded with ``<|endoftext|>`` to ``model_max_length`` = 77.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

BOS, EOS, UNK = "<|startoftext|>", "<|endoftext|>", "<|unk|>"
MAX_LENGTH = 77


def synth_corpus(n_per_variant: int = 2000) -> list[str]:
    """Instructions, expressive instructions and captions of the synth train split."""
    from benchmark.datasets import synth

    texts: list[str] = []
    for variant in synth.VARIANTS:
        for sample in synth.iter_samples(variant, "train", size=16, stop=n_per_variant):
            texts.extend(t for t in (sample.instruction, sample.expressive, sample.input_caption,
                                     sample.goal_caption) if t)
    return texts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """A CLIP-like BPE tokenizer (``transformers.PreTrainedTokenizerFast``) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, BOS, UNK],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A {EOS}",
                                                       special_tokens=[(BOS, bos), (EOS, eos)])
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast


    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK, pad_token=EOS, model_max_length=MAX_LENGTH)


def load_tokenizer(path: str | Path):
    """Load a tokenizer saved by ``save_tokenizer`` (a single ``tokenizer.json``)."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file missing: {path}")
    return wrap_tokenizer(Tokenizer.from_file(str(path)))


def save_tokenizer(tokenizer, path: str | Path) -> None:
    from benchmark.files import atomic_write_bytes

    atomic_write_bytes(path, tokenizer.backend_tokenizer.to_str().encode("utf-8"))


def tokenize(tokenizer, texts: list[str]):
    """Input ids padded/truncated to 77, as diffusers' pipelines tokenize prompts."""
    return tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


def tiny_clip_text_config(vocab_size: int, tokenizer=None, hidden_size: int = 64):
    from transformers import CLIPTextConfig

    ids = {}
    if tokenizer is not None:
        ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id)
    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden_size,
                          intermediate_size=2 * hidden_size, num_hidden_layers=2,
                          num_attention_heads=2, max_position_embeddings=MAX_LENGTH,
                          projection_dim=hidden_size, **ids)
