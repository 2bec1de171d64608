"""Faithfulness: the full and empty edge sets, the random baseline, bands and stability."""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.discovery import faithfulness_curves
from circuitry.discovery.faithfulness import circuit_sizes
from circuitry.discovery.runs import evaluate_circuits
from circuitry.discovery.stability import ranking_stability


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
def test_curves_end_at_one_and_beat_random_edge_sets(curves):
    assert curves.n_edges == circuit_sizes(257, curves.percents) == [1, 1, 1, 3, 5, 13, 26, 51, 128, 257]
    i10 = curves.percents.index(10.0)
    assert curves.random_mean[i10] < 0.1  # 26 random edges recover almost nothing
    for m in ("exact", "eap-ig"):
        c = curves.curve(m)
        assert c.faithfulness[-1] == pytest.approx(1.0)
        assert c.faithfulness[i10] > 0.6
        assert c.pvalue[i10] == pytest.approx(1 / 20)  # above every one of the 19 random sets
        assert c.cpr > 0.8 and c.cmd < 0.2
        assert c.cpr_ci.low < c.cpr < c.cpr_ci.high and c.cmd_ci.low < c.cmd < c.cmd_ci.high
        assert all(lo <= f + 1e-9 and f <= hi + 1e-9 for lo, f, hi in zip(c.ci_low, c.faithfulness, c.ci_high))
    # EAP's linear approximation: high ranking AUC, but a far less faithful circuit than EAP-IG
    assert curves.curve("eap").cpr < curves.curve("eap-ig").cpr - 0.1


def test_faithfulness_round_trips_json(curves):
    from circuitry.discovery import Faithfulness

    again = Faithfulness.model_validate_json(curves.model_dump_json())
    assert again == curves


def test_ranking_stability(scored):
    st = ranking_stability(scored["eap-ig"], n_resamples=50, rng=0)
    assert 0.5 < st.spearman <= 1 and st.spearman_ci.low <= st.spearman <= st.spearman_ci.high
    assert len(st.k) == len(st.jaccard) == 9 and all(0 <= j <= 1 for j in st.jaccard)
    # identical prompts: every resample gives the same ranking
    s = scored["eap"]
    pp = np.repeat(np.asarray(s.score)[:, None], 4, axis=1)
    from circuitry.provenance import NamedArray

    same = s.model_copy(update={"per_prompt": NamedArray.from_array(pp, ("edge", "prompt"))})
    st1 = ranking_stability(same, n_resamples=10, rng=0)
    assert st1.spearman == pytest.approx(1.0) and st1.jaccard == [1.0] * 9
