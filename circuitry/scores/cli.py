"""``circuitry scores``: every head score, composition score and the ICL score of one model.

Writes ``OUT/scores.json`` (a :class:`~circuitry.scores.results.ScoreReport`), one heatmap per
score (``OUT/<detector>.png``, ``OUT/ov_positivity.png``, ``OUT/composition_<Q|K|V>.png``) and
``OUT/catalogue.md``: every head with the detectors for which it is significant (each head tested
against the detector's null, corrected over heads; :mod:`circuitry.scores.significance`).
Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse

from circuitry.limits import MAX_SAMPLES

_BUILTIN = ("previous_token", "induction", "duplicate_token", "copying", "retrieval", "attention_sink", "streaming",
            "ngram_induction", "successor", "copy_suppression", "negative_copying", "ablation_loss")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``scores`` subcommand and set ``args.handler``."""
    p = subparsers.add_parser(
        "scores", help="head scores (previous-token, induction, ...), composition scores, ICL score",
        description="Score every head of MODEL (Olsson et al. 2022 evaluators, copying, retrieval), the "
                    "Q/K/V composition of every head pair with its random baseline (Elhage et al. 2021) "
                    "and the ICL score; write OUT/scores.json and heatmaps.")
    p.add_argument("--model", required=True, help="'zoo:attn-only-2l', a local HF directory or a cached hub id")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--bos", default="model",
                   help="token prepended to every scored sequence: 'model' (the config's bos_token_id, default), "
                        "'none', or a token id")
    p.add_argument("--n-samples", type=int, default=10, help="sequences per score (default 10, as Olsson et al.)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sequences, bootstrap and baseline (default 0)")
    p.add_argument("--block-len", type=int, default=None,
                   help="random block length (default 25, shortened to fit the context)")
    p.add_argument("--repeats", type=int, default=4, help="copies of the block (default 4)")
    p.add_argument("--detectors", default=",".join(_BUILTIN),
                   help="comma-separated detector names (default: all built-in: " + ", ".join(_BUILTIN) + ")")
    p.add_argument("--alpha", type=float, default=0.05, help="level of the per-head tests after correction (0.05)")
    p.add_argument("--correction", choices=("holm", "bh", "bonferroni"), default="holm",
                   help="correction over heads: holm (family-wise, default), bh (false discovery rate), bonferroni")
    p.add_argument("--n-baseline", type=int, default=1000, help="random head pairs for the composition baseline")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Handler of ``circuitry scores``."""
    from pathlib import Path

    from circuitry.errors import bad_value
    from circuitry.models import load_model
    from circuitry.scores.heads import get_detector

    names = [n.strip() for n in args.detectors.split(",") if n.strip()]
    if not names:
        raise bad_value("--detectors", args.detectors, "comma-separated detector names")
    for n in names:
        get_detector(n)
    if args.n_samples < 2:
        raise bad_value("--n-samples", args.n_samples, "an integer >= 2 (for the bootstrap interval)")
    check_options(args)
    from circuitry.cli_common import staged_output

    model = load_model(args.model, bos=args.bos)
    check_memory(args, model)
    with staged_output(args) as out:
        report = _write(args, model, names, out)
    _summary(args, report, Path(args.out))
    return 0


#: time: each sequence is one forward pass per detector (12) plus the ICL score's; beyond 1,000 the bootstrap
#: interval is narrower than the detectors' differences between seeds, so more buys nothing
#: time: each random pair is one QK/OV product; 100,000 resolve a baseline quantile to ~0.3 %
MAX_BASELINE = 100_000
#: memory: the block is repeated inside the context; more copies than this repeat nothing new
MAX_REPEATS = 64


def check_options(args: argparse.Namespace) -> None:
    """Every option of ``scores`` in range, before the model loads (:class:`~circuitry.errors.LimitError`
    above a bound, which the constants above derive)."""
    from circuitry.cli_common import check_range
    from circuitry.errors import bad_value

    check_range("--n-samples", args.n_samples, 2, MAX_SAMPLES, "time: a forward pass per sequence and detector; "
                "the interval stops narrowing long before", "use --n-samples 10 (Olsson et al.) to 100")
    check_range("--n-baseline", args.n_baseline, 1, MAX_BASELINE, "time: one random head pair each")
    check_range("--repeats", args.repeats, 2, MAX_REPEATS, "the copies must fit in the context")
    if args.block_len is not None:
        check_range("--block-len", args.block_len, 1, 4096, "the block must fit in the context")
    if not 0 < args.alpha < 1:
        raise bad_value("--alpha", args.alpha, "a number in (0, 1)", "use --alpha 0.05")


def check_memory(args: argparse.Namespace, model) -> None:
    """The scored sequences' cached runs must fit in memory (:func:`circuitry.cli_common.check_prompt_memory`)."""
    from circuitry.cli_common import check_prompt_memory

    seq = min(model.info.n_ctx, (args.block_len or 25) * args.repeats + 1)  # the repeated blocks and the BOS
    check_prompt_memory(model, args.n_samples, seq, "--n-samples")


