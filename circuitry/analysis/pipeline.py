"""``circuitry analyze``: head scores, composition, activation patching, path patching, the graph and
its statistics, in one resumable run.

Every stage's result is written atomically to ``DIR/stages/NAME.json`` together with a hash of the
configuration; a re-run with the same configuration reuses finished stages, so an interrupted run
loses nothing; the key hashes the configuration, the weights and the prompts.

The analysis is task-agnostic (docs/tutorials/bring-your-own-task.md): the clean-corrupted gap is tested
first, the circuit heads are the heads with significant patching shares (on the induction task: the
previous-token and induction heads read off the head scores, when the model has them), and they are
tested against random head sets on held-out prompts (:mod:`circuitry.analysis.tasking`). The
induction-specific findings are checked only on the induction task.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
from pydantic import BaseModel

from circuitry.analysis.results import AnalysisConfig, AnalysisReport, SiteEffect
from circuitry.io import atomic_write_text
from circuitry.labels import EMBED, all_heads, head_label
from circuitry.provenance import make_provenance, sha256_json
from circuitry.stats._common import procedure_seed
from circuitry.stats.decide import MIN_SHARE

T = TypeVar("T", bound=BaseModel)


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"[circuitry analyze] {msg}", flush=True)


def _stage(out: Path, name: str, cfg_hash: str, cls: type[T], fn: Callable[[], T], quiet: bool,
           timings: dict[str, float]) -> T:
    path = out / "stages" / f"{name}.json"
    if path.exists():
        rec = json.loads(path.read_text())
        if rec.get("config_sha256") == cfg_hash:
            _log(f"{name}: reusing finished stage {path}", quiet)
            timings[name] = 0.0
            return cls.model_validate(rec["result"])
    t = time.perf_counter()
    res = fn()
    timings[name] = round(time.perf_counter() - t, 2)
    # written unsorted, so a resumed run reads the result back in its original key order
    atomic_write_text(path, json.dumps({"config_sha256": cfg_hash, "result": json.loads(res.model_dump_json())}))
    _log(f"{name}: done in {timings[name]:.1f} s", quiet)
    return res


def share_effects(per_prompt: np.ndarray, clean, corrupted, labels: list[str], *, direction: str, level: str,
                  alpha: float, min_share: float) -> list[SiteEffect]:
    """Per-site share of the clean-corrupted gap, decided by :func:`circuitry.stats.decide.decide_sites` (the
    same test, interval, correction and practical-significance rule as ``discover``'s edges)."""
    from circuitry.stats.decide import decide_sites

    p = np.asarray(per_prompt, dtype=float)
    c, k = np.asarray(clean, dtype=float), np.asarray(corrupted, dtype=float)
    changes = c - p if direction == "noising" else p - k
    fam = decide_sites(changes, c - k, labels=labels, level=level, alpha=alpha, min_share=min_share)
    return [SiteEffect(site=d.site, share=d.share, ci_low=d.ci_low, ci_high=d.ci_high, pvalue=d.pvalue,
                       pvalue_adjusted=d.pvalue_adjusted, correction=fam.correction, pvalue_floor=fam.floor,
                       significant=d.significant, matters=d.matters, test=fam.test)
            for d in fam.sites]


def path_patching_heads(effects: list[SiteEffect], max_heads: int) -> tuple[list[str] | None, str]:
    """The heads to path-patch and the rule, in words: ``(None, ...)`` (every head) when the model has at most
    ``max_heads`` heads; otherwise the heads whose activation-patching effect is significant (adjusted p <=
    alpha), at most ``max_heads`` of them by ``|share|``, in layer order; when no head is, the ``max_heads``
    heads with the largest ``|share|``. Path patching every pair costs heads x later heads x 3 passes from
    the receiver's layer per prompt batch (docs/performance.md, P8): a circuit's few heads, not a fixed
    number, set what a model of GPT-2's size costs."""
    if len(effects) <= max_heads:
        return None, "every head"
    sig = [e for e in effects if e.significant]
    pool = sig or effects
    top = sorted(pool, key=lambda e: -abs(e.share))[:max_heads]
    rule = (f"the {len(top)} heads whose activation-patching effect is significant"
            + (f" (the {max_heads} with the largest share of {len(sig)})" if len(sig) > max_heads else "")
            if sig else f"no head's activation-patching effect is significant: the {max_heads} heads with the "
            "largest share")
    return [e.site for e in effects if e in top], rule


#: version of the stage files' contents: a stage written by an older format (2: k/v paths of a grouped-query
#: model measured once per key/value group; one decision rule for every site; 3: path patching of a model with
#: more than --max-path-heads heads among its significant heads) is recomputed, not reused
STAGE_FORMAT = 3

#: configuration that says how to run, not what: left out of the stage key (a run interrupted under one
#: executor resumes under another)
RUN_ONLY = {"executor", "workers"}

MAX_CIRCUIT_HEADS = 8


def select_circuit_heads(effects: list[SiteEffect], *, alpha: float, min_share: float = MIN_SHARE,
                         max_heads: int = MAX_CIRCUIT_HEADS) -> list[str]:
    """Heads whose patching share is at least ``min_share`` with adjusted p <= ``alpha``, largest first (at
    most ``max_heads``). Empty when no head qualifies: circuitry never makes a circuit out of noise."""
    ranked = sorted(effects, key=lambda e: -e.share)
    return [e.site for e in ranked if e.share >= min_share and e.pvalue_adjusted <= alpha][:max_heads]


def run_analysis(model, cfg: AnalysisConfig, out: str | Path, *, quiet: bool = False) -> AnalysisReport:
    """Run every stage on a loaded model and write ``report.json``, ``report.md``, the graph files and
    the figures to ``out``. See ``docs/tutorials/trace-the-induction-circuit.md`` and
    ``docs/tutorials/bring-your-own-task.md``.

    The task is checked and split into discovery and test prompts first (:func:`plan_task`); the
    clean-corrupted gap is tested after activation patching, and when it is not resolved the run stops
    there and says so (every share would be a ratio over noise)."""
    from circuitry.analysis.findings import build_edges, check_findings, circuit_from_scores
    from circuitry.analysis.report import write_outputs
    from circuitry.analysis.circuit_test import CircuitTests, run_circuit_tests
    from circuitry.analysis.tasking import plan_task
    from circuitry.interventions import activation_patch, path_patch
    from circuitry.interventions.results import PatchResult
    from circuitry.interventions.path_patching import PathPatchResult
    from circuitry.scores import all_composition_scores, icl_score, score_heads
    from circuitry.scores.results import ScoreReport
    from circuitry.stats.gap import gap_summary

    from circuitry.io import check_out_dir

    from circuitry.executors import check_executor

    check_executor(cfg.executor, cfg.workers)
    data, test, ctx = plan_task(model, cfg)  # every check of the task, before the output folder is touched
    out = check_out_dir(out)
    metric = ctx.metric
    # the prompts' hash is part of the key: an edited task file never reuses stages of the old one
    cfg_hash = sha256_json({"cfg": cfg.model_dump(exclude=RUN_ONLY), "weights": model.weights_sha256, "data": data.sha256(),
                            "test": test.sha256(), "stage_format": STAGE_FORMAT})
    timings: dict[str, float] = {}
    info = model.info
    _log(f"{model.model_id}: {info.n_layers} layers x {info.n_heads} heads, task {ctx.name} ({ctx.source}), "
         f"{len(data)} discovery prompt pairs of {data.length_words}, metric {metric}, seed {cfg.seed}", quiet)
    if len(data) < 16:
        _log(f"warning: {len(data)} prompts are few: the tests over prompts are calibrated from 10 (one-sided ones "
             "from 16) and corrections over many heads and paths lean on their tails; use 32 or more", quiet)

    def scores() -> ScoreReport:
        # Olsson et al.'s recipe (25 tokens x 4 repeats, BOS first), the block shortened to fit the context
        block = min(25, (info.n_ctx - 1) // 4)
        # each procedure its own stream from the run's seed (changing one count never moves another's numbers)
        hs = score_heads(model, ["previous_token", "induction", "duplicate_token"], block_len=block, repeats=4,
                         n_samples=cfg.n_score_samples, seed=procedure_seed(cfg.seed, "head-scores"),
                         n_resamples=cfg.n_resamples)
        comp = all_composition_scores(model, n_baseline=cfg.n_baseline,
                                      seed=procedure_seed(cfg.seed, "composition-baseline"))
        icl = icl_score(model, n_samples=cfg.n_prompts or 32, seed=procedure_seed(cfg.seed, "icl"),
                        n_resamples=cfg.n_resamples)
        return ScoreReport(head_scores=hs, composition=comp, icl=icl, provenance=make_provenance(model, seed=cfg.seed))

    sc = _stage(out, "scores", cfg_hash, ScoreReport, scores, quiet, timings)
    patch = _stage(out, "patching", cfg_hash, PatchResult, lambda: activation_patch(
        model, data, site="z", direction=cfg.direction, metric=metric, progress=not quiet, seed=cfg.seed),
        quiet, timings)
    gap = gap_summary(patch.clean, patch.corrupted)
    t = time.perf_counter()
    per_head = patch.per_prompt.numpy().reshape(info.n_layers * info.n_heads, -1)
    head_effects = share_effects(per_head, patch.clean, patch.corrupted, all_heads(info.n_layers, info.n_heads),
                                 direction=cfg.direction, level="head", alpha=cfg.alpha, min_share=cfg.min_share)
    timings["statistics"] = round(time.perf_counter() - t, 2)
    common = dict(config=cfg, provenance=make_provenance(model, dataset=data, seed=cfg.seed, task=cfg.task),
                  task=ctx, gap=gap, head_scores=sc.head_scores, composition=sc.composition, icl=sc.icl,
                  patching=patch, head_effects=head_effects, timings=timings, figures=[])
    if not gap.resolved:
        _log(f"the clean-corrupted gap of {metric} is not resolved (mean {gap.mean:.3g}, 95% CI "
             f"[{gap.ci_low:.3g}, {gap.ci_high:.3g}]): nothing to explain; stopping after activation patching", quiet)
        findings = check_findings(model, sc, ctx, gap, head_effects, [], None, [], "", alpha=cfg.alpha,
                                  min_share=cfg.min_share)
        return write_outputs(AnalysisReport(**common, findings=findings), model, out, quiet=quiet)

    path_heads, path_rule = path_patching_heads(head_effects, cfg.max_path_heads)
    if path_heads is not None:
        _log(f"path patching restricted to {path_rule} (of {len(head_effects)}; --max-path-heads "
             f"{cfg.max_path_heads})", quiet)
    senders = None if path_heads is None else [EMBED] + path_heads
    receivers = None if path_heads is None else [(h, k) for h in path_heads for k in ("q", "k", "v")]
    paths = _stage(out, "path_patching", cfg_hash, PathPatchResult, lambda: path_patch(
        model, data, senders=senders, receivers=receivers, direction=cfg.direction, metric=metric,
        progress=not quiet, seed=cfg.seed), quiet, timings)

    t = time.perf_counter()
    labels = [f"{s}->{r}:{k}" for s, r, k in paths.paths]
    path_effects = share_effects(paths.per_prompt.numpy(), paths.clean, paths.corrupted, labels,
                                 direction=cfg.direction, level="path", alpha=cfg.alpha, min_share=cfg.min_share)
    timings["statistics"] += round(time.perf_counter() - t, 2)

    induction = ctx.name == "induction" and ctx.source == "built-in"
    P, I = circuit_from_scores(sc, info.n_layers, info.n_heads)[:2] if induction else (None, [])
    if P is not None and I:
        circuit = [P] + I
        source = ("read off the head scores: the previous-token head and the induction heads (Olsson et al.'s "
                  "repeated random sequences)")
    else:
        circuit = select_circuit_heads(head_effects, alpha=cfg.alpha, min_share=cfg.min_share)
        source = (f"picked by activation patching: the heads carrying at least {cfg.min_share:.0%} of the gap "
                  f"with Holm-adjusted p <= {cfg.alpha} (at most {MAX_CIRCUIT_HEADS})")

    def circuit_test() -> CircuitTests:
        return run_circuit_tests(model, test, circuit, ctx, cfg)

    ctest = None
    if circuit:
        ctest = _stage(out, "circuit_test", cfg_hash + ",".join(circuit), CircuitTests, circuit_test, quiet, timings)
    edges = build_edges(paths, path_effects, sc.composition)
    findings = check_findings(model, sc, ctx, gap, head_effects, edges, ctest, circuit, source, alpha=cfg.alpha,
                              min_share=cfg.min_share)
    report = AnalysisReport(**common, path_patching=paths, path_effects=path_effects, edges=edges,
                            path_heads=path_rule, circuit_heads=circuit, circuit_source=source, circuit_test=ctest,
                            findings=findings)
    return write_outputs(report, model, out, quiet=quiet)


__all__ = ["run_analysis", "share_effects", "select_circuit_heads", "head_label"]
