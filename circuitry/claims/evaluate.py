"""Evaluate one claim of each type on a loaded model: run the intervention, the statistical test, and turn
the result into a :class:`~circuitry.claims.verdicts.ClaimResult`.

Definitions (stated in every result's ``test`` and in ``docs/claims-reference.md``):

* **damage** of ablating a head set on a metric = ``sign * mean over prompts of (metric(ablated) -
  metric(full))`` with ``sign = +1`` for ``loss`` and ``icl_score`` (higher is worse) and ``-1`` for
  ``logit_diff`` and ``answer_prob``.
* **share** of a path = ``1 - normalized effect`` of noising it (``(clean - patched) / (clean -
  corrupted)`` of the mean metric): the part of the clean-vs-corrupted difference that the path carries.
* **faithfulness loss** of a head set S = mean over prompts of ``|metric(only S, every other head
  ablated) - metric(full model)|``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch

from circuitry.claims.schema import AblationTable, AblationVsRandom, CircuitClaim, ClaimFile, PathShare
from circuitry.claims.verdicts import ClaimResult, Evidence, TableRow
from circuitry.labels import all_heads
from circuitry.metrics import Targets, at_positions, get_metric
from circuitry.models import ModelAdapter
from circuitry.provenance import make_provenance, sha256_json
from circuitry.stats import Verdict, bootstrap_ci, prompt_effect, random_head_test, verdict

SIGN = {"loss": 1.0, "icl_score": 1.0, "logit_diff": -1.0, "answer_prob": -1.0}
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


@dataclass
class Context:
    """A loaded model and the claim file, with caches of prompt sets."""

    model: ModelAdapter
    claim_file: ClaimFile
    task: str
    _data: dict[tuple[int, int], Any] = field(default_factory=dict)
    _setups: dict[tuple[str, int, int], Setup] = field(default_factory=dict)

    def settings(self, claim) -> tuple[int, int, float]:
        cf = self.claim_file
        return (claim.n_prompts or cf.n_prompts, cf.seed if claim.seed is None else claim.seed,
                claim.alpha or cf.alpha)

    def dataset(self, n_prompts: int, seed: int):
        from circuitry.prompts import make_task

        key = (n_prompts, seed)
        if key not in self._data:
            self._data[key] = make_task(self.task, self.model, n_prompts=n_prompts, seed=seed)
        return self._data[key]

    def setup(self, metric: str, n_prompts: int, seed: int) -> Setup:
        key = (metric, n_prompts, seed)
        if key in self._setups:
            return self._setups[key]
        dev = self.model.device
        if metric == "icl_score":
            ids, targets = icl_tokens(self.model, n_prompts, seed)
            fn: str | Callable = icl_metric
            ds = sha256_json(ids.tolist())
        else:
            data = self.dataset(n_prompts, seed)
            ids, targets, fn, ds = data.clean_ids(dev), Targets.of(data, device=dev), metric, data.sha256()
        with torch.no_grad():
            base = get_metric(fn)(self.model.run(ids.to(dev)).logits, targets).float().cpu()
        self._setups[key] = Setup(ids, targets, fn, metric, ds, base)
        return self._setups[key]


def icl_tokens(model: ModelAdapter, n: int, seed: int) -> tuple[torch.Tensor, Targets]:
    """The sequences and targets :func:`circuitry.scores.icl_score` uses by default (repeated random tokens
    filling the context up to 512 tokens, BOS first; the paper's token 50 and 500 of 512, scaled)."""
    from circuitry.prompts import repeated_tokens
    from circuitry.scores.icl import default_positions

    info = model.info
    total = min(info.n_ctx, 512)
    bos = info.bos_token_id or 0
    tokens = repeated_tokens(n, block_len=(total - 1) // 2, repeats=2, vocab_size=info.d_vocab, bos=bos, seed=seed)
    early, late = default_positions(tokens.shape[1])
    pos = torch.tensor([[early - 1, late - 1]]).repeat(n, 1)
    answers = tokens[:, [early, late]]
    return tokens, Targets(pos, answers, answers)


def _ablate(ctx: Context, s: Setup, head_sets: list[list[str]], ablation: str, seed: int) -> torch.Tensor:
    from circuitry.interventions import ablate_heads

    return ablate_heads(ctx.model, s.ids, head_sets, s.targets, method=ablation, metric=s.metric, seed=seed)


def _random_heads(ctx: Context, claim, metric: str, n_prompts: int, seed: int, draws: int, conf: float):
    """Random-head test of ``claim.heads`` on one metric, plus the per-prompt values of the table."""
    from circuitry.interventions import head_set_effect_fn

    s = ctx.setup(metric, n_prompts, seed)
    info = ctx.model.info
    fn = head_set_effect_fn(ctx.model, s.ids, s.targets, method=claim.ablation, metric=s.metric, seed=seed,
                            sign=SIGN[metric])
    test = random_head_test(fn, claim.heads, all_heads(info.n_layers, info.n_heads), n_draws=draws,
                            match=claim.match, alternative="greater" if claim.direction == "more" else "less",
                            exclude_candidates=claim.exclude_candidates, rng=seed)
    ablated = _ablate(ctx, s, [list(claim.heads)], claim.ablation, seed)[0]
    nres = ctx.claim_file.n_resamples
    damage = bootstrap_ci((SIGN[metric] * (ablated - s.base)).numpy(), confidence_level=conf, n_resamples=nres,
                          rng=seed)
    ev = Evidence(metric=metric, effect=test.statistic, effect_name=DAMAGE_NAME[metric],
                  ci_low=damage.confidence_interval.low, ci_high=damage.confidence_interval.high,
                  confidence_level=conf, null_mean=test.null_mean, null_std=test.null_std, n_null=test.n_draws,
                  exact=test.exact, pvalue=test.pvalue, min_attainable_pvalue=test.min_attainable_pvalue)
    full = bootstrap_ci(s.base.numpy(), confidence_level=conf, n_resamples=nres, rng=seed)
    abl = bootstrap_ci(ablated.numpy(), confidence_level=conf, n_resamples=nres, rng=seed)
    rows = [
        TableRow(metric=metric, condition="full model", mean=full.statistic, ci_low=full.confidence_interval.low,
                 ci_high=full.confidence_interval.high),
        TableRow(metric=metric, condition="candidate heads ablated", mean=abl.statistic,
                 ci_low=abl.confidence_interval.low, ci_high=abl.confidence_interval.high, pvalue=test.pvalue),
        TableRow(metric=metric, condition="random heads ablated",
                 mean=float(s.base.mean()) + SIGN[metric] * test.null_mean, spread=test.null_std),
    ]
    return test, ev, rows, s.dataset_sha256


def _result(ctx: Context, claim, *, v: Verdict, evidence, test: str, n_prompts: int, draws: int | None,
            seed: int, ds: str, raw: dict, table=()) -> ClaimResult:
    prov = make_provenance(ctx.model, dataset=ds, seed=seed, test=test, n_prompts=n_prompts, draws=draws,
                           claim_id=claim.id)
    return ClaimResult(id=claim.id, type=claim.type, statement=claim.statement, verdict=v, evidence=list(evidence),
                       table=list(table), test=test, n_prompts=n_prompts, draws=draws, seed=seed, provenance=prov,
                       raw=raw)


def ablation_vs_random(ctx: Context, claim: AblationVsRandom) -> ClaimResult:
    """Random-head baseline on one metric, judged by :func:`circuitry.stats.verdict`."""
    n, seed, alpha = ctx.settings(claim)
    draws = claim.draws or ctx.claim_file.draws
    test, ev, rows, ds = _random_heads(ctx, claim, claim.metric, n, seed, draws, ctx.claim_file.confidence_level)
    name = (f"{test.test}; {claim.ablation} ablation, damage on {claim.metric}, match={claim.match}, "
            f"exclude_candidates={claim.exclude_candidates}, alternative={test.alternative}")
    return _result(ctx, claim, v=verdict(test, alpha), evidence=[ev], table=rows, test=name, n_prompts=n,
                   draws=test.n_draws, seed=seed, ds=ds, raw={claim.metric: _trim(test.model_dump())})


def ablation_table(ctx: Context, claim: AblationTable) -> ClaimResult:
    """One random-head test per metric; the claim holds when it holds on every metric (intersection-union:
    the largest p-value decides, Berger 1982)."""
    n, seed, alpha = ctx.settings(claim)
    draws = claim.draws or ctx.claim_file.draws
    evidence, table, raw, dss, tests = [], [], {}, [], []
    for metric in dict.fromkeys(claim.metrics):
        test, ev, rows, ds = _random_heads(ctx, claim, metric, n, seed, draws, ctx.claim_file.confidence_level)
        evidence.append(ev)
        table += rows
        raw[metric] = _trim(test.model_dump())
        dss.append(ds)
        tests.append(test)
    worst = max(tests, key=lambda t: (t.pvalue, t.min_attainable_pvalue))
    floor = max(t.min_attainable_pvalue for t in tests)

    joint = SimpleNamespace(pvalue=worst.pvalue, min_attainable_pvalue=floor, n_draws=worst.n_draws,
                            exact=worst.exact, n_distinct_sets=worst.n_distinct_sets)
    v = verdict(joint, alpha)
    name = (f"ablation table: random-head baseline per metric ({claim.ablation} ablation, match={claim.match}, "
            f"exclude_candidates={claim.exclude_candidates}); "
            "joint claim by intersection-union (largest p-value)")
    return _result(ctx, claim, v=v, evidence=evidence, table=table, test=name, n_prompts=n, draws=worst.n_draws,
                   seed=seed, ds=sha256_json(dss), raw=raw)


def path_share(ctx: Context, claim: PathShare) -> ClaimResult:
    """Exact path patching of one path (noising), share = 1 - normalized effect with a paired bootstrap CI
    at level ``1 - alpha``; the decision compares the CI with ``min_share``."""
    from circuitry.interventions import path_patch

    n, seed, alpha = ctx.settings(claim)
    data = ctx.dataset(n, seed)
    res = path_patch(ctx.model, data, senders=[claim.sender], receivers=[(claim.receiver, claim.kind)],
                     include_logits=False, direction="noising", metric=claim.metric, progress=False, seed=seed)
    per = res.per_prompt.numpy()[0]
    pe = prompt_effect(per, res.clean, res.corrupted, direction="noising", confidence_level=1 - alpha,
                       n_resamples=ctx.claim_file.n_resamples, rng=seed)
    share, lo, hi = pe.share("noising")
    m = claim.min_share
    ci = f"{1 - alpha:.0%} CI of the share [{lo:.3f}, {hi:.3f}]"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        outcome, reason = "inconclusive", "the share's CI is undefined (clean and corrupted metrics coincide?)"
    elif lo >= m:
        outcome, reason = "supported", f"{ci} lies at or above min_share={m:g}"
    elif hi < m:
        outcome, reason = "refuted", f"{ci} lies below min_share={m:g}"
    else:
        outcome, reason = "inconclusive", f"{ci} contains min_share={m:g}. Fix: more prompts"
    v = Verdict(outcome=outcome, reason=reason, alpha=alpha, pvalue=pe.pvalue, min_attainable_pvalue=None)
    ev = Evidence(metric=claim.metric, effect=share, effect_name=f"share of the effect via {claim.kind}",
                  ci_low=lo, ci_high=hi, confidence_level=1 - alpha, pvalue=pe.pvalue)
    name = (f"exact path patching (Wang et al. 2023), noising; share = 1 - normalized effect; {pe.test} "
            f"({pe.method}); the p-value tests a non-zero path effect, the verdict compares the CI with min_share")
    return _result(ctx, claim, v=v, evidence=[ev], test=name, n_prompts=n, draws=None, seed=seed,
                   ds=data.sha256(), raw={"path": list(res.paths[0]), "prompt_effect": pe.model_dump()})


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

    kw = dict(n_random=claim.n_random, q=claim.q, rng=seed)
    floor_note = ""
    if claim.type == "minimality":
        res = minimality_test(score, claim.heads, universe, alpha=alpha, **kw)
        evidence = [Evidence(metric=claim.metric, effect=e.delta, effect_name=f"abs. change when {e.element} is removed",
                             pvalue=e.adjusted_pvalue, min_attainable_pvalue=res.min_attainable_pvalue,
                             n_null=res.n_random, null_mean=float(np.mean(res.reference_deltas)),
                             null_std=float(np.std(res.reference_deltas))) for e in res.edges]
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
                     min_attainable_pvalue=res.min_attainable_pvalue, n_null=res.n_random),
        ]
    name = (f"{res.test}; on heads, q={claim.q}, {claim.ablation} ablation of the other heads; "
            f"faithfulness loss = mean |metric(only kept heads) - metric(full model)| on {claim.metric}{floor_note}")
    return _result(ctx, claim, v=verdict(res, alpha), evidence=evidence, test=name, n_prompts=n,
                   draws=claim.n_random, seed=seed, ds=s.dataset_sha256, raw=res.model_dump())


def _trim(d: dict) -> dict:
    """Keep a random-head result's null distribution only up to 2,000 values (the quantiles summarize it)."""
    nd = d.get("null_distribution")
    if isinstance(nd, list) and len(nd) > 2000:
        d = {**d, "null_distribution": nd[:2000], "null_distribution_truncated": True}
    return d


EVALUATORS: dict[str, Callable[[Context, Any], ClaimResult]] = {
    "ablation_vs_random": ablation_vs_random, "ablation_table": ablation_table, "path_share": path_share,
    "sufficiency": circuit, "partial_necessity": circuit, "minimality": circuit,
}
