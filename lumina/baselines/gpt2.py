"""The TinyStories baseline: a single-layer GPT-2-style Transformer trained from scratch.

GPT-2: Radford, Wu, Child, Luan, Amodei & Sutskever 2019, "Language Models are Unsupervised Multitask
Learners" (OpenAI technical report). The paper compares LuminaNet with a *single-layer* GPT-2-style model
(its TinyStories perplexity and top-1: `lumina.paper` claims `tinystories.ppl_gpt2` and `.top1_gpt2`).
Built with `transformers.GPT2LMHeadModel` from a fresh `GPT2Config(n_layer=1, ...)`: random weights, never
pretrained; learned positional embeddings over `context` positions, causal self-attention, tied input/output
embeddings (GPT-2's defaults). Dropout is 0 by default [ours]: LuminaNet uses none either, and the paper
stresses "no training tricks".

The wrapper takes token ids (B, T), T <= context, and returns
  - `full_sequence=True`: logits (B, T, vocab) for every position (standard LM training: position t
    predicts token t+1, each from the tokens up to t);
  - `full_sequence=False`: logits (B, vocab) of the last position only (a window of L tokens -> the next token).
`lumina.text.evaluate_lm` scores every position of a full-sequence output, as it does a text LuminaNet's, so both
models are scored on the same tokens with the same context.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["GPT2Baseline", "build_gpt2"]


class GPT2Baseline(nn.Module):
    """`transformers.GPT2LMHeadModel` behind the (B, T) int64 -> logits interface of lumina's text task."""

    def __init__(self, config, full_sequence: bool = True):
        super().__init__()
        from transformers import GPT2LMHeadModel

        self.lm = GPT2LMHeadModel(config)
        self.vocab_size, self.context = config.vocab_size, config.n_positions
        self.full_sequence = full_sequence
        # The LM head shares its weight with the token embedding (GPT-2's tying). safetensors refuses shared
        # tensors, so the state dict holds the shared matrix once (as the embedding) and loading re-ties it.
        self.register_state_dict_post_hook(GPT2Baseline._drop_tied)
        self.register_load_state_dict_pre_hook(GPT2Baseline._fill_tied)

    TIED, SOURCE = "lm.lm_head.weight", "lm.transformer.wte.weight"

    def _tied(self) -> bool:
        return self.lm.lm_head.weight is self.lm.transformer.wte.weight

    @staticmethod
    def _drop_tied(module, state_dict, prefix, local_metadata) -> None:
        if module._tied():
            state_dict.pop(prefix + GPT2Baseline.TIED, None)

    @staticmethod
    def _fill_tied(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
        if module._tied() and prefix + GPT2Baseline.SOURCE in state_dict:
            state_dict.setdefault(prefix + GPT2Baseline.TIED, state_dict[prefix + GPT2Baseline.SOURCE])

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.ndim != 2:
            raise ValueError(f"expected token ids of shape (B, T), got {tuple(idx.shape)}")
        if idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"expected integer token ids, got dtype {idx.dtype}")
        if not 0 < idx.shape[1] <= self.context:
            raise ValueError(f"sequence length {idx.shape[1]} must lie in [1, {self.context}] (the context)")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}); got range [{int(idx.min())}, {int(idx.max())}]")
        logits = self.lm(input_ids=idx.long(), use_cache=False).logits  # (B, T, vocab)
        return logits if self.full_sequence else logits[:, -1]


def build_gpt2(vocab_size: int, context: int, d_model: int, n_head: int = 4, *, full_sequence: bool = True,
               dropout: float = 0.0, eot_id: int = 0, seed: int | None = None) -> GPT2Baseline:
    """A 1-layer GPT-2 (Radford et al. 2019) with `d_model`-wide residual stream, `n_head` heads, an MLP of
    4*d_model, `context` learned positions and a `vocab_size` tied embedding/LM head; random init
    (under `seed` when given, else the global torch RNG)."""
    from transformers import GPT2Config

    if d_model % n_head:
        raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}")
    if min(vocab_size, context, d_model, n_head) <= 0:
        raise ValueError("vocab_size, context, d_model and n_head must be positive")
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=context, n_embd=d_model, n_layer=1, n_head=n_head,
                     n_inner=4 * d_model, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                     bos_token_id=eot_id, eos_token_id=eot_id, use_cache=False)
    if seed is None:
        return GPT2Baseline(cfg, full_sequence)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2Baseline(cfg, full_sequence)
