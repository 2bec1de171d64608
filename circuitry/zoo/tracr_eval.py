"""How well circuitry's edge scores recover the tracr models' ground truth (ROC AUC).

``python -m circuitry.zoo.tracr_eval [NAME ...] [--methods exact eap eap-ig acdc] [--pairs 32]`` scores every
edge of each tracr model with :func:`circuitry.discovery.search.score_edges` (default counterfactual
patching; pairs from :func:`~circuitry.zoo.tracr_models.task_pairs`; metric ``logit_diff`` for categorical
programs, :func:`~circuitry.zoo.tracr_models.numerical_output` for numerical ones) and prints the ROC
AUC (:func:`~circuitry.discovery.search.roc_auc`) against the ``counterfactual`` and ``reads`` ground
truths (and ACDC's published circuit where there is one). ``acdc`` is circuitry's ACDC over the thresholds
:data:`ACDC_TAUS` (in units of the same metric), scored by the area under its ROC points
(:func:`~circuitry.discovery.search.acdc_tau_sweep`). docs/discovery.md quotes its output.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from circuitry.zoo.tracr_models import ACDC_CIRCUITS, TRACR_MODELS

#: ACDC thresholds of the sweep (metric units: logit difference, or the numerical output)
ACDC_TAUS = (1e-4, 1e-3, 1e-2, 0.1, 1.0)


def recovery(name: str, *, methods: Sequence[str] = ("exact", "eap", "eap-ig"), n_pairs: int = 32,
             seed: int = 0) -> dict[str, dict[str, float | int | None]]:
    """Per method: ROC AUC against each ground truth (``None`` when a truth has no edges or all of them),
    and the edge counts. Deterministic for a given ``seed``."""
    import numpy as np

    from circuitry.discovery.reference import tracr_problem
    from circuitry.discovery.search import acdc_tau_sweep, roc_auc, score_edges

    kinds = ("counterfactual", "reads") + (("acdc",) if name in ACDC_CIRCUITS else ())
    model, data, metric, es, truths = tracr_problem(name, n_pairs=n_pairs, seed=seed, kinds=kinds)
    out: dict[str, dict[str, float | int | None]] = {}
    for method in methods:
        row: dict[str, float | int | None] = {"edges": len(es)}
        if method == "acdc":
            for k, lab in truths.items():
                row[f"n_{k}"] = int(lab.sum())
                row[k] = acdc_tau_sweep(model, data, lab, taus=ACDC_TAUS, metric=metric, progress=False).auc
            out[method] = row
            continue
        res = score_edges(model, data, method=method, metric=metric, progress=False, seed=seed)
        score = np.asarray(res.score, dtype=float)
        for k, lab in truths.items():
            row[f"n_{k}"] = int(lab.sum())
            row[k] = None if lab.all() or not lab.any() else roc_auc(score, lab)
        out[method] = row
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m circuitry.zoo.tracr_eval", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"tracr models (default: all of {list(TRACR_MODELS)})")
    parser.add_argument("--methods", nargs="+", default=["exact", "eap", "eap-ig", "acdc"])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("| model | edges | truth (counterfactual / reads / ACDC) | method | AUC counterfactual | AUC reads | AUC ACDC |")
    print("|---|---|---|---|---|---|---|")
    fmt = lambda x: "-" if x is None else f"{x:.3f}"
    for name in args.names or TRACR_MODELS:
        for method, r in recovery(name, methods=args.methods, n_pairs=args.pairs, seed=args.seed).items():
            sizes = f"{r['n_counterfactual']} / {r['n_reads']} / {r.get('n_acdc', '-')}"
            print(f"| `{name}` | {r['edges']} | {sizes} | {method} | {fmt(r['counterfactual'])} | {fmt(r['reads'])} "
                  f"| {fmt(r.get('acdc'))} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
