"""A plain-torch reference for edge patching on a zoo model: forward hooks on the module, no circuitry code
path. Used by tests/discovery/test_scores.py (EAP) and benchmarks/bench_discovery.py (exact)."""

from __future__ import annotations

import torch


def sender_outputs(module, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"embed": [n, p, d], "L0H0": [n, p, d], ...}``: the token embedding and each head's output."""
    blocks, dh = module.blocks, module.cfg.d_head
    z = {}
    hs = [b.attn.o_proj.register_forward_pre_hook(lambda m, a, l=l: z.__setitem__(l, a[0].detach()))
          for l, b in enumerate(blocks)]
    with torch.no_grad():
        module(ids)
    for h in hs:
        h.remove()
    out = {"embed": module.embed(ids).detach()}
    for l, b in enumerate(blocks):
        W = b.attn.o_proj.weight
        for h in range(module.cfg.n_heads):
            out[f"L{l}H{h}"] = z[l][..., h * dh:(h + 1) * dh] @ W[:, h * dh:(h + 1) * dh].T
    return out


def receiver_hooks(module, dst: str, kind: str, shift) -> list:
    """Hooks making receiver ``dst`` (``"logits"`` or a head ``"L1H5"`` with ``kind`` q/k/v) read
    ``x + shift`` instead of the residual stream ``x``; remove them when done."""
    if dst == "logits":
        return [module.ln_final.register_forward_pre_hook(lambda m, a: (a[0] + shift,))]
    l, h = int(dst[1]), int(dst[3])
    dh, blk, x_in = module.cfg.d_head, module.blocks[l], {}
    pos = module.pos_embed(torch.arange(module.cfg.n_ctx))

    def replace(m, a, o):
        y = blk.ln1(x_in["x"] + shift)
        y = y + pos[:y.shape[1]] if kind in "qk" else y  # shortformer: positions enter queries and keys only
        new = torch.nn.functional.linear(y, m.weight, m.bias)
        o = o.clone()
        o[..., h * dh:(h + 1) * dh] = new[..., h * dh:(h + 1) * dh]
        return o

    return [blk.register_forward_pre_hook(lambda m, a: x_in.__setitem__("x", a[0])),
            getattr(blk.attn, f"{kind}_proj").register_forward_hook(replace)]
