"""A 2-layer attention-only zoo model whose heads are set by hand to be one type each (no LayerNorm).

Residual-stream subspaces: S0 (dims 0-15) the current token, S1 (16-31) the previous token, S2 (32-47)
the token two back, P (48-111) the position (added to query/key inputs only: shortformer).

| head | type | how |
|---|---|---|
| L0H0 | previous-token | QK on positions: i attends to i-1; OV copies S0 -> S1 |
| L0H1 | two-back | QK on positions: i attends to i-2; OV copies S0 -> S2 |
| L0H2 | attention sink | constant query, key only at position 0; OV zero |
| L0H3 | nothing | all zero (uniform attention, no output) |
| L1H0 | 3-gram induction | query (S0, S1) matches key (S1, S2) |
| L1H1 | induction | query S0 matches key S1 |
| L1H2 | successor | uniform attention; OV maps token x to x + 1 |
| L1H3 | copy suppression / negative | previous-token attention; OV maps token x to -x |
"""

from __future__ import annotations

import torch

from circuitry.zoo.arch import ZooConfig, ZooTransformer

V, N_CTX, D_HEAD = 16, 64, 64
S0, S1, S2, P = 0, 16, 32, 48
POS, AMP = 12.0, 8.0


def _head(block, h, *, wq=None, wk=None, bq=None, wv=None, wo=None):
    """Set head ``h``'s slices; ``wq`` etc. are ``[d_model, d_head]`` (row convention), ``wo`` ``[d_head, d_model]``."""
    sl = slice(h * D_HEAD, (h + 1) * D_HEAD)
    a = block.attn
    for lin, w in ((a.q_proj, wq), (a.k_proj, wk), (a.v_proj, wv)):
        if w is not None:
            lin.weight[sl] = w.T
    if bq is not None:
        a.q_proj.bias[sl] = bq
    if wo is not None:
        a.o_proj.weight[:, sl] = wo.T


def _positional(offset: int, d_model: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``W_Q, W_K`` so that query ``i`` scores key ``i - offset`` at ``POS**2 / sqrt(d_head)``."""
    wq, wk = torch.zeros(d_model, D_HEAD), torch.zeros(d_model, D_HEAD)
    for i in range(N_CTX):
        wq[P + i, i] = 1.0
        if i + offset < N_CTX:
            wk[P + i, i + offset] = 1.0
    return wq, wk


def _copy(src: int, dst: int, d_model: int, *, sign: float = 1.0, shift: int = 0):
    """``W_V, W_O`` copying token ``x`` in subspace ``src`` to ``x + shift`` in ``dst`` (times ``sign``)."""
    wv, wo = torch.zeros(d_model, D_HEAD), torch.zeros(D_HEAD, d_model)
    for x in range(V):
        wv[src + x, x] = 1.0
        if 0 <= x + shift < V and (shift == 0 or x >= 1):
            wo[x, dst + x + shift] = sign
    return wv, wo


def catalogue_model() -> ZooTransformer:
    cfg = ZooConfig(n_layers=2, n_heads=4, d_model=128, d_head=D_HEAD, d_vocab=V, n_ctx=N_CTX,
                    normalization="none", positional="shortformer")
    m = ZooTransformer(cfg)
    d = cfg.d_model
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.embed.weight[:, S0:S0 + V] = torch.eye(V)
        m.pos_embed.weight[:, P:P + N_CTX] = POS * torch.eye(N_CTX)
        m.unembed.weight[:, S0:S0 + V] = torch.eye(V)
        b0, b1 = m.blocks
        wq, wk = _positional(1, d)
        _head(b0, 0, wq=wq, wk=wk, wv=_copy(S0, S1, d)[0], wo=_copy(S0, S1, d)[1])
        wq2, wk2 = _positional(2, d)
        _head(b0, 1, wq=wq2, wk=wk2, wv=_copy(S0, S2, d)[0], wo=_copy(S0, S2, d)[1])
        wk_sink, bq = torch.zeros(d, D_HEAD), torch.zeros(D_HEAD)
        wk_sink[P, 0], bq[0] = 1.0, 10.0 * POS
        _head(b0, 2, wk=wk_sink, bq=bq)
        # layer 1: token matching through the subspaces written by layer 0
        q3, k3 = torch.zeros(d, D_HEAD), torch.zeros(d, D_HEAD)
        for x in range(V):
            q3[S0 + x, x], k3[S1 + x, x] = AMP, AMP          # current token == token before the key
            q3[S1 + x, V + x], k3[S2 + x, V + x] = AMP, AMP  # previous token == token two before the key
        _head(b1, 0, wq=q3, wk=k3)
        qi, ki = torch.zeros(d, D_HEAD), torch.zeros(d, D_HEAD)
        for x in range(V):
            qi[S0 + x, x], ki[S1 + x, x] = AMP, AMP
        _head(b1, 1, wq=qi, wk=ki)
        wv, wo = _copy(S0, S0, d, shift=1)
        _head(b1, 2, wv=wv, wo=wo)
        wv, wo = _copy(S0, S0, d, sign=-1.0)
        _head(b1, 3, wq=wq, wk=wk, wv=wv, wo=wo)
    return m.eval()
