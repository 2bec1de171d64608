"""Evaluate one claim of each type on a loaded model: run the intervention, the statistical test, and turn
the result into a :class:`~circuitry.claims.verdicts.ClaimResult`.

Definitions (stated in every result's ``test`` and in ``docs/claims-reference.md``):

* **damage** of ablating a head set on a metric = ``sign * mean over prompts of (metric(ablated) -
  metric(full))`` with ``sign = +1`` for ``loss`` and ``icl_score`` (higher is worse) and ``-1`` for
  ``logit_diff`` and ``answer_prob``.
* **share** of a path = ``1 - normalized effect`` of noising it (``(clean - patched) / (clean -
  corrupted)`` of the mean metric): the part of the clean-vs-corrupted difference that the path carries,
  tested only once the gap itself is resolved (:func:`circuitry.stats.share_test`).

Randomness: a claim's ``seed`` is split with ``numpy.random.SeedSequence.spawn`` into independent streams
for the prompts, the ablation (resample), the random head draws and the bootstrap, so a claim file with
seed 0 never reuses the tokens that ``circuitry scores --seed 0`` selected heads on.
* **faithfulness loss** of a head set S = mean over prompts of ``|metric(only S, every other head
  ablated) - metric(full model)|``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch

from circuitry.claims.schema import AblationEffect, AblationTable, AblationVsRandom, CircuitClaim, ClaimFile, PathShare
from circuitry.claims.verdicts import ClaimResult, Evidence, TableRow
from circuitry.labels import all_heads
from circuitry.metrics import Targets, at_positions, get_metric
from circuitry.models import ModelAdapter
from circuitry.provenance import make_provenance, sha256_json
from circuitry.stats import (MIN_PROMPTS, Verdict, bootstrap_ci, mean_test, random_head_test, share_test,
                             spawn_seeds, verdict)

STREAMS = ("prompts", "ablation", "draws", "resampling")
"""The independent random streams spawned from a claim's seed, in this order."""

SIGN = {"loss": 1.0, "icl_score": 1.0, "logit_diff": -1.0, "answer_prob": -1.0}
OTHER_HEADS_REASON = (
    "the other-heads rank (exclude_candidates: true) is descriptive, not a calibrated test: the candidate is "
    "outside the population it is ranked in, and 12-19% of random head sets rank at 0.05 or below. Fix: for a "
    "verdict drop exclude_candidates (pool null), or use match: layer or given: [...] (conditional null)")
"""Why a claim ranked among the other heads only is "inconclusive" whatever its rank."""
RANK_NAME = "rank among random sets of the other heads (descriptive, not a p-value)"

DAMAGE_NAME = {"loss": "damage: rise in loss (nats)", "icl_score": "damage: rise in ICL score (nats)",
               "logit_diff": "damage: fall in logit difference", "answer_prob": "damage: fall in answer probability"}


