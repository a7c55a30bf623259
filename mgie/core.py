"""The MLLM-guided editing core shared by LGIE, MGIE and the MIND-Edit- and xMGIE-style models.

After MGIE (Fu et al., ICLR 2024, section 3.2 and appendix B) and its released code
(apple/ml-mgie):
- the (M)LLM reads ``"what will this image be like if [instruction]"`` (with the image for an
  MLLM) and derives a concise *expressive instruction* E, followed by N = 8 visual tokens
  ``[IMG0]..[IMG7]`` added to the tokenizer with trainable embeddings and generated through the
  LM head;
- the edit head T (GILL-style: a 4-layer encoder-decoder transformer with L = 77 learnable
  queries) maps ``e_[IMG] + h_[IMG]`` — word embedding plus the last-layer hidden state of the
  position that emits each [IMG] token — to the UNet's ``encoder_hidden_states`` (77 x D);
- the null condition for classifier-free guidance is T applied to zero hidden states (with the
  [IMG] embeddings, as in the released code);
- L_ins: cross-entropy on E and the [IMG] tokens by teacher forcing; L_all = L_ins + 0.5 L_edit.
Inference derives E greedily, at most 32 new tokens, stopping at [IMG0] or end-of-sequence; the
8 [IMG] tokens are then appended (their embeddings are learned, so appending them is what the
trained model generates) and one forward pass gives their hidden states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

N_IMG = 8
IMG_TOKENS = [f"[IMG{i}]" for i in range(N_IMG)]
IMAGE_TOKEN = "<image>"
PROMPT = "what will this image be like if {instruction} =>"
MAX_NEW_TOKENS = 32
NUM_QUERIES = 77


def add_mgie_tokens(tokenizer, multimodal: bool):
    """Add the [IMG] tokens (and ``<image>`` for an MLLM) as special tokens; returns their ids."""
    tokens = IMG_TOKENS + ([IMAGE_TOKEN] if multimodal else [])
    tokenizer.add_tokens(tokens, special_tokens=True)
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


class EditHead(nn.Module):
    """T: [IMG] features (B x 8 x H) -> editing guidance U (B x 77 x D).

    ``llm2hid`` projects e + h to the head width, an ``nn.Transformer`` (pre-norm, no dropout)
    encodes them and decodes ``num_queries`` learnable queries, ``hid2feat`` projects to the UNet's
    cross-attention width (MGIE-7B: 4096 -> 512 -> 768, 4 + 4 layers, 4 heads, FFN 2048)."""

    def __init__(self, llm_hidden: int, cross_attention_dim: int, d_model: int = 512,
                 nhead: int = 4, num_layers: int = 4, dim_feedforward: int = 2048,
                 num_queries: int = NUM_QUERIES, query_std: float = 0.02):
        super().__init__()
        self.llm2hid = nn.Linear(llm_hidden, d_model)
        # query init: N(0, query_std^2); apple/ml-mgie's EditMapper draws torch.randn (std 1),
        # which the 7b preset keeps; the tiny preset was trained with 0.02
        self.query = nn.Parameter(torch.randn(1, num_queries, d_model) * query_std)
        self.mapper = nn.Transformer(d_model=d_model, nhead=nhead, num_encoder_layers=num_layers,
                                     num_decoder_layers=num_layers, dim_feedforward=dim_feedforward,
                                     dropout=0.0, batch_first=True, norm_first=True)
        self.hid2feat = nn.Linear(d_model, cross_attention_dim)

    def forward(self, hidden: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.llm2hid(hidden + emb)
        out = self.mapper(h, self.query.expand(h.shape[0], -1, -1))
        return self.hid2feat(out)


@dataclass
class Derived:
    expressive: str
    hidden: torch.Tensor  # 1 x 8 x H: hidden states of the positions emitting [IMG0..7]
    n_tokens: int = 0  # tokens of E as generated
    # "generated": the LM emitted [IMG0] itself. Fallbacks, when it did not: "forced-after-eos"
    # (it ended the answer) or "forced-after-limit" (E reached MAX_NEW_TOKENS and was cut); the
    # eight [IMG] tokens are then appended to E as it stands, so the conditioning is always
    # defined. Editors record fallbacks per edit and the result counts them.
    img_tokens: str = "generated"


class MLLMGuide(nn.Module):
    """An (M)LLM with [IMG] tokens and the edit head. ``lm`` is a causal LM
    (``LlamaForCausalLM`` for LGIE) or ``LlavaForConditionalGeneration`` (MGIE, ``multimodal``)."""

    def __init__(self, lm, tokenizer, edit_head: EditHead, multimodal: bool, n_image_tokens: int = 0,
                 template: str | None = None):
        """``template``: the prompt around ``{instruction}``, with ``<image>`` where the image's
        ``n_image_tokens`` go (the 7b preset's chat template); None: the tiny preset's ``PROMPT``
        with the image tokens first."""
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.edit_head = edit_head
        self.multimodal = multimodal
        self.n_image_tokens = n_image_tokens
        self.template = template
        self.img_ids = [tokenizer.convert_tokens_to_ids(t) for t in IMG_TOKENS]
        self.image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) if multimodal else None

    # ------------------------------------------------------------------ token plumbing
    def prompt_ids(self, instruction: str) -> list[int]:
        ids = [self.tokenizer.bos_token_id]
        encode = lambda text: self.tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
        if self.template is None:
            if self.multimodal:
                ids += [self.image_id] * self.n_image_tokens
            return ids + encode(PROMPT.format(instruction=instruction.strip()))
        before, image, after = self.template.format(instruction=instruction.strip()).partition(IMAGE_TOKEN)
        ids += encode(before)
        if image and self.multimodal:
            ids += [self.image_id] * self.n_image_tokens
        return ids + (encode(after) if after else [])

    def answer_ids(self, expressive: str, img_tokens: bool = True) -> list[int]:
        e = self.tokenizer(" " + expressive.strip(), add_special_tokens=False).input_ids
        return e[:MAX_NEW_TOKENS] + (self.img_ids if img_tokens else []) + [self.tokenizer.eos_token_id]

    def img_embeddings(self, batch: int) -> torch.Tensor:
        emb = self.lm.get_input_embeddings().weight[self.img_ids]
        return emb.unsqueeze(0).expand(batch, -1, -1)

    def _forward(self, input_ids, attention_mask, pixel_values):
        kwargs = {"pixel_values": pixel_values} if self.multimodal else {}
        return self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                       **kwargs)

    # ------------------------------------------------------------------ training
    def instruction_loss(self, instructions: Sequence[str], expressives: Sequence[str],
                         pixel_values: torch.Tensor | None = None, img_tokens: bool = True):
        """(L_ins, [IMG] hidden states B x 8 x H) by teacher forcing on E + [IMG0..7] + eos.
        ``img_tokens=False``: on E + eos only, and the hidden states are None (the language
        pretraining that stands in for LLaMA/LLaVA's, which never saw [IMG] tokens)."""
        device = self.lm.get_input_embeddings().weight.device
        seqs, labels, img_pos = [], [], []
        for ins, exp in zip(instructions, expressives):
            p, a = self.prompt_ids(ins), self.answer_ids(exp, img_tokens)
            seqs.append(p + a)
            labels.append([-100] * len(p) + a)
            if img_tokens:
                start = len(p) + a.index(self.img_ids[0])
                img_pos.append([start + k - 1 for k in range(N_IMG)])  # positions emitting [IMG k]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)
        lab = torch.tensor([lb + [-100] * (width - len(lb)) for lb in labels], device=device)
        out = self._forward(ids, mask, pixel_values)
        logits = out.logits[:, :-1].float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1),
                               ignore_index=-100)
        if not img_tokens:
            return loss, None
        last = out.hidden_states[-1]
        pos = torch.tensor(img_pos, device=device)
        hidden = torch.gather(last, 1, pos.unsqueeze(-1).expand(-1, -1, last.shape[-1]))
        return loss, hidden

    def condition(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.edit_head(hidden, self.img_embeddings(hidden.shape[0]))

    def null_condition(self, batch: int = 1) -> torch.Tensor:
        w = self.lm.get_input_embeddings().weight
        # the LM's dtype: the 7b preset runs it (and the edit head) in bf16 on GPUs
        zeros = torch.zeros(batch, N_IMG, w.shape[1], device=w.device, dtype=w.dtype)
        return self.edit_head(zeros, self.img_embeddings(batch))

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def derive(self, instruction: str, pixel_values: torch.Tensor | None = None) -> Derived:
        """Greedy E (<= 32 tokens, stops at [IMG0] or eos), then the [IMG] hidden states."""
        device = self.lm.get_input_embeddings().weight.device
        prompt = self.prompt_ids(instruction)
        ids = torch.tensor([prompt], device=device)
        kwargs = {"pixel_values": pixel_values} if self.multimodal else {}
        out = self.lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                               max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                               eos_token_id=[self.img_ids[0], self.tokenizer.eos_token_id],
                               pad_token_id=self.tokenizer.pad_token_id, **kwargs)
        new = out[0, len(prompt):].tolist()
        stop = {self.img_ids[0], self.tokenizer.eos_token_id}
        e_ids, img_tokens = [], "forced-after-limit"
        for t in new:
            if t in stop:
                img_tokens = "generated" if t == self.img_ids[0] else "forced-after-eos"
                break
            e_ids.append(t)
        expressive = self.tokenizer.decode(e_ids, skip_special_tokens=True).strip()
        seq = prompt + e_ids + self.img_ids
        ids = torch.tensor([seq], device=device)
        last = self._forward(ids, torch.ones_like(ids), pixel_values).hidden_states[-1]
        start = len(prompt) + len(e_ids)
        hidden = last[:, start - 1:start - 1 + N_IMG]
        return Derived(expressive=expressive, hidden=hidden, n_tokens=len(e_ids),
                       img_tokens=img_tokens)


def freeze_for_mgie(guide: MLLMGuide) -> list[nn.Parameter]:
    """MGIE's trainable MLLM parameters: word embeddings, LM head and the edit head; the rest of
    the (M)LLM is frozen (paper, section 4.1). Returns the trainable MLLM-side parameters."""
    guide.lm.requires_grad_(False)
    emb = guide.lm.get_input_embeddings()
    head = guide.lm.get_output_embeddings()
    emb.weight.requires_grad_(True)
    head.weight.requires_grad_(True)
    guide.edit_head.requires_grad_(True)
    params = [emb.weight] + ([head.weight] if head.weight is not emb.weight else [])
    return params + list(guide.edit_head.parameters())
