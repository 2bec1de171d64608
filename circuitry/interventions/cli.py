"""``circuitry patch``: an activation-patching sweep written to ``DIR/patching.json``, ``patching.csv`` and a
heatmap. Every number it prints and draws is the share of the clean-corrupted gap a site carries."""

from __future__ import annotations

import argparse

from circuitry.cli_common import METRICS, add_model_args, load_from_args

_SITES = ("resid_pre", "attn_in", "q", "k", "v", "pattern", "z", "head_out", "attn_out", "mlp_in", "mlp_out",
          "resid_post")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("patch", help="activation patching sweep (noising or denoising)",
                              description="Patch one site at every layer (and head, and position) between "
                                          "clean and corrupted prompts; writes patching.json, patching.csv and a "
                                          "heatmap of the share of the metric gap each site carries.")
    add_model_args(p)
    p.add_argument("--site", default="head_out", choices=_SITES, help="site to patch (default head_out)")
    p.add_argument("--direction", default="noising", choices=("noising", "denoising"),
                   help="noising: clean run, corrupted activation in (necessity); denoising: the reverse")
    p.add_argument("--metric", default=None, choices=METRICS,
                   help="default: the task's (logit_diff for the built-in tasks and for files without one)")
    p.add_argument("--per-position", action="store_true", help="patch each position separately")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    import csv
    import io
    from pathlib import Path

    import numpy as np

    from circuitry.interventions import activation_patch
    from circuitry.io import atomic_write_json, atomic_write_text
    from circuitry.metrics import share_label
    from circuitry.stats.gap import gap_summary

    from circuitry.cli_common import staged_output

    out = Path(args.out)
    model, data = load_from_args(args, metric=args.metric)
    metric = args.metric or data.metric or "logit_diff"
    with staged_output(args) as stage:
        res = activation_patch(model, data, site=args.site, direction=args.direction, metric=metric,
                               per_position=args.per_position, progress=not args.quiet, seed=args.seed)
        gap = gap_summary(res.clean, res.corrupted)
        atomic_write_json(stage / "patching.json", res)
        rows = res.to_records()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(stage / "patching.csv", buf.getvalue())
        fig = out / Path(res.heatmap(stage / "figures" / f"patching_{args.direction}_{args.site}.png")).relative_to(stage)
    print(f"{args.direction} {args.site} on {model.model_id}, task {data.task} ({len(data)} prompt pairs), metric "
          f"{res.metric}: clean {res.clean_mean:.3f}, corrupted {res.corrupted_mean:.3f}, gap {gap.mean:.3f} "
          f"(95% CI [{gap.ci_low:.3f}, {gap.ci_high:.3f}])")
    if len(data) < 16:
        print(f"warning: {len(data)} prompt pairs are few: intervals over prompts under-cover and p-values cannot get "
              "small; use 32 or more")
    if not gap.resolved:
        print("warning: the clean-corrupted gap is not resolved (its 95% CI contains 0), so every share below is a "
              "ratio over noise; the model may not perform this task. exit code 1")
    if res.effect.axes[:2] == ("layer", "head") and len(res.effect.axes) == 2:
        share = res.share.numpy()
        kv = args.site in ("k", "v") and model.info.n_kv_heads < model.info.n_heads  # GQA: key/value heads
        order = sorted(((float(share[l, h]), l, h) for l in range(share.shape[0]) for h in range(share.shape[1])
                        if np.isfinite(share[l, h])), reverse=True)[:5]
        print(f"largest {share_label(res.metric, args.direction)}:\n  " + ", ".join(
            f"L{l}{'G' if kv else 'H'}{h} {v:.2f}" for v, l, h in order))
    print(f"wrote {out / 'patching.json'}, {out / 'patching.csv'} and {fig}")
    return 0 if gap.resolved else 1