def icl_metric(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    """The ICL score per prompt as a metric: loss at the late target minus loss at the early one ``[n]``.

    ``t.positions`` is ``[n, 2]`` = (early - 1, late - 1) and ``t.answers`` the tokens at early and late,
    so the value equals :func:`circuitry.scores.icl_score`'s per-sample score on the same tokens."""
    lp = at_positions(logits, t.positions).float().log_softmax(-1)
    nll = -lp.gather(-1, t.answers[..., None].to(lp.device))[..., 0]
    return nll[:, 1] - nll[:, 0]


@dataclass
class Setup:
    """Prompts, targets and metric of one (metric, n_prompts, seed) combination."""

    ids: torch.Tensor
    targets: Targets
    metric: str | Callable
    metric_name: str
    dataset_sha256: str
    base: torch.Tensor  # metric of the full model per prompt
    n: int  # prompts really used
    mask: torch.Tensor | None = None  # real positions of right-padded prompts of different lengths


@dataclass
class Context:
    """A loaded model and the claim file, with caches of prompt sets."""

    model: ModelAdapter
    claim_file: ClaimFile
    task: str
    #: who evaluates the random head sets of random-head claims (:mod:`circuitry.executors`)
    executor: str = "serial"
    workers: int | None = None
    _data: dict[tuple[int, int], Any] = field(default_factory=dict)
    _setups: dict[tuple[str, int, int], Setup] = field(default_factory=dict)

    @property
    def task_is_file(self) -> bool:
        from circuitry.prompts import TASK_SPECS

        return self.task not in TASK_SPECS

    def settings(self, claim) -> tuple[int, int, float]:
        cf = self.claim_file
        return (claim.n_prompts or cf.n_prompts, cf.seed if claim.seed is None else claim.seed,
                claim.alpha or cf.alpha)

    def streams(self, seed: int) -> dict[str, int]:
        """Independent seeds of :data:`STREAMS` derived from ``seed``."""
        return dict(zip(STREAMS, spawn_seeds(seed, len(STREAMS))))

    def dataset(self, n_prompts: int, seed: int):
        """The claim's prompts: ``n_prompts`` from the built-in task (prompt stream of ``seed``), or every
        pair of a ``.jsonl`` task file."""
        from circuitry.prompts import make_task

        key = (n_prompts, seed)
        if key not in self._data:
            if self.task_is_file:
                self._data[key] = make_task(self.task, self.model)
            else:
                self._data[key] = make_task(self.task, self.model, n_prompts=n_prompts,
                                            seed=self.streams(seed)["prompts"], block_len=self.claim_file.block_len)
        return self._data[key]

    def n_used(self, n_prompts: int, seed: int) -> int:
        return len(self.dataset(n_prompts, seed))

    def setup(self, metric: str, n_prompts: int, seed: int) -> Setup:
        key = (metric, n_prompts, seed)
        if key in self._setups:
            return self._setups[key]
        dev = self.model.device
        data = self.dataset(n_prompts, seed)
        ids = data.clean_ids(dev)
        if metric == "icl_score":
            targets, fn = icl_targets(ids), icl_metric
        else:
            targets, fn = Targets.of(data, device=dev), metric
        with torch.no_grad():
            base = get_metric(fn)(self.model.run(ids.to(dev)).logits, targets).float().cpu()
        mask = data.mask(dev) if data.padded else None
        self._setups[key] = Setup(ids, targets, fn, metric, data.sha256(), base, len(data), mask)
        return self._setups[key]


def icl_targets(ids: torch.Tensor) -> Targets:
    """ICL-score targets on the task's own prompts: the tokens at the paper's token 50 and 500 of 512,
    scaled to the prompt length (:func:`circuitry.scores.icl.default_positions`), predicted from the
    position before each."""
    from circuitry.scores.icl import default_positions

    early, late = default_positions(ids.shape[1])
    pos = torch.tensor([[early - 1, late - 1]], device=ids.device).repeat(ids.shape[0], 1)
    answers = ids[:, [early, late]]
    return Targets(pos, answers, answers)


def warnings_for(n: int, ctx: Context, claim) -> list[str]:
    """Warnings every claim carries: few prompts; an ``n_prompts`` a task file overrides."""
    out = []
    if n < MIN_PROMPTS:
        out.append(f"{n} prompts are fewer than {MIN_PROMPTS}: intervals over prompts are not verified to cover "
                   "and every effect is a mean over few prompts. Fix: n_prompts >= 16")
    if ctx.task_is_file and (claim.n_prompts is not None or "n_prompts" in ctx.claim_file.model_fields_set):
        out.append(f"n_prompts is ignored: the task file {ctx.task} sets its own {n} pairs, and {n} were used")
    return out


def _ablate(ctx: Context, s: Setup, head_sets: list[list[str]], ablation: str, seed: int) -> torch.Tensor:
    from circuitry.interventions import ablate_heads

    return ablate_heads(ctx.model, s.ids, head_sets, s.targets, method=ablation, metric=s.metric,
                        seed=ctx.streams(seed)["ablation"], mask=s.mask)


def _ci(values, ctx: Context, seed: int, conf: float):
    """Interval of a per-prompt mean, the method picked by n (t / studentized bootstrap)."""
    return bootstrap_ci(values, confidence_level=conf, method="auto", n_resamples=ctx.claim_file.n_resamples,
                        rng=ctx.streams(seed)["resampling"])


def _random_heads(ctx: Context, claim, metric: str, n_prompts: int, seed: int, draws: int, conf: float):
    """Random-head test of ``claim.heads`` on one metric under the claim's null, its evidence and the table's
    rows. Under the other-heads rank (``exclude_candidates``) the rank is reported as its own descriptive
    evidence row and never as a p-value (:func:`judge`)."""
    from circuitry.interventions import head_set_effect_fn

    s = ctx.setup(metric, n_prompts, seed)
    info = ctx.model.info
    fn = head_set_effect_fn(ctx.model, s.ids, s.targets, method=claim.ablation, metric=s.metric,
                            seed=ctx.streams(seed)["ablation"], sign=SIGN[metric], mask=s.mask)
    test = random_head_test(fn, claim.heads, all_heads(info.n_layers, info.n_heads), n_draws=draws,
                            match=claim.match, alternative="greater" if claim.direction == "more" else "less",
                            exclude_candidates=claim.exclude_candidates, given=claim.given,
                            rng=ctx.streams(seed)["draws"], executor=ctx.executor, max_workers=ctx.workers)
    ablated = _ablate(ctx, s, [list(test.candidate)], claim.ablation, seed)[0]
    damage = _ci((SIGN[metric] * (ablated - s.base)).numpy(), ctx, seed, conf)
    p = test.pvalue if test.calibrated else None
    null = f"{test.null}: {test.null_hypothesis}"
    ev = [Evidence(metric=metric, effect=test.statistic, effect_name=DAMAGE_NAME[metric],
                   ci_low=damage.confidence_interval.low, ci_high=damage.confidence_interval.high,
                   confidence_level=conf, method=damage.method, null_mean=test.null_mean, null_std=test.null_std,
                   n_null=test.n_draws, exact=test.exact, pvalue=p,
                   min_attainable_pvalue=test.min_attainable_pvalue if test.calibrated else None, null=null)]
    if not test.calibrated:
        ev.append(Evidence(metric=metric, effect=test.pvalue, effect_name=RANK_NAME, n_null=test.n_draws, null=null))
    full, abl = _ci(s.base.numpy(), ctx, seed, conf), _ci(ablated.numpy(), ctx, seed, conf)
    rows = [
        TableRow(metric=metric, condition="full model", mean=full.statistic, ci_low=full.confidence_interval.low,
                 ci_high=full.confidence_interval.high),
        TableRow(metric=metric, condition="candidate heads ablated", mean=abl.statistic,
                 ci_low=abl.confidence_interval.low, ci_high=abl.confidence_interval.high, pvalue=p),
        TableRow(metric=metric, condition="random heads ablated",
                 mean=float(s.base.mean()) + SIGN[metric] * test.null_mean, spread=test.null_std),
    ]
    return test, ev, rows, s.dataset_sha256


def _result(ctx: Context, claim, *, v: Verdict, evidence, test: str, n_prompts: int, draws: int | None,
            seed: int, ds: str, raw: dict, table=(), warnings=()) -> ClaimResult:
    prov = make_provenance(ctx.model, dataset=ds, seed=seed, test=test, n_prompts=n_prompts, draws=draws,
                           claim_id=claim.id, streams=ctx.streams(seed))
    return ClaimResult(id=claim.id, type=claim.type, statement=claim.statement, verdict=v, evidence=list(evidence),
                       table=list(table), test=test, n_prompts=n_prompts, draws=draws, seed=seed, provenance=prov,
                       raw=raw, warnings=list(warnings) + warnings_for(n_prompts, ctx, claim))


def judge(test, alpha: float) -> Verdict:
    """:func:`circuitry.stats.verdict` of a random-head result, except that the other-heads rank
    (``calibrated`` False) is always "inconclusive" with :data:`OTHER_HEADS_REASON` and no p-value: it is
    descriptive, so no rank can support a claim."""
    if getattr(test, "calibrated", True):
        return verdict(test, alpha)
    return Verdict(outcome="inconclusive", reason=OTHER_HEADS_REASON, alpha=alpha, pvalue=None,
                   min_attainable_pvalue=None, null=f"{test.null}: {test.null_hypothesis}")


def _null_label(claim) -> str:
    given = f", given={claim.given}" if claim.given else ""
    return f"match={claim.match}{given}, exclude_candidates={claim.exclude_candidates}"


def ablation_vs_random(ctx: Context, claim: AblationVsRandom) -> ClaimResult:
    """Random-head baseline on one metric under the claim's null, judged by :func:`circuitry.stats.verdict`."""
    n, seed, alpha = ctx.settings(claim)
    draws = claim.draws or ctx.claim_file.draws
    test, ev, rows, ds = _random_heads(ctx, claim, claim.metric, n, seed, draws, ctx.claim_file.confidence_level)
    name = (f"{test.test}; {test.null} null; {claim.ablation} ablation, damage on {claim.metric}, "
            f"{_null_label(claim)}, alternative={test.alternative}")
    return _result(ctx, claim, v=judge(test, alpha), evidence=ev, table=rows, test=name,
                   n_prompts=ctx.n_used(n, seed), draws=test.n_draws, seed=seed, ds=ds,
                   raw={claim.metric: _trim(test.model_dump())})


def ablation_table(ctx: Context, claim: AblationTable) -> ClaimResult:
    """One random-head test per metric; the claim holds when it holds on every metric (intersection-union:
    the largest p-value decides, Berger 1982)."""
    n, seed, alpha = ctx.settings(claim)
    draws = claim.draws or ctx.claim_file.draws
    evidence, table, raw, dss, tests = [], [], {}, [], []
    for metric in dict.fromkeys(claim.metrics):
        test, ev, rows, ds = _random_heads(ctx, claim, metric, n, seed, draws, ctx.claim_file.confidence_level)
        evidence += ev
        table += rows
        raw[metric] = _trim(test.model_dump())
        dss.append(ds)
        tests.append(test)
    worst = max(tests, key=lambda t: (t.pvalue, t.min_attainable_pvalue))
    joint = SimpleNamespace(pvalue=worst.pvalue, min_attainable_pvalue=max(t.min_attainable_pvalue for t in tests),
                            n_draws=worst.n_draws, exact=worst.exact, n_distinct_sets=worst.n_distinct_sets,
                            null=worst.null, null_hypothesis=f"{worst.null_hypothesis}, on some metric",
                            calibrated=all(t.calibrated for t in tests))
    name = (f"ablation table: random-head baseline per metric, {worst.null} null ({claim.ablation} ablation, "
            f"{_null_label(claim)}); joint claim by intersection-union (largest p-value)")
    return _result(ctx, claim, v=judge(joint, alpha), evidence=evidence, table=table, test=name,
                   n_prompts=ctx.n_used(n, seed), draws=worst.n_draws, seed=seed, ds=sha256_json(dss), raw=raw)


def ablation_effect(ctx: Context, claim: AblationEffect) -> ClaimResult:
    """Mean damage of ablating ``claim.heads`` against ``min_effect``: one-sided test at ``alpha`` whose lower
    ``1 - alpha`` bound is reported; inconclusive below :data:`MIN_PROMPTS` prompts."""
    n, seed, alpha = ctx.settings(claim)
    s = ctx.setup(claim.metric, n, seed)
    damage = (SIGN[claim.metric] * (_ablate(ctx, s, [list(claim.heads)], claim.ablation, seed)[0] - s.base)).numpy()
    t = mean_test(damage, threshold=claim.min_effect, alternative="greater", confidence_level=1 - alpha,
                  n_resamples=ctx.claim_file.n_resamples, rng=ctx.streams(seed)["resampling"])
    v = verdict(t, alpha)
    if s.n < MIN_PROMPTS:
        v = v.model_copy(update={"outcome": "inconclusive", "reason": f"{s.n} prompts are fewer than {MIN_PROMPTS}, "
                                 "the smallest n at which circuitry's intervals are verified to cover "
                                 f"(the test alone gave: {v.reason}). Fix: n_prompts >= 16"})
    ci = _ci(damage, ctx, seed, ctx.claim_file.confidence_level)
    evidence = [
        Evidence(metric=claim.metric, effect=t.statistic, effect_name=DAMAGE_NAME[claim.metric],
                 ci_low=ci.confidence_interval.low, ci_high=ci.confidence_interval.high,
                 confidence_level=ci.confidence_level, method=ci.method),
        Evidence(metric=claim.metric, effect=t.bound, effect_name=f"lower one-sided {1 - alpha:.0%} bound of the damage",
                 pvalue=t.pvalue, min_attainable_pvalue=t.min_attainable_pvalue, null=t.null, method=t.method),
    ]
    name = f"{t.test}; {claim.ablation} ablation of {', '.join(claim.heads)}, damage on {claim.metric}"
    return _result(ctx, claim, v=v, evidence=evidence, test=name, n_prompts=s.n, draws=None, seed=seed,
                   ds=s.dataset_sha256, raw=t.model_dump())


def path_share(ctx: Context, claim: PathShare) -> ClaimResult:
    """Exact path patching of one path (noising), decided by :func:`circuitry.stats.share_test`: the gap is
    tested first, then share >= ``min_share`` one-sided at ``1 - alpha`` and the path's effect test (Hall's t)."""
    from circuitry.interventions import path_patch

    n, seed, alpha = ctx.settings(claim)
    data = ctx.dataset(n, seed)
    res = path_patch(ctx.model, data, senders=[claim.sender], receivers=[(claim.receiver, claim.kind)],
                     include_logits=False, direction="noising", metric=claim.metric, progress=False,
                     seed=ctx.streams(seed)["ablation"])
    st = share_test(res.per_prompt.numpy()[0], res.clean, res.corrupted, min_share=claim.min_share, alpha=alpha,
                    confidence_level=ctx.claim_file.confidence_level, n_resamples=ctx.claim_file.n_resamples,
                    rng=ctx.streams(seed)["resampling"])
    v = Verdict(outcome=st.outcome, reason=st.reason, alpha=alpha, pvalue=st.pvalue,
                min_attainable_pvalue=st.min_attainable_pvalue, null=st.null)
    g, iv = st.gap, st.interval
    evidence = [
        Evidence(metric=claim.metric, effect=g.mean, effect_name="clean - corrupted gap", ci_low=g.ci_low,
                 ci_high=g.ci_high, confidence_level=g.confidence_level, pvalue=g.pvalue,
                 min_attainable_pvalue=g.min_attainable_pvalue, null=g.null, method="t"),
        Evidence(metric=claim.metric, effect=st.share,
                 effect_name=f"share of the gap via {claim.kind}", ci_low=iv.low, ci_high=iv.high,
                 confidence_level=iv.confidence_level, method="fieller",
                 pvalue=None if st.at_least is None else st.at_least.pvalue,
                 min_attainable_pvalue=None if st.at_least is None else st.at_least.min_attainable_pvalue,
                 null=f"share <= {claim.min_share:g}"),
        Evidence(metric=claim.metric, effect=float((res.per_prompt.numpy()[0] - np.asarray(res.clean)).mean()),
                 effect_name="mean change when the path is patched", pvalue=st.effect_pvalue,
                 min_attainable_pvalue=st.effect_floor, null=st.effect_null),
    ]
    name = (f"exact path patching (Wang et al. 2023), noising; {st.test}")
    return _result(ctx, claim, v=v, evidence=evidence, test=name, n_prompts=len(data), draws=None, seed=seed,
                   ds=data.sha256(), raw={"path": list(res.paths[0]), "share_test": st.model_dump()})


def circuit(ctx: Context, claim: CircuitClaim) -> ClaimResult:
    """Shi et al.'s sufficiency, partial necessity or minimality test on a head-set circuit."""
    from circuitry.stats import minimality_test, partial_necessity_test, sufficiency_test

    n, seed, alpha = ctx.settings(claim)
    s = ctx.setup(claim.metric, n, seed)
    info = ctx.model.info
    universe = all_heads(info.n_layers, info.n_heads)

    def kept(sets) -> torch.Tensor:
        return _ablate(ctx, s, [[h for h in universe if h not in set(k)] for k in sets], claim.ablation, seed)

    def faithfulness(sets) -> np.ndarray:
        return (kept(sets) - s.base).abs().mean(1).numpy()

    def score(sets) -> np.ndarray:
        return kept(sets).mean(1).numpy()

    kw = dict(n_random=claim.n_random, q=claim.q, rng=ctx.streams(seed)["draws"])
    floor_note = ""
    if claim.type == "minimality":
        res = minimality_test(score, claim.heads, universe, alpha=alpha, **kw)
        evidence = [Evidence(metric=claim.metric, effect=e.delta, effect_name=f"abs. change when {e.element} is removed",
                             pvalue=e.adjusted_pvalue, min_attainable_pvalue=res.min_attainable_pvalue,
                             n_null=res.n_random, null_mean=float(np.mean(res.reference_deltas)),
                             null_std=float(np.std(res.reference_deltas)), null=res.null) for e in res.edges]
        floor_note = f"; per-head p-values {res.correction}-corrected, joint p = largest raw p"
    else:
        fn = sufficiency_test if claim.type == "sufficiency" else partial_necessity_test
        res = fn(faithfulness, claim.heads, universe, **kw)
        null = np.asarray(res.null_distribution)
        what = "circuit kept" if claim.type == "sufficiency" else "circuit ablated"
        evidence = [
            Evidence(metric=claim.metric, effect=res.statistic, effect_name=f"faithfulness loss, {what}",
                     null_mean=float(null.mean()), null_std=float(null.std()), n_null=res.n_random),
            Evidence(metric=claim.metric, effect=res.share_beaten, effect_name="share of random circuits beaten",
                     ci_low=res.share_ci.low, ci_high=res.share_ci.high, pvalue=res.pvalue,
                     min_attainable_pvalue=res.min_attainable_pvalue, n_null=res.n_random, null=res.null),
        ]
    name = (f"{res.test}; on heads, q={claim.q}, {claim.ablation} ablation of the other heads; "
            f"faithfulness loss = mean |metric(only kept heads) - metric(full model)| on {claim.metric}{floor_note}")
    return _result(ctx, claim, v=verdict(res, alpha), evidence=evidence, test=name, n_prompts=s.n,
                   draws=claim.n_random, seed=seed, ds=s.dataset_sha256, raw=res.model_dump())


def _trim(d: dict) -> dict:
    """Keep a random-head result's null distribution only up to 2,000 values (the quantiles summarize it)."""
    nd = d.get("null_distribution")
    if isinstance(nd, list) and len(nd) > 2000:
        d = {**d, "null_distribution": nd[:2000], "null_distribution_truncated": True}
    return d


EVALUATORS: dict[str, Callable[[Context, Any], ClaimResult]] = {
    "ablation_vs_random": ablation_vs_random, "ablation_table": ablation_table, "ablation_effect": ablation_effect,
    "path_share": path_share,
    "sufficiency": circuit, "partial_necessity": circuit, "minimality": circuit,
}
