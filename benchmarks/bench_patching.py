"""Side-by-side timings of per-head activation patching (one run, ratios reported).

    python benchmarks/bench_patching.py [--threads 1]

Compares, on the same model and prompts:
  stacked      circuitry.activation_patch (patches stacked along the batch, default row budget;
               each pass starts at its earliest patched layer from the cached residual stream)
  one-per-pass circuitry.activation_patch with max_rows = n_prompts (one patch per forward pass)
  stacked, no skip  as 'stacked' but recomputing the layers before the patch
  torch hooks  a plain-torch loop: one forward pass per head with a forward pre-hook
  TL           transformer_lens.patching.get_act_patch_attn_head_out_all_pos (if installed; GPT-2 only)
Numbers are medians of --repeats runs; ratios are relative to 'stacked'. Results of all paths agree
(the tests check it); this script only measures time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _hooks_loop(module, proj_of, n_layers, n_heads, d_head, base, src, metric):
    cache = {}
    hs = [proj_of(l).register_forward_pre_hook((lambda l: lambda m, a: cache.__setitem__(l, a[0].clone()))(l))
          for l in range(n_layers)]
    with torch.no_grad():
        module(src)
    for h in hs:
        h.remove()
    out = torch.empty(n_layers, n_heads)
    for l in range(n_layers):
        for h in range(n_heads):
            def fn(m, a, l=l, h=h):
                z = a[0].clone()
                z[..., h * d_head:(h + 1) * d_head] = cache[l][..., h * d_head:(h + 1) * d_head]
                return (z,)
            hd = proj_of(l).register_forward_pre_hook(fn)
            with torch.no_grad():
                lg = module(base)
            hd.remove()
            out[l, h] = metric(lg.logits if hasattr(lg, "logits") else lg).mean()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-prompts", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import GPT2Config, GPT2LMHeadModel

    from circuitry.interventions import activation_patch
    from circuitry.metrics import Targets, logit_diff
    from circuitry.models import load_model
    from circuitry.prompts import make_task

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=4, n_head=8, n_embd=256, vocab_size=1000, n_positions=128,
                                    bos_token_id=0, eos_token_id=0)).eval()
    setups = [("zoo:attn-only-2l", load_model("zoo:attn-only-2l")), ("gpt2 4L x 8H d256 (random)", load_model(gpt2))]
    print(f"threads={args.threads}, prompts={args.n_prompts}, median of {args.repeats}")
    for name, model in setups:
        data = make_task("induction", model, n_prompts=args.n_prompts, seed=0, block_len=16)
        pos, ans, foil = data.targets()
        t = Targets(pos, ans, foil)
        i = model.info
        row = {
            "stacked": _median_time(lambda: activation_patch(model, data, site="z", direction="denoising",
                                                             progress=False), args.repeats),
            "one-per-pass": _median_time(lambda: activation_patch(model, data, site="z", direction="denoising",
                                                                  progress=False, max_rows=len(data)), args.repeats),
            "stacked, no skip": _median_time(lambda: activation_patch(model, data, site="z", direction="denoising",
                                                                      progress=False, skip_layers=False), args.repeats),
        }
        module = model.module
        proj_of = (lambda l: module.blocks[l].attn.o_proj) if i.family == "zoo" else \
            (lambda l: module.transformer.h[l].attn.c_proj)
        row["torch hooks"] = _median_time(lambda: _hooks_loop(module, proj_of, i.n_layers, i.n_heads, i.d_head,
                                                              data.corrupted_ids(), data.clean_ids(),
                                                              lambda lg: logit_diff(lg, t)), args.repeats)
        base = row["stacked"]
        print(f"\n{name}: {i.n_layers * i.n_heads} heads")
        for k, v in row.items():
            print(f"  {k:14s} {v * 1000:8.1f} ms   x{v / base:5.2f}")


if __name__ == "__main__":
    main()
