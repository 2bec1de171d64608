"""``circuitry discover``: automated circuit search with one or more methods, scored by faithfulness
(see :mod:`circuitry.discovery.report` for the files it writes)."""

from __future__ import annotations

import argparse

from circuitry.cli_common import METRICS, add_model_args

_METHODS = ("exact", "eap", "eap-ig", "acdc")  # circuitry.discovery.METHODS, without importing torch


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "discover", help="automated circuit search (exact edge patching, EAP, EAP-IG, ACDC) with faithfulness",
        description="Score every edge (sender output -> Q/K/V of later heads, MLPs, logits) with each method, mark "
                    "the kept circuit, and measure faithfulness as MIB does, with bootstrap bands and tests against "
                    "random edge rankings (whole curve, and per size with Holm), and the ranking's split-half "
                    "stability. Writes discovery.json, faithfulness.png and per method the graph in every export format and the EAP-IG/MIB JSON.")
    add_model_args(p)
    p.add_argument("--method", default="eap-ig",
                   help=f"one or more of {', '.join(_METHODS)}, comma-separated (default eap-ig)")
    p.add_argument("--metric", default=None, choices=METRICS,
                   help="metric of the scores and curves (default: the task's; ACDC then uses kl)")
    p.add_argument("--steps", type=int, default=5, help="EAP-IG interpolation steps (default 5)")
    p.add_argument("--tau", type=float, default=0.02, help="ACDC threshold in metric units (default 0.02)")
    p.add_argument("--threshold", type=float, default=0.05,
                   help="practical significance of the kept circuit of exact/EAP/EAP-IG: an edge's share of the gap, "
                        "|score| / |clean - corrupted|, is at least THRESHOLD (default 0.05; analyze's --min-share)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="statistical significance of the kept circuit of exact/EAP/EAP-IG: a BH-adjusted p <= alpha of "
                        "Hall's skewness-corrected t-test over prompts, the test analyze uses for paths (default 0.01)")
    p.add_argument("--n-random", type=int, default=199,
                   help="random edge rankings for the faithfulness tests (default 199: the per-size floor after Holm, "
                        "at most 9/200, is reachable at --faithfulness-alpha 0.05)")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples for the bands (default 1000)")
    p.add_argument("--faithfulness-alpha", type=float, default=0.05,
                   help="level of the faithfulness verdicts: whole curve, and per size after Holm (default 0.05)")
    p.add_argument("--stability-splits", "--stability-resamples", dest="stability_splits", type=int, default=100,
                   help="random splits of the prompts into two halves for the ranking stability of exact/EAP/EAP-IG "
                        "(default 100)")
    p.add_argument("--acdc-splits", "--acdc-resamples", dest="acdc_splits", type=int, default=2,
                   help="random half splits for ACDC's stability (default 2; 0 skips; each split reruns ACDC twice on "
                        "half the prompts; fewer than 20 splits report the values without an interval)")
    p.add_argument("--replicate", action="store_true",
                   help="also rank on one random half of the prompts and measure faithfulness on the other half")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from circuitry.discovery.report import parse_methods, run_discovery
    from circuitry.io import check_out_dir

    methods = parse_methods(args.method)
    out = Path(args.out)
    model, data = load(args)
    check_out_dir(out)
    rep = run_discovery(model, data, out, methods=methods, metric=args.metric, steps=args.steps, tau=args.tau,
                        threshold=args.threshold, alpha=args.alpha, n_random=args.n_random, n_resamples=args.n_resamples,
                        faithfulness_alpha=args.faithfulness_alpha, stability_splits=args.stability_splits,
                        acdc_splits=args.acdc_splits, replicate=args.replicate, seed=args.seed, progress=not args.quiet)
    print(f"circuit search on {model.model_id}: " + rep.summary())
    if not rep.gap.resolved:
        print(f"wrote {out / 'discovery.json'} (the gap only); exit 1")
        return 1
    print(f"wrote {out / 'discovery.json'}, {out / 'faithfulness.png'} and per method graph.*, circuit.*, "
          "scores_mib.json")
    return 0


def load(args: argparse.Namespace):
    from circuitry.cli_common import load_from_args

    return load_from_args(args, metric=args.metric)
