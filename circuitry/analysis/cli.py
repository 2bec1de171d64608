"""``circuitry analyze``: the main job."""

from __future__ import annotations

import argparse

from circuitry.cli_common import METRICS, add_executor_args, add_model_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "analyze", help="the full analysis: head scores, composition, patching, path patching, graph, statistics",
        description="Run head scores, composition scores, activation patching, path patching and their "
                    "statistics on MODEL and TASK; write report.md, report.html (interactive), report.json, graph.* and figures/ to --out. "
                    "Finished stages are reused when re-run with the same options and prompts. Exit 0: the "
                    "analysis completed; 1: it completed but the model shows no clean-corrupted gap on the "
                    "task (nothing to explain); 2: bad input.")
    add_model_args(p)
    p.add_argument("--metric", default=None, choices=METRICS,
                   help="default: the task's (logit_diff for the built-in tasks and for files that name none)")
    p.add_argument("--direction", default="noising", choices=("noising", "denoising"),
                   help="patching direction (default noising: which heads and paths are necessary)")
    p.add_argument("--draws", type=int, default=1000, help="random head sets for the circuit test (default 1000)")
    p.add_argument("--stop-after", type=int, default=20, metavar="H",
                   help="a circuit-test null stops drawing at its H-th random set at least as damaging as the "
                        "circuit (Besag & Clifford 1991; raised so that stopping never changes a verdict at "
                        "--alpha); 0: every draw (default 20)")
    p.add_argument("--alpha", type=float, default=0.01, help="significance level of the findings (default 0.01)")
    p.add_argument("--min-share", type=float, default=0.05,
                   help="practical significance: a head or path belongs to the circuit only when it carries at least "
                        "this share of the clean-corrupted gap, besides an adjusted p <= --alpha (default 0.05)")
    p.add_argument("--max-path-heads", type=int, default=32,
                   help="path-patch every head when the model has at most this many, else only the heads whose "
                        "activation-patching effect is significant, at most this many by share (none significant: "
                        "the largest shares) (default 32)")
    add_executor_args(p, "the circuit test's random head sets")
    p.add_argument("--out", default="circuitry-results", help="output folder (default circuitry-results)")
    p.add_argument("--reproduce", metavar="REPORT_JSON", default=None,
                   help="re-run the analysis of an earlier report.json (its model, task, seed and options) into "
                        "--out and say whether every number matches; exit 0 if so, 1 if not")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from circuitry.analysis import AnalysisConfig, run_analysis
    from circuitry.cli_common import load_model_from_args
    from circuitry.errors import bad_value

    from circuitry.cli_common import load_task_from_args, staged_output

    if args.reproduce:
        from circuitry.analysis.reproduce import check_fresh_out, load_report, reproduce

        load_report(args.reproduce)
        check_fresh_out(args.out)
        with staged_output(args) as stage:
            diffs = reproduce(args.reproduce, stage, device=args.device, quiet=args.quiet)
        if diffs:
            print(f"circuitry analyze: the numbers of {args.reproduce} do NOT reproduce; first differences:\n  "
                  + "\n  ".join(diffs))
            return 1
        print(f"circuitry analyze: every number of {args.reproduce} reproduced exactly (timings and run "
              f"details aside); the new run is in {args.out}")
        return 0
    from circuitry.limits import MAX_DRAWS

    if not 10 <= args.draws <= MAX_DRAWS:
        raise bad_value("--draws", args.draws, f"an integer in [10, {MAX_DRAWS}]", "use --draws 1000")
    if args.stop_after < 0:
        raise bad_value("--stop-after", args.stop_after, "a non-negative integer (0: every draw)", "use --stop-after 20")
    if not 0 < args.alpha < 1:
        raise bad_value("--alpha", args.alpha, "a number in (0, 1)", "use --alpha 0.01")
    if not 0 <= args.min_share < 1:
        raise bad_value("--min-share", args.min_share, "a share of the gap in [0, 1)", "use --min-share 0.05")
    if 1 / (args.draws + 1) > args.alpha:
        raise bad_value("--draws", args.draws, f"enough random sets that the smallest p-value, 1/(draws + 1), is at most "
                        f"--alpha {args.alpha}", f"use --draws {int(1 / args.alpha) * 10}")
    if args.max_path_heads < 1:
        raise bad_value("--max-path-heads", args.max_path_heads, "a positive integer", "use --max-path-heads 32")
    from circuitry.executors import check_executor

    if args.workers is not None and args.workers < 1:
        raise bad_value("--workers", args.workers, "a positive integer", "use --workers 2, or leave it out")
    check_executor(args.executor, args.workers)
    cfg = AnalysisConfig(model=args.model, task=args.task, n_prompts=args.n_prompts, seed=args.seed,
                         metric=args.metric, direction=args.direction, n_draws=args.draws,
                         stop_after=args.stop_after or None, alpha=args.alpha, min_share=args.min_share,
                         max_path_heads=args.max_path_heads, executor=args.executor, workers=args.workers)
    model = load_model_from_args(args)
    load_task_from_args(args, model, metric=args.metric)  # the task's checks and its memory, before any stage
    # finished stages live in the staging folder while the run goes on (an interrupted or killed run leaves them
    # there for the next run to resume from) and move into --out with the report
    with staged_output(args, resume=True, carry=("stages",)) as stage:
        report = run_analysis(model, cfg, stage, quiet=args.quiet)
    if not args.quiet:
        print(f"[circuitry analyze] moved the finished results into {args.out}")
    if not report.gap.resolved:
        print(f"circuitry analyze: the model shows no clean-corrupted gap on task {report.task.name!r} "
              f"(metric {report.task.metric}); the report says so. exit 1")
        return 1
    return 0