def _write(args: argparse.Namespace, model, names: list[str], out):
    from circuitry.io import atomic_write_json, atomic_write_text
    from circuitry.provenance import make_provenance
    from circuitry.scores.composition import all_composition_scores
    from circuitry.scores.copying import ov_eigenvalue_positivity
    from circuitry.scores.heads import score_heads
    from circuitry.scores.icl import icl_score
    from circuitry.scores.results import ScoreReport

    heads = score_heads(model, names, n_samples=args.n_samples, seed=args.seed, block_len=args.block_len,
                        repeats=args.repeats, alpha=args.alpha, correction=args.correction)
    heads["ov_positivity"] = ov_eigenvalue_positivity(model)
    comp = all_composition_scores(model, n_baseline=args.n_baseline, seed=args.seed) if model.info.n_layers > 1 else {}
    icl = icl_score(model, n_samples=max(args.n_samples, 2), seed=args.seed)
    report = ScoreReport(head_scores=heads, composition=comp, icl=icl,
                         provenance=make_provenance(model, seed=args.seed, command="scores"))
    atomic_write_json(out / "scores.json", report)
    atomic_write_text(out / "catalogue.md", catalogue_markdown(report))
    for name, s in heads.items():
        s.heatmap(out / f"{name}.png")
    from circuitry.scores.results import composition_heatmaps

    composition_heatmaps(comp, out)
    return report


def _summary(args: argparse.Namespace, report, out) -> None:
    heads, comp, icl = report.head_scores, report.composition, report.icl
    for name, s in heads.items():
        print(f"{name:16s} top: " + ", ".join(f"{h}={v:.3f}" for h, v in s.top(3)))
    for kind, c in comp.items():
        src, dst, raw, sub = c.pairs(1)[0]
        print(f"{kind}-composition top: {src}->{dst} {raw:.3f} (baseline {c.baseline_mean:.3f} "
              f"+- {c.baseline_std:.3f})")
    print(f"ICL score: {icl.statistic:.3f} nats [{icl.ci_low:.3f}, {icl.ci_high:.3f}]")
    cat = report.catalogue()
    print(f"significant head types ({args.correction}, alpha {args.alpha}): "
          + ("; ".join(f"{h}: {', '.join(v)}" for h, v in cat.items()) or "none"))
    print(f"wrote {out / 'scores.json'} and {len(heads) + len(comp)} figures")


def catalogue_markdown(report) -> str:
    """Markdown: the significant heads of each detector, then every labelled head."""
    lines = [f"# Head catalogue: {report.provenance.model_id}", "",
             "| detector | significant heads (excess over null) | null | floor | correction |", "|---|---|---|---|---|"]
    for name, s in report.head_scores.items():
        sig = s.significance
        if sig is None:
            lines.append(f"| {name} | (no null: not labelled) | | | |")
            continue
        from circuitry.labels import parse_head

        ex = sig.excess.numpy()
        heads = ", ".join(f"{h} (+{ex[parse_head(h)]:.2f})" for h in sig.significant) or "none"
        lines.append(f"| {name} | {heads} | {sig.null_description[:60]} | {sig.min_effect} | {sig.method}, "
                     f"alpha {sig.alpha} |")
    lines += ["", "| head | labels |", "|---|---|"]
    lines += [f"| {h} | {', '.join(v)} |" for h, v in report.catalogue().items()]
    return "\n".join(lines) + "\n"
