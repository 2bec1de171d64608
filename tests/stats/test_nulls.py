"""Each named random-head null rejects at its nominal rate when its own null holds (simulation), and the
nulls answer different questions (a null applied to data from another null is mis-calibrated)."""

import numpy as np
import pytest
from scipy import stats

from circuitry.errors import InputError
from circuitry.labels import all_heads, parse_head
from circuitry.stats import circuit_vs_random, random_head_test, verdict

REPS = 1000  # binomial sd of a 5% rate: 0.7 points; the check below accepts ~[3.4%, 6.8%]


def calibrated(hits, reps=REPS, level=0.05):
    """Two-sided exact binomial test of the rejection rate against ``level`` at 0.001."""
    return stats.binomtest(hits, reps, level).pvalue > 0.001


def noisy(effect, seed, sd=0.2):
    gen = np.random.default_rng(seed)
    return lambda sets: np.array([effect(s) for s in sets]) + gen.normal(0, sd, len(sets))


def rate(make_candidate, effect, *, reps=REPS, **kw):
    gen = np.random.default_rng(123)
    hits, last = 0, None
    for r in range(reps):
        last = circuit_vs_random(noisy(effect, 10_000 + r), make_candidate(gen), HEADS, rng=r, **kw)
        hits += last.pvalue <= 0.05
    return hits, last


HEADS = all_heads(3, 6)
W = dict(zip(HEADS, np.random.default_rng(0).gamma(2.0, 1.0, len(HEADS))))
LAYER_W = {h: W[h] + 3.0 * parse_head(h)[0] for h in HEADS}  # later layers matter more


def test_pool_null_is_calibrated_for_random_candidates():
    hits, last = rate(lambda g: list(g.choice(HEADS, 3, replace=False)), lambda s: sum(W[h] for h in s),
                      n_draws=199)
    assert last.null == "pool" and not last.exact and last.n_draws == 199
    assert calibrated(hits), hits / REPS


@pytest.mark.parametrize("null", ["pool", "conditional"])
def test_sequential_stopping_is_calibrated_and_stops(null):
    """Drawing stopped at the 5th set at least as damaging (Besag & Clifford) keeps the nominal rate for
    random candidates, uses far fewer draws, and a candidate that beats the null still gets every draw."""
    if null == "conditional":  # each null's own null (as in the fixed-draw tests above)
        kw, effect, candidate = dict(null="conditional", given=[BOTTLENECK]), bottleneck_effect, free_candidate
    else:
        kw, effect = {}, (lambda s: sum(W[h] for h in s))
        candidate = lambda g: list(g.choice(HEADS, 3, replace=False))  # noqa: E731
    gen = np.random.default_rng(7)
    hits, used = 0, []
    for r in range(REPS):
        res = circuit_vs_random(noisy(effect, 20_000 + r), candidate(gen), HEADS, rng=r, n_draws=199,
                                stop_after=5, **kw)
        hits += res.pvalue <= 0.05
        used.append(res.n_draws)
        assert res.max_draws == 199 and res.min_attainable_pvalue == 1 / 200
        assert res.pvalue == (1 + np.sum(np.asarray(res.null_distribution) >= res.statistic)) / (1 + res.n_draws)
    assert calibrated(hits), hits / REPS
    assert np.mean(used) < 0.5 * 199, np.mean(used)
    big = {"L2H0", "L1H1", "L1H2"}
    strong = circuit_vs_random(lambda sets: [sum(10.0 if h in big else W[h] for h in s) for s in sets], sorted(big),
                               HEADS, rng=0, n_draws=199, stop_after=5, **kw)
    assert not strong.stopped and strong.n_draws == 199 and strong.pvalue < 0.02  # (a draw may be the candidate)
    weak = circuit_vs_random(lambda sets: [sum(W[h] for h in s) for s in sets], ["L0H0", "L0H1", "L0H2"], HEADS, rng=0,
                             n_draws=199, stop_after=5, **kw)
    assert weak.stopped and weak.pvalue == 6 / (1 + weak.n_draws) and "Besag & Clifford" in weak.describe()


