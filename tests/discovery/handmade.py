"""Hand-built 2-layer attention-only zoo transformers whose edge interactions are known by construction.

Tokens: 0 = BOS, 1 = END, 2-7 values; prompts ``[BOS, x, END]``, the answer ``x`` at the last position, the
foil another value. Residual dims: 0-7 one-hot token, 8 "is a value", 9 "is BOS", 10 constant 1, 11 a flag
or marker written by layer 0. No layer norm, no positional embedding; the unembedding reads the token dims
(value ``t`` scaled by ``1 + 0.1 t``, so prompts differ).
"""

from __future__ import annotations

import torch


def blank_model():
    """A 2-layer, 2-head zoo transformer with every weight 0 but the embedding and the unembedding."""
    from circuitry.zoo.arch import ZooConfig, ZooTransformer

    cfg = ZooConfig(n_layers=2, n_heads=2, d_model=12, d_head=8, d_vocab=8, n_ctx=3, positional="absolute",
                    normalization="none")
    torch.manual_seed(0)
    m = ZooTransformer(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        E = m.embed.weight
        for t in range(8):
            E[t, t] = 1.0
            E[t, 10] = 1.0
        E[2:, 8] = 1.0
        E[0, 9] = 1.0
        for t in range(2, 8):
            m.unembed.weight[t, t] = 1.0 + 0.1 * t
    return m


def copy_values(attn, rows: slice) -> None:
    """The head whose query/key/value rows are ``rows`` copies the value tokens it attends to."""
    for j, t in enumerate(range(2, 8)):
        attn.v_proj.weight[rows.start + j, t] = 1.0
        attn.o_proj.weight[t, rows.start + j] = 1.0


def pairs(task: str, corrupt=None):
    """Every (answer, foil) pair of values; the corrupted prompt holds ``corrupt(x, foil)`` at position 1
    (default: the foil)."""
    from circuitry.prompts import PairDataset, PromptPair

    corrupt = corrupt or (lambda x, f: f)
    ps = [PromptPair(clean=(0, x, 1), corrupted=(0, corrupt(x, f), 1), positions=(2,), answers=(x,), foils=(f,))
          for x in range(2, 8) for f in range(2, 8) if f != x]
    return PairDataset(task=task, pairs=tuple(ps), metric="logit_diff")
