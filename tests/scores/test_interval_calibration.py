"""Coverage of the intervals ``circuitry scores`` prints, at its default of 10 sequences, on the shipped model.

The population: the per-sequence scores of the shipped zoo:attn-only-2l on 400 sequences of each
detector's default sequences (seed 123; the true mean of a head is their mean), for every detector whose
samples are sequences (``successor`` and ``copy_suppression`` score one sample per token of an order, not
``n_samples`` sequences). An experiment draws 10 of them with replacement and computes the head scores'
intervals exactly as ``score_heads`` does (``head_scores_from_samples``), or the ICL score's
(``bootstrap_ci`` default, as ``icl_score``). Measured table: docs/statistics.md.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitry.provenance import Provenance
from circuitry.scores import icl_score, score_heads
from circuitry.scores.heads import available_detectors
from circuitry.scores.results import bootstrap_seed, head_scores_from_samples
from circuitry.stats import bootstrap_ci, spawn_seeds

N_POOL, N, E = 400, 10, 300
PER_SEQUENCE = [d for d in available_detectors() if d not in ("successor", "copy_suppression")]


@pytest.fixture(scope="module")
def pools(zoo_model):
    scores = score_heads(zoo_model, PER_SEQUENCE, n_samples=N_POOL, seed=123, n_resamples=100)
    return {name: s.per_sample.numpy() for name, s in scores.items()}


def _coverage(pool: np.ndarray, seed: int) -> np.ndarray:
    """Per-head share of E experiments of N sequences whose interval holds the pool mean."""
    gen = np.random.default_rng(seed)
    mu = pool.mean(0)
    prov = Provenance(model_id="test")
    hits = np.zeros(mu.shape)
    for e in range(E):
        s = head_scores_from_samples(pool[gen.integers(0, len(pool), N)], name="x", description="", provenance=prov,
                                     recipe={}, n_resamples=999, seed=e)
        hits += (s.ci_low.numpy() <= mu) & (mu <= s.ci_high.numpy())
    return hits / E


@pytest.mark.slow
def test_head_score_intervals_cover_at_the_default_ten_sequences(pools):
    regular, spiky = [], []
    for i, (name, pool) in enumerate(pools.items()):
        cov = _coverage(pool, i)
        skew = stats.skew(pool, axis=0)
        regular += list(cov[skew <= 2.0])   # no more skewed than the exponential data of tests/stats
        spiky += list(cov[skew > 4.0])      # a head whose mean is carried by < 5% of the sequences
    assert len(pools) == 10 and len(regular) >= 130
    assert 0.93 <= np.mean(regular) <= 0.97, np.mean(regular)
    assert min(regular) >= 0.86  # every such head: 300 experiments, binomial sd 0.013
    # Documented limitation (docs/statistics.md): when ~95% of sequences score ~0 and the rest carry the mean,
    # 10 sequences often contain none of the rest and no interval from them can cover (0.0-0.55 measured).
    assert len(spiky) >= 4 and max(spiky) < 0.8


@pytest.mark.slow
def test_icl_interval_covers_at_the_default_ten_sequences(zoo_model):
    pool = np.asarray(icl_score(zoo_model, n_samples=N_POOL, seed=123, n_resamples=100).per_sample)
    gen = np.random.default_rng(0)
    hits = 0
    for e in range(E):
        ci = bootstrap_ci(pool[gen.integers(0, N_POOL, N)], n_resamples=999, rng=e).confidence_interval
        hits += ci.low <= pool.mean() <= ci.high
    assert 0.92 <= hits / E <= 0.98, hits / E  # 300 experiments: binomial sd 0.013


def test_bootstrap_draws_from_its_own_stream(zoo_model):
    """The tokens use the seed, the bootstrap its first SeedSequence child: changing the number of resamples
    never changes the scores or their test, and the bootstrap never replays the token stream."""
    a = score_heads(zoo_model, ["induction"], n_samples=10, seed=5, n_resamples=200)["induction"]
    b = score_heads(zoo_model, ["induction"], n_samples=10, seed=5, n_resamples=400)["induction"]
    assert a.bootstrap.seed == b.bootstrap.seed == bootstrap_seed(5) == spawn_seeds(5, 1)[0] != 5
    assert a.bootstrap.method == "studentized"
    assert np.array_equal(a.per_sample.numpy(), b.per_sample.numpy())
    assert np.array_equal(a.significance.pvalue.numpy(), b.significance.pvalue.numpy())
    assert not np.array_equal(a.ci_low.numpy(), b.ci_low.numpy())
    # every head's interval is bootstrap_ci's default on that head, with the bootstrap's own seed
    x = a.per_sample.numpy()[:, 1, 3]
    ci = bootstrap_ci(x, n_resamples=200, rng=bootstrap_seed(5)).confidence_interval
    assert (ci.low, ci.high) == pytest.approx((a.ci_low.numpy()[1, 3], a.ci_high.numpy()[1, 3]), rel=1e-9)
    icl = icl_score(zoo_model, n_samples=10, seed=5, n_resamples=200)
    assert icl.bootstrap.seed == bootstrap_seed(5) and icl.bootstrap.method == "studentized"
