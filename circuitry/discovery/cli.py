"""``circuitry discover``: automated circuit search with one or more methods, scored by faithfulness
(see :mod:`circuitry.discovery.report` for the files it writes)."""

from __future__ import annotations

import argparse

from circuitry.cli_common import METRICS, add_model_args
from circuitry.limits import MAX_RANDOM, MAX_RESAMPLES

_METHODS = ("exact", "eap", "eap-ig", "acdc", "greedy")  # circuitry.discovery.METHODS, without importing torch
#: circuitry.discovery.ablations.ABLATIONS, without importing torch
_ABLATIONS = ("counterfactual", "zero", "mean", "mean-positional", "resample")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "discover", help="automated circuit search (exact edge patching, EAP, EAP-IG, ACDC) with faithfulness",
        description="Score every edge (sender output -> Q/K/V of later heads, MLPs, logits) with each method, mark "
                    "the kept circuit, and measure faithfulness as MIB does, with bootstrap bands and tests against "
                    "random edge rankings (whole curve, and per size with Holm), and the ranking's split-half "
                    "stability. Writes discovery.json, report.html (interactive), faithfulness.png and per method the graph in every export format and the EAP-IG/MIB JSON.")
    add_model_args(p)
    p.add_argument("--method", default="eap-ig",
                   help=f"one or more of {', '.join(_METHODS)}, comma-separated (default eap-ig)")
    p.add_argument("--metric", default=None, choices=METRICS,
                   help="metric of the scores and curves (default: the task's; ACDC then uses kl)")
    p.add_argument("--steps", type=int, default=5, help="EAP-IG interpolation steps (default 5)")
    p.add_argument("--tau", type=float, default=0.02, help="ACDC threshold in metric units (default 0.02)")
    p.add_argument("--greedy-edges", type=int, default=None, metavar="K",
                   help="greedy: prune from EAP-IG's top K edges (default: every edge on a model of up to 4,096 edges; "
                        "above, the largest search of at most 120 patched circuits, K = 15: pruning every edge of GPT-2 "
                        "small would take 520,000)")
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
    p.add_argument("--ablation", default="counterfactual", choices=_ABLATIONS,
                   help="what a patched edge is fed, in every method and faithfulness curve: the sender's output "
                        "on the corrupted prompt (counterfactual, default; MIB's 'patching'), zero, its mean over the task's "
                        "prompts and positions (mean) or per position (mean-positional), or its output on another "
                        "prompt (resample, seeded by --seed)")
    p.add_argument("--evaluator", default="circuitry", choices=("circuitry", "mib"),
                   help="faithfulness sizes and pruning: circuitry's (round(p E) edges, at least 1, no pruning; "
                        "default) or MIB's (int(p E) edges, then edges off every input-to-logits path pruned)")
    p.add_argument("--top-k", dest="top_k", default=None, choices=("signed", "absolute"),
                   help="order of the top-k circuits: by signed importance (positive helps the task; MIB's default, "
                        "default with --evaluator mib) or by |score| (circuitry's default)")
    p.add_argument("--reference", default=None, metavar="FILE",
                   help="a reference circuit (circuitry GraphML/GEXF/node-link JSON, an MIB/EAP-IG graph JSON, or "
                        "zoo:NAME for a zoo model's shipped ground truth): reports every method's ROC AUC with a "
                        "bootstrap interval over prompts (--n-resamples), precision and recall against it")
    p.add_argument("--sensitivity", action="store_true",
                   help="also rescore with the first per-edge method (else eap-ig) under every ablation x "
                        "metric (logit_diff, answer_prob, kl) and report per edge whether its kept-circuit verdict "
                        "is robust or which settings flip it (sensitivity.json)")
    p.add_argument("--backup", nargs="?", const="auto", default=None, metavar="HEADS",
                   help="also co-ablate every other head with the circuit's heads and report the backups (heads "
                        "whose effect grows when those are gone) and super-additivity (backup.json): 'auto' (the "
                        "default when the flag is given: the heads of the first per-edge method's kept circuit) "
                        "or heads like L1H0,L1H2")
    p.add_argument("--replicate", action="store_true",
                   help="also rank on one random half of the prompts and measure faithfulness on the other half")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from circuitry.cli_common import staged_output
    from circuitry.discovery.report import parse_methods, run_discovery
    from circuitry.io import atomic_write_json

    methods = parse_methods(args.method)
    check_options(args, methods)
    out = Path(args.out)
    model, data = load(args)
    check_data(args, methods, data)
    if args.greedy_edges is not None:
        from circuitry.discovery.edges import edge_set
        from circuitry.errors import bad_value

        n_edges = len(edge_set(model))
        if args.greedy_edges > n_edges:
            raise bad_value("--greedy-edges", args.greedy_edges, f"at most the model's {n_edges} edges",
                            f"use --greedy-edges {min(15, n_edges)}, or leave it out")
    from circuitry.discovery.followups import parse_backup

    backup = parse_backup(args.backup, model)
    reference = None
    if args.reference:  # every edge checked against the model before any search
        from circuitry.discovery.edges import edge_set
        from circuitry.discovery.reference import load_reference

        reference = load_reference(args.reference, edge_set(model), ablation=args.ablation)
    # resumable: ACDC's checkpoint (acdc/checkpoint.json) stays in the staging folder when a run is interrupted
    with staged_output(args, resume=True) as stage:
        rep = run_discovery(model, data, stage, methods=methods, metric=args.metric, steps=args.steps, tau=args.tau,
                            threshold=args.threshold, alpha=args.alpha, n_random=args.n_random,
                            n_resamples=args.n_resamples, faithfulness_alpha=args.faithfulness_alpha,
                            stability_splits=args.stability_splits, acdc_splits=args.acdc_splits,
                            replicate=args.replicate, seed=args.seed, progress=not args.quiet,
                            ablation=args.ablation, evaluator=args.evaluator, top_k=args.top_k, reference=reference,
                            sensitivity=args.sensitivity, backup=backup, greedy_edges=args.greedy_edges)
        # the report names its files where they will be, in --out, not in the staging folder
        rep = rep.model_copy(update={"files": {k: str(out / Path(v).relative_to(stage)) for k, v in rep.files.items()}})
        atomic_write_json(stage / "discovery.json", rep)
    print(f"circuit search on {model.model_id}: " + rep.summary())
    if not rep.gap.resolved:
        print(f"wrote {out / 'discovery.json'} (the gap only); exit 1")
        return 1
    print(f"wrote {out / 'discovery.json'}, {out / 'report.html'}, {out / 'faithfulness.png'} and per method graph.*, circuit.*, "
          "scores_mib.json")
    return 0


