"""The zoo's own transformer: a small, explicit, pre-LayerNorm decoder.

Module names mirror the Hugging Face Llama layout (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``) so
the model adapter maps them with one table row, and every quantity the analyses need is the output of a
module that nnsight can read or overwrite:

=====================================  =====================================================
module path                            what its output is
=====================================  =====================================================
``embed``                              token embeddings ``[batch, pos, d_model]``
``pos_embed``                          learned positional embeddings ``[pos, d_model]``
``blocks.{l}``                         residual stream after layer ``l`` (input: before it)
``blocks.{l}.ln1``                     normalized residual stream fed to attention
``blocks.{l}.attn.q_proj`` (k, v)      queries/keys/values ``[batch, pos, n_heads * d_head]``
``blocks.{l}.attn.hook_pattern``       attention pattern ``[batch, head, query, key]``
``blocks.{l}.attn.o_proj``             input: per-head ``z`` concatenated; output: attention out
``blocks.{l}.mlp``                     MLP output (models with ``d_mlp > 0``)
``ln_final``, ``unembed``              final norm, logits ``[batch, pos, d_vocab_out or d_vocab]``
=====================================  =====================================================

Positional schemes (see ``docs/zoo.md`` for the trade-offs):

* ``"shortformer"``: the positional embedding is added to the *query and key inputs* of every layer
  (after ``ln1``), never to the residual stream or the values. The residual stream then holds only
  token information, so Elhage et al.'s weight-based composition scores mean what the paper says
  (no relative-position dependence as with rotary). This is the scheme of Anthropic's attention-only
  models.
* ``"absolute"``: GPT-2 style, the positional embedding is added to the residual stream once.

Convention: row vectors. A head computes ``q = x @ W_Q[h] + b_Q[h]`` with ``x`` the ``[d_model]``
row of the (normalized) residual stream; ``nn.Linear`` stores the transpose, the adapter converts.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import nn

from circuitry.provenance import Frozen


class ZooConfig(Frozen):
    """Architecture of a zoo model.

    Parameters
    ----------
    n_layers, n_heads, d_model, d_head, d_vocab, n_ctx
        The usual sizes; ``n_heads * d_head`` need not equal ``d_model``.
    d_mlp
        Hidden size of the MLP; ``0`` makes the model attention-only.
    positional
        ``"shortformer"`` (positions added to query/key inputs only) or ``"absolute"``
        (added to the residual stream once).
    normalization
        ``"layernorm"`` (pre-LN, with ``ln_final``) or ``"none"``.
    activation
        The MLP's nonlinearity: ``"gelu"`` (exact, erf-based GELU; every trained zoo model) or ``"relu"``
        (the models compiled by tracr, :mod:`circuitry.zoo.tracr_models`).
    causal
        ``True``: each position attends to itself and earlier positions (a decoder; every trained zoo
        model). ``False``: every position attends to every position (bidirectional; tracr's compiled
        models, which read the whole input at once).
    d_vocab_out
        Width of the unembedding (the logits' last axis); ``None``: ``d_vocab``, the input vocabulary
        (every trained zoo model). A tracr model's input tokens and output values are different sets:
        a categorical program's logits are the values of its output space (one column per output
        value), a numerical program's logits one column, the program's output itself.

    The defaults of ``activation``, ``causal`` and ``d_vocab_out`` are the architecture of every
    trained zoo model, whose numbers stay bit-identical (``tests/zoo/test_tracr_models.py``).
    """

    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    n_ctx: int
    d_mlp: int = 0
    positional: Literal["shortformer", "absolute"] = "shortformer"
    normalization: Literal["layernorm", "none"] = "layernorm"
    activation: Literal["gelu", "relu"] = "gelu"
    causal: bool = True
    d_vocab_out: int | None = None

    @model_validator(mode="after")
    def _positive(self) -> ZooConfig:
        for name in ("n_layers", "n_heads", "d_model", "d_head", "d_vocab", "n_ctx"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.d_vocab_out is not None and self.d_vocab_out <= 0:
            raise ValueError(f"d_vocab_out must be positive (or None for d_vocab), got {self.d_vocab_out}")
        return self

    @property
    def attn_only(self) -> bool:
        return self.d_mlp == 0

    @property
    def n_outputs(self) -> int:
        """Width of the logits: ``d_vocab_out``, or ``d_vocab`` when it is ``None``."""
        return self.d_vocab if self.d_vocab_out is None else self.d_vocab_out


class HookPoint(nn.Module):
    """Identity module: a named place whose output nnsight can read or overwrite."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _norm(cfg: ZooConfig) -> nn.Module:
    return nn.LayerNorm(cfg.d_model) if cfg.normalization == "layernorm" else nn.Identity()


class Attention(nn.Module):
    def __init__(self, cfg: ZooConfig):
        super().__init__()
        self.cfg = cfg
        inner = cfg.n_heads * cfg.d_head
        self.q_proj = nn.Linear(cfg.d_model, inner)
        self.k_proj = nn.Linear(cfg.d_model, inner)
        self.v_proj = nn.Linear(cfg.d_model, inner)
        self.hook_pattern = HookPoint()
        self.o_proj = nn.Linear(inner, cfg.d_model)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        b, p, _ = x.shape
        h, dh = self.cfg.n_heads, self.cfg.d_head
        qk_in = x if pos is None else x + pos
        q = self.q_proj(qk_in).view(b, p, h, dh).transpose(1, 2)
        k = self.k_proj(qk_in).view(b, p, h, dh).transpose(1, 2)
        v = self.v_proj(x).view(b, p, h, dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
        if self.cfg.causal:
            mask = torch.ones(p, p, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = (pattern @ v).transpose(1, 2).reshape(b, p, h * dh)
        return self.o_proj(z)


class MLP(nn.Module):
    def __init__(self, cfg: ZooConfig):
        super().__init__()
        self.fc_in = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.fc_out = nn.Linear(cfg.d_mlp, cfg.d_model)
        self.act = F.relu if cfg.activation == "relu" else F.gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act(self.fc_in(x)))


class Block(nn.Module):
    def __init__(self, cfg: ZooConfig):
        super().__init__()
        self.ln1 = _norm(cfg)
        self.attn = Attention(cfg)
        self.ln2 = _norm(cfg) if not cfg.attn_only else None
        self.mlp = MLP(cfg) if not cfg.attn_only else None

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), pos)
        if self.mlp is not None:
            x = x + self.mlp(self.ln2(x))
        return x


class ZooTransformer(nn.Module):
    """A small decoder-only transformer (see the module docstring for the layout)."""

    def __init__(self, cfg: ZooConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = _norm(cfg)
        self.unembed = nn.Linear(cfg.d_model, cfg.n_outputs)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids [batch, pos]`` (int64) -> logits ``[batch, pos, d_vocab_out or d_vocab]``."""
        p = input_ids.shape[-1]
        if p > self.cfg.n_ctx:
            raise ValueError(f"sequence length {p} exceeds n_ctx={self.cfg.n_ctx}")
        x = self.embed(input_ids)
        pos = self.pos_embed(torch.arange(p, device=input_ids.device))
        if self.cfg.positional == "absolute":
            x = x + pos
            pos = None
        for block in self.blocks:
            x = block(x, pos)
        return self.unembed(self.ln_final(x))
