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
                    "the kept circuit, and measure faithfulness as MIB does (bootstrap bands, random-edge baseline) "
                    "and the ranking's stability across prompt resamples. Writes discovery.json, "
                    "faithfulness.png and per method the graph in every export format and the EAP-IG/MIB JSON.")
    add_model_args(p)
    p.add_argument("--method", default="eap-ig",
                   help=f"one or more of {', '.join(_METHODS)}, comma-separated (default eap-ig)")
    p.add_argument("--metric", default=None, choices=METRICS,
                   help="metric of the scores and curves (default: the task's; ACDC then uses kl)")
    p.add_argument("--steps", type=int, default=5, help="EAP-IG interpolation steps (default 5)")
    p.add_argument("--tau", type=float, default=0.02, help="ACDC threshold in metric units (default 0.02)")
    p.add_argument("--threshold", type=float, default=0.05,
                   help="kept circuit of exact/EAP/EAP-IG: |score| >= THRESHOLD x |clean - corrupted| (default 0.05)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="the kept circuit of exact/EAP/EAP-IG needs a BH-adjusted per-edge p <= alpha (default 0.01)")
    p.add_argument("--n-random", type=int, default=20, help="random edge sets per size for the baseline (default 20)")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples for the bands (default 1000)")
    p.add_argument("--stability-resamples", type=int, default=200,
                   help="prompt resamples for the ranking stability of exact/EAP/EAP-IG (default 200)")
    p.add_argument("--acdc-resamples", type=int, default=3,
                   help="ACDC reruns on prompt resamples for its stability (default 3; 0 skips; each costs one run)")
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
                        stability_resamples=args.stability_resamples, acdc_resamples=args.acdc_resamples,
                        seed=args.seed, progress=not args.quiet)
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