def load(args: argparse.Namespace):
    from circuitry.cli_common import load_from_args

    return load_from_args(args, metric=args.metric)


#: time: each EAP-IG step is a forward and a backward pass over every prompt; the integral's error at 1,000 steps
#: is far below the prompts' sampling error (Hanna et al. use 5 to 100)
MAX_STEPS = 1000
#: time: a split-half split re-ranks every edge (cheap) ...
MAX_STABILITY_SPLITS = 10_000
#: ... but an ACDC split reruns the whole ACDC search twice
MAX_ACDC_SPLITS = 100


def check_options(args: argparse.Namespace, methods: list[str]) -> None:
    """Every option of ``discover`` in range before the model loads, so no search runs to fail at its end
    (:class:`~circuitry.errors.LimitError` above the bounds above, :class:`~circuitry.errors.InputError` below)."""
    import math

    from circuitry.cli_common import check_range
    from circuitry.errors import bad_value

    check_range("--steps", args.steps, 1, MAX_STEPS, "time: a forward and a backward pass over every prompt per step",
                "use --steps 5 (to 100)")
    if args.greedy_edges is not None and "greedy" not in methods:
        from circuitry.errors import bad_value

        raise bad_value("--greedy-edges", args.greedy_edges, "used with --method greedy", "add greedy to --method, or "
                        "leave --greedy-edges out")
    check_range("--greedy-edges", args.greedy_edges, 1, 1_000_000, "the largest edge set of any model")
    check_range("--n-random", args.n_random, 0, MAX_RANDOM, "time: a patched forward pass per random ranking and "
                "curve size; 10,000 resolve p-values to 1e-4", "use --n-random 199")
    check_range("--n-resamples", args.n_resamples, 100, MAX_RESAMPLES, "time: a bootstrap mean per resample and size",
                "use --n-resamples 1000")
    check_range("--stability-splits", args.stability_splits, 1, MAX_STABILITY_SPLITS, "time: a re-ranking of every "
                "edge per split", "use --stability-splits 100")
    check_range("--acdc-splits", args.acdc_splits, 0, MAX_ACDC_SPLITS, "time: each split reruns ACDC twice",
                "use --acdc-splits 2 (0 skips)")
    for name, value in (("--alpha", args.alpha), ("--faithfulness-alpha", args.faithfulness_alpha)):
        if not 0 < value < 1:
            raise bad_value(name, value, "a number in (0, 1)", f"use {name} 0.05")
    if not 0 <= args.threshold < 1:
        raise bad_value("--threshold", args.threshold, "a share of the gap in [0, 1)", "use --threshold 0.05")
    if not math.isfinite(args.tau) or args.tau < 0:
        raise bad_value("--tau", args.tau, "a finite number >= 0 (metric units)", "use --tau 0.02")
    ref = getattr(args, "reference", None)
    if ref and not ref.startswith("zoo:"):
        from pathlib import Path

        if not Path(ref).is_file():
            raise bad_value("--reference", ref, "an existing graph file (.graphml, .gexf, .json) or zoo:NAME",
                            "check the path")


def check_data(args: argparse.Namespace, methods: list[str], data) -> None:
    """What the stability and replication need of the prompts, checked before the search."""
    from circuitry.errors import bad_value

    needs = args.replicate or any(m != "acdc" for m in methods) or ("acdc" in methods and args.acdc_splits)
    if needs and len(data) < 4:
        raise bad_value("--n-prompts", len(data), "at least 4 prompt pairs (split-half stability and replication use "
                        "two per half)", "use --n-prompts 32")