def test_sequential_stopping_refuses_two_sided():
    with pytest.raises(InputError, match="stop_after"):
        circuit_vs_random(lambda sets: [0.0] * len(sets), ["L0H0"], HEADS, alternative="two-sided", stop_after=5)


def layer_profile_candidate(g):
    """One head of layer 0 and two of layer 2, uniformly: the layer-matched null's own null."""
    l0 = [h for h in HEADS if h.startswith("L0")]
    l2 = [h for h in HEADS if h.startswith("L2")]
    return [g.choice(l0)] + list(g.choice(l2, 2, replace=False))


def test_layer_matched_null_is_calibrated_where_the_pool_null_is_not():
    effect = lambda s: sum(LAYER_W[h] for h in s)  # noqa: E731
    hits, last = rate(layer_profile_candidate, effect, null="layer", n_draws=1000)
    assert last.null == "layer" and last.exact and last.n_distinct_sets == 6 * 15  # enumerated exactly
    assert calibrated(hits), hits / REPS
    # three random late heads against the pool null: they beat most random triples, although under the
    # layer-matched null they are ordinary
    late = lambda g: list(g.choice([h for h in HEADS if h.startswith("L2")], 3, replace=False))  # noqa: E731
    pool_hits, _ = rate(late, effect, n_draws=199, reps=300)
    layer_hits, _ = rate(late, effect, null="layer", reps=300)
    assert pool_hits / 300 > 0.5 and layer_hits / 300 < 0.1


BOTTLENECK = "L0H3"


def bottleneck_effect(s):
    """A bottleneck head: ablating it costs 5 and mutes every other head's contribution."""
    has = BOTTLENECK in s
    return 5.0 * has + sum(W[h] for h in s if h != BOTTLENECK) * (0.3 if has else 1.0)


def free_candidate(g, k=3):
    return list(g.choice([h for h in HEADS if h != BOTTLENECK], k, replace=False))


@pytest.mark.parametrize("k, n_draws, exact", [(3, 199, False), (2, 1000, True)])
def test_conditional_null_is_calibrated(k, n_draws, exact):
    hits, last = rate(lambda g: free_candidate(g, k), bottleneck_effect, null="conditional", given=[BOTTLENECK],
                      n_draws=n_draws)
    assert last.null == "conditional" and last.given == [BOTTLENECK] and last.exact is exact
    assert BOTTLENECK in last.candidate and "ablated in every set" in last.describe()
    assert calibrated(hits), hits / REPS


def test_conditional_null_answers_beyond_the_bottleneck():
    # heads that matter only with the bottleneck intact still matter "beyond" it when they add damage
    effect = lambda s: bottleneck_effect(s) + 4.0 * sum(h in s for h in ("L2H0", "L2H1"))  # noqa: E731
    res = circuit_vs_random(lambda sets: [effect(s) for s in sets], ["L2H0", "L2H1"], HEADS, null="conditional", given=[BOTTLENECK], rng=0)
    assert res.exact and res.pvalue == pytest.approx(1 / 136) == res.min_attainable_pvalue  # C(17, 2) sets
    v = verdict(res, 0.01)
    assert v.outcome == "supported" and "conditional" in v.reason and "L0H3 ablated" in v.null


def test_other_heads_null_is_never_exact_and_named():
    res = random_head_test(lambda s: np.zeros(len(s)), ["L0H1", "L1H2"], HEADS, exclude_candidates=True, rng=0)
    assert res.enumerated and not res.exact and res.null == "other-heads"
    assert "not a calibrated test" in res.null_hypothesis


@pytest.mark.parametrize("kw, match", [
    ({"null": "conditional"}, "given"),
    ({"null": "pool", "given": ["L0H3"]}, "given"),
    ({"null": "matched"}, "null"),
    ({"null": "conditional", "given": ["L0H1", "L1H2"]}, "at least one head outside"),
])
def test_named_null_validation(kw, match):
    with pytest.raises(InputError, match=match):
        circuit_vs_random(lambda s: np.zeros(len(s)), ["L0H1", "L1H2"], HEADS, **kw)
