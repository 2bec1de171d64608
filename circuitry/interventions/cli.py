"""``circuitry patch``: an activation-patching sweep written to ``DIR/patching.json`` and a heatmap."""

from __future__ import annotations

import argparse

from circuitry.cli_common import add_model_args, load_from_args

_SITES = ("resid_pre", "attn_in", "q", "k", "v", "pattern", "z", "head_out", "attn_out", "mlp_out", "resid_post")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("patch", help="activation patching sweep (noising or denoising)",
                              description="Patch one site at every layer (and head, and position) between "
                                          "clean and corrupted prompts; writes patching.json and a heatmap.")
    add_model_args(p)
    p.add_argument("--site", default="head_out", choices=_SITES, help="site to patch (default head_out)")
    p.add_argument("--direction", default="noising", choices=("noising", "denoising"),
                   help="noising: clean run, corrupted activation in (necessity); denoising: the reverse")
    p.add_argument("--metric", default="logit_diff", choices=("logit_diff", "answer_prob", "loss", "kl"))
    p.add_argument("--per-position", action="store_true", help="patch each position separately")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from circuitry.interventions import activation_patch
    from circuitry.io import atomic_write_json

    model, data = load_from_args(args)
    res = activation_patch(model, data, site=args.site, direction=args.direction, metric=args.metric,
                           per_position=args.per_position, progress=not args.quiet, seed=args.seed)
    out = Path(args.out)
    atomic_write_json(out / "patching.json", res)
    fig = res.heatmap(out / "figures" / f"patching_{args.direction}_{args.site}.png")
    eff = res.effect.numpy()
    print(f"{args.direction} {args.site} on {model.model_id}, {len(data)} prompts, metric {res.metric}: "
          f"clean {res.clean_mean:.3f}, corrupted {res.corrupted_mean:.3f}")
    if res.effect.axes == ("layer", "head"):
        order = sorted(((float(eff[l, h]), l, h) for l in range(eff.shape[0]) for h in range(eff.shape[1])))
        key = (lambda x: x[0]) if args.direction == "denoising" else (lambda x: -x[0])
        top = sorted(order, key=key, reverse=True)[:5]
        kv = args.site in ("k", "v") and model.info.n_kv_heads < model.info.n_heads  # GQA: key/value heads
        print(f"most affecting {'key/value heads' if kv else 'heads'} (normalized effect: 1 = like the clean run, "
              "0 = like the corrupted run):", ", ".join(f"L{l}{'KV' if kv else 'H'}{h} {v:.2f}" for v, l, h in top))
    print(f"wrote {out / 'patching.json'} and {fig}")
    return 0
