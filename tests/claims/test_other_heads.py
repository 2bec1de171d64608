"""The other-heads rank (``exclude_candidates: true``) is descriptive evidence, never a verdict; claims draw
every procedure from its own stream; claims' intervals cover on a real claim's per-prompt damages."""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.claims import check_claims, parse_claim_file
from circuitry.claims.evaluate import OTHER_HEADS_REASON, RANK_NAME, judge
from circuitry.labels import all_heads
from circuitry.stats import random_head_test, spawn_seeds, verdict

HEADS = all_heads(2, 8)
N, SEED = 16, 4


def _claims(*claims, **top):
    return parse_claim_file({"n_prompts": N, "seed": SEED, "n_resamples": 300, **top, "claims": list(claims)})


def _pair_claim(cid, **kw):
    return {"id": cid, "type": "ablation_vs_random", "statement": "these heads matter", "heads": ["L0H1", "L1H2"],
            **kw}


def test_other_heads_rank_never_supports_even_at_its_best():
    """The strongest possible candidate ranks first among the other heads' sets, yet is never 'supported';
    the same candidate under the pool null is."""
    weights = {h: 0.1 for h in HEADS} | {"L1H3": 5.0, "L1H5": 5.0}

    def fn(sets):
        return [sum(weights[h] for h in s) for s in sets]

    rank = random_head_test(fn, ["L1H3", "L1H5"], HEADS, exclude_candidates=True, rng=0)
    assert rank.pvalue == pytest.approx(1 / 92) == rank.rank_floor  # first of C(14, 2) + 1
    assert not rank.calibrated and rank.min_attainable_pvalue == 1.0
    for alpha in (0.01, 0.05, 0.5):
        assert verdict(rank, alpha).outcome == "inconclusive"  # through the result's fields alone
        v = judge(rank, alpha)
        assert v.outcome == "inconclusive" and v.reason == OTHER_HEADS_REASON and v.pvalue is None
    assert "descriptive rank 0.0109" in rank.describe() and "no verdict" in rank.describe()
    pool = random_head_test(fn, ["L1H3", "L1H5"], HEADS, rng=0)
    assert pool.calibrated and judge(pool, 0.05).outcome == "supported" == verdict(pool, 0.05).outcome
    stopped = random_head_test(fn, ["L1H3", "L1H5"], HEADS, exclude_candidates=True, exact="never", n_draws=200,
                               stop_after=5, rng=0)
    assert not stopped.calibrated and stopped.min_attainable_pvalue == 1.0
    assert stopped.rank_floor == pytest.approx(1 / 201)


def test_other_heads_rank_rejects_random_candidates_too_often_but_never_supports():
    """One dominant head: random candidates containing it rank first (the audit's 12-19% false positives)."""
    weights = {h: 1.0 for h in HEADS} | {"L1H0": 50.0}
    gen = np.random.default_rng(1)
    ranks, outcomes = [], set()
    for _ in range(100):
        cand = list(gen.choice(HEADS, 2, replace=False))
        res = random_head_test(lambda s: [sum(weights[h] for h in x) + gen.normal(0, 0.01) for x in s], cand, HEADS,
                               exclude_candidates=True, rng=gen)
        ranks.append(res.pvalue)
        outcomes.add(verdict(res, 0.05).outcome)
    assert np.mean(np.array(ranks) <= 0.05) > 0.10
    assert outcomes == {"inconclusive"}


@pytest.fixture(scope="module")
def other_heads_report(random_2l):
    cf = _claims(_pair_claim("rank", exclude_candidates=True),
                 {**_pair_claim("rank-table", exclude_candidates=True), "type": "ablation_table",
                  "metrics": ["loss", "logit_diff"], "draws": 40},
                 _pair_claim("pool"))
    return {r.id: r for r in check_claims(cf, model=random_2l).results}


def test_other_heads_claim_reports_the_rank_as_descriptive_evidence(other_heads_report):
    r, pool = other_heads_report["rank"], other_heads_report["pool"]
    assert r.verdict.outcome == "inconclusive" and r.verdict.reason == OTHER_HEADS_REASON
    assert r.verdict.pvalue is None and r.verdict.null.startswith("other-heads:")
    damage, rank = r.evidence
    assert damage.pvalue is None and damage.min_attainable_pvalue is None and damage.null_mean is not None
    assert rank.effect_name == RANK_NAME and rank.effect == pytest.approx(r.raw["loss"]["pvalue"])
    assert rank.n_null == 91 and rank.pvalue is None  # C(14, 2) sets of the other heads, enumerated
    assert [t.pvalue for t in r.table] == [None, None, None]
    # the same heads and prompts under the pool null get a real verdict from a calibrated p-value
    assert pool.verdict.outcome in ("supported", "refuted") and pool.evidence[0].pvalue is not None
    assert pool.evidence[0].effect == pytest.approx(damage.effect)
    table = other_heads_report["rank-table"]
    assert table.verdict.outcome == "inconclusive" and table.verdict.reason == OTHER_HEADS_REASON
    assert [e.effect_name for e in table.evidence].count(RANK_NAME) == 2


def test_claim_streams_are_independent(random_2l):
    """Draws and bootstrap have their own SeedSequence children: changing the resamples leaves the random-head
    test as it was, changing the draws leaves the damage interval as it was."""
    base = _claims(_pair_claim("c", draws=30))
    more_resamples = parse_claim_file({**base.model_dump(mode="json", exclude_none=True), "n_resamples": 600})
    more_draws = _claims(_pair_claim("c", draws=60))
    a, b, c = (check_claims(cf, model=random_2l).results[0] for cf in (base, more_resamples, more_draws))
    assert a.raw["loss"]["null_distribution"] == b.raw["loss"]["null_distribution"]
    assert a.verdict.pvalue == b.verdict.pvalue
    assert a.evidence[0].ci_low != b.evidence[0].ci_low  # the bootstrap did change
    assert (a.evidence[0].ci_low, a.evidence[0].ci_high) == (c.evidence[0].ci_low, c.evidence[0].ci_high)
    assert a.raw["loss"]["null_distribution"] == c.raw["loss"]["null_distribution"][:30]
    assert a.provenance.extra["streams"] == dict(zip(("prompts", "ablation", "draws", "resampling"),
                                                     spawn_seeds(SEED, 4)))


@pytest.mark.slow
def test_claim_damage_interval_covers_on_real_damages(random_2l):
    """Per-prompt damages (mean ablation of a head pair, loss) on 512 prompts are the population; a claim
    of 16 prompts draws 16 of them, and its damage interval (the claims' bootstrap_ci default) is checked."""
    from circuitry.claims.evaluate import _ci, Context
    from circuitry.interventions import ablate_heads
    from circuitry.metrics import Targets, get_metric
    from circuitry.prompts import make_task

    data = make_task("induction", random_2l, n_prompts=512, seed=11)
    ids, t = data.clean_ids(), Targets.of(data)
    base = get_metric("loss")(random_2l.run(ids).logits, t).float()
    pool = (ablate_heads(random_2l, ids, [["L0H1", "L1H2"]], t, method="mean", metric="loss", seed=0)[0]
            - base).numpy()
    ctx = Context(model=random_2l, claim_file=_claims(_pair_claim("c")), task="induction")
    gen = np.random.default_rng(0)
    hits = 0
    for e in range(400):
        ci = _ci(pool[gen.integers(0, len(pool), N)], ctx, e, 0.95)
        hits += ci.confidence_interval.low <= pool.mean() <= ci.confidence_interval.high
    assert ci.method == "studentized"
    assert 0.92 <= hits / 400 <= 0.98, hits / 400  # binomial sd 0.011
