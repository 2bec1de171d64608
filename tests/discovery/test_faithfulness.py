"""Faithfulness on the zoo model: the full and empty edge sets, the bands, the tests against random rankings
(distinct sizes once, floors, Holm, no p-value on noise), the replication, and the JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.discovery import faithfulness_curves
from circuitry.discovery.faithfulness import circuit_sizes, replicated_faithfulness
from circuitry.discovery.runs import evaluate_circuits


def test_full_edge_set_is_the_model_and_empty_set_is_the_corrupted_run(zoo, prepared):
    pr = prepared
    E = len(pr.edges)
    vals = evaluate_circuits(zoo, pr.edges, pr.ids, pr.clean, pr.corr, np.stack([np.ones(E, bool), np.zeros(E, bool)]),
                             pr.metric, pr.targets)
    clean, corr = pr.metric_of(pr.clean), pr.metric_of(pr.corr)
    np.testing.assert_allclose(vals[0], clean, atol=1e-4)
    np.testing.assert_allclose(vals[1], corr, atol=1e-4)  # every edge patched = the corrupted run, recomputed
    f = (vals.mean(1) - vals[1].mean()) / (vals[0].mean() - vals[1].mean())
    assert f[0] == pytest.approx(1.0) and f[1] == pytest.approx(0.0)


def test_single_edge_circuit_complement_matches_exact(zoo, prepared, scored):
    pr = prepared
    ex = scored["exact"]
    sel = [ex.edges.index(n) for n in ("L0H3->L1H0<k>", "embed->L0H3<v>", "L1H2->logits")]
    keep = np.ones((3, len(pr.edges)), bool)
    keep[range(3), sel] = False
    vals = evaluate_circuits(zoo, pr.edges, pr.ids, pr.clean, pr.corr, keep, pr.metric, pr.targets)
    np.testing.assert_allclose(vals.mean(1) - pr.metric_of(pr.clean).mean(), [ex.score[i] for i in sel], atol=1e-4)


@pytest.fixture(scope="module")
def curves(zoo, induction, prepared, scored):
    return faithfulness_curves(zoo, induction, [scored[m] for m in ("exact", "eap", "eap-ig")], n_random=19,
                               n_resamples=300, rng=0, prepared=prepared, progress=False)


@pytest.mark.slow
def test_curves_end_at_one_and_beat_random_edge_rankings(curves):
    assert curves.n_edges == circuit_sizes(257, curves.percents) == [1, 1, 1, 3, 5, 13, 26, 51, 128, 257]
    i10 = curves.percents.index(10.0)
    assert curves.random_mean[i10] < 0.1  # 26 random edges recover almost nothing
    for m in ("exact", "eap-ig"):
        c = curves.curve(m)
        assert c.faithfulness[-1] == pytest.approx(1.0)
        assert c.faithfulness[i10] > 0.6
        t = c.test_at(10)
        assert t.pvalue == pytest.approx(1 / 20) == t.min_attainable_pvalue  # above every one of the 19 random sets
        assert c.curve_test.pvalue == pytest.approx(1 / 20) and c.curve_test.verdict.outcome == "supported"
        assert c.cpr > 0.8 and c.cmd < 0.2
        assert c.cpr_ci.low < c.cpr < c.cpr_ci.high and c.cmd_ci.low < c.cmd < c.cmd_ci.high
        assert all(lo <= f + 1e-9 and f <= hi + 1e-9 for lo, f, hi in zip(c.ci_low, c.faithfulness, c.ci_high))
    # EAP's linear approximation: high ranking AUC, but a far less faithful circuit than EAP-IG
    assert curves.curve("eap").cpr < curves.curve("eap-ig").cpr - 0.1


def test_each_distinct_size_is_one_circuit_tested_once_with_its_floor(curves):
    c = curves.curve("eap-ig")
    assert [t.n_edges for t in c.tests] == [1, 3, 5, 13, 26, 51, 128, 257]
    assert c.tests[0].percents == [0.1, 0.2, 0.5] and c.test_at(0.2) is c.tests[0]
    assert c.faithfulness[:3] == [c.tests[0].faithfulness] * 3 and c.pvalue[:3] == [c.tests[0].pvalue] * 3
    assert c.test_at(100).pvalue is None and "whole model" in c.test_at(100).reason
    tested = [t for t in c.tests if t.pvalue is not None]
    m = len(tested)
    assert m >= 4
    for t in tested:  # Holm over the m tested sizes; 19 draws: the floor after Holm, m/20, exceeds 0.05
        assert t.min_attainable_pvalue == pytest.approx(1 / 20) and t.adjusted_floor == pytest.approx(min(1, m / 20))
        assert t.pvalue_adjusted >= t.pvalue and t.verdict.outcome == "inconclusive"
        assert t.verdict.reason.startswith("inconclusive by construction")
    assert "inconclusive by construction" in curves.summary()
    assert curves.random_low is None and curves.random_high is None  # 19 draws < 20: no spread is drawn


def test_no_pvalue_where_f_is_rounding_noise(curves):
    # EAP-IG's 1-edge circuit does not reach the logits' behaviour: f is 1e-8 and so is every random circuit's
    t = curves.curve("eap-ig").tests[0]
    assert abs(t.faithfulness) < 1e-4 and not t.resolved
    assert t.pvalue is None and t.pvalue_adjusted is None and "indistinguishable from 0" in t.reason
    assert all(abs(v) < 1e-4 for v in curves.random.numpy()[0])


def test_faithfulness_round_trips_json(curves):
    from circuitry.discovery import Faithfulness

    again = Faithfulness.model_validate_json(curves.model_dump_json())
    assert again == curves


@pytest.mark.slow
def test_replication_ranks_on_one_half_and_evaluates_on_the_other(zoo, induction):
    from circuitry.discovery import score_edges

    seen = []

    def rescore(d):
        seen.append(len(d))
        return [score_edges(zoo, d, method="eap-ig", progress=False)]

    rep = replicated_faithfulness(zoo, induction, rescore, n_random=9, n_resamples=100, rng=0, progress=False)
    assert seen == [8] and len(rep.ranked_on) == len(rep.evaluated_on) == 8
    assert not set(rep.ranked_on) & set(rep.evaluated_on) and len(rep.faithfulness.m_model) == 8
    c = rep.faithfulness.curves[0]
    assert c.test_at(10).faithfulness > 0.5  # the half-sample ranking still finds a working circuit on new prompts
    assert c.curve_test.pvalue == pytest.approx(0.1)


def test_size_pvalue_does_not_rank_rounding_noise():
    """A random circuit's f within F_TOLERANCE below the method's is a tie: f values at float-noise level give
    p = 1, whatever their order; a real difference still reaches the floor."""
    import numpy as np

    from circuitry.discovery.faithfulness_tests import F_TOLERANCE, size_pvalues

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1e-8, (2, 199))
    p = size_pvalues(np.array([3e-8, 0.2]), np.stack([noise[0], 0.01 * noise[1]]), np.array([True, True]))
    assert p[0] == 1.0 and p[1] == 1 / 200
    edge = size_pvalues(np.array([0.2]), np.full((1, 199), 0.2 - F_TOLERANCE / 2), np.array([True]))
    assert edge[0] == 1.0  # within the tolerance below: ties
