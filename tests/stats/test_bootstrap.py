"""Bootstrap confidence intervals: coverage, degenerate input, validation, JSON."""

import numpy as np
import pytest
from scipy import stats

from circuitry.errors import InputError
from circuitry.stats import EffectEstimate, bootstrap_ci, paired_bootstrap_ci


def test_bca_covers_true_mean_at_nominal_rate():
    # 300 experiments of 40 prompts from N(1.5, 2): a 90% interval should cover 1.5 about 90% of the time.
    gen = np.random.default_rng(123)
    reps, covered = 300, 0
    for r in range(reps):
        x = gen.normal(1.5, 2.0, 40)
        ci = bootstrap_ci(x, confidence_level=0.9, n_resamples=1000, rng=r).confidence_interval
        covered += ci.low <= 1.5 <= ci.high
    rate = covered / reps
    assert stats.binomtest(covered, reps, 0.9).pvalue > 0.001, rate
    assert 0.85 <= rate <= 0.95


def test_percentile_interval_matches_scipy_directly():
    x = np.array([0.3, 1.2, 0.8, 2.5, 1.1, 0.9, 1.7, 0.4])
    ours = bootstrap_ci(x, method="percentile", n_resamples=999, rng=7)
    ref = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=999, rng=np.random.default_rng(7))
    assert ours.confidence_interval.low == pytest.approx(ref.confidence_interval.low)
    assert ours.confidence_interval.high == pytest.approx(ref.confidence_interval.high)
    assert ours.statistic == pytest.approx(x.mean())
    assert ours.n == 8 and ours.seed == 7 and ours.method == "percentile"


def test_all_equal_values_give_zero_width_interval_not_nan():
    est = bootstrap_ci([0.7] * 10, rng=0)
    assert est.confidence_interval.low == est.confidence_interval.high == pytest.approx(0.7)
    assert est.standard_error == 0.0 and "equal" in est.note


def test_median_with_degenerate_jackknife_falls_back_to_percentile():
    est = bootstrap_ci([1.0] * 7 + [2.0], statistic="median", rng=0)
    assert est.method == "percentile" and "percentile" in est.note
    assert est.confidence_interval.low == est.confidence_interval.high == 1.0


@pytest.mark.parametrize("values", [[1.0], [], [1.0, float("nan"), 2.0], [[1.0, 2.0], [3.0, 4.0]]])
def test_bad_inputs_raise_input_error(values):
    with pytest.raises(InputError):
        bootstrap_ci(values)


@pytest.mark.parametrize("kwargs", [{"method": "bca"}, {"confidence_level": 95}, {"n_resamples": 10},
                                    {"statistic": "mode"}, {"rng": -1}])
def test_bad_options_raise_before_work(kwargs):
    with pytest.raises(InputError):
        bootstrap_ci([1.0, 2.0, 3.0], **kwargs)


def test_paired_interval_is_interval_of_differences_and_tighter_than_unpaired():
    gen = np.random.default_rng(0)
    clean = gen.normal(3.0, 2.0, 60)  # large between-prompt spread
    patched = clean - 0.5 + gen.normal(0, 0.1, 60)
    paired = paired_bootstrap_ci(patched, clean, n_resamples=1000, rng=1)
    direct = bootstrap_ci(patched - clean, n_resamples=1000, rng=1)
    assert paired.paired and paired.statistic == pytest.approx(-0.5, abs=0.05)
    assert paired.confidence_interval == direct.confidence_interval
    unpaired_width = 2 * 1.96 * np.sqrt(patched.var(ddof=1) / 60 + clean.var(ddof=1) / 60)
    assert paired.confidence_interval.high - paired.confidence_interval.low < unpaired_width / 10
    with pytest.raises(InputError, match="baseline"):
        paired_bootstrap_ci([1.0, 2.0, 3.0], [1.0, 2.0])


def test_effect_estimate_round_trips_through_json():
    est = bootstrap_ci([0.1, 0.5, 0.4, 0.9], n_resamples=200, rng=3)
    back = EffectEstimate.model_validate_json(est.model_dump_json())
    assert back == est and back.seed == 3 and back.n_resamples == 200


def test_same_seed_same_interval_and_none_records_a_seed():
    x = [0.2, 0.9, 1.4, 0.3, 0.8]
    assert bootstrap_ci(x, rng=5) == bootstrap_ci(x, rng=5)
    est = bootstrap_ci(x, rng=None)
    assert isinstance(est.seed, int)
    assert bootstrap_ci(x, rng=est.seed).confidence_interval == est.confidence_interval
