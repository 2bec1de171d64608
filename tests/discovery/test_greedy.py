"""Greedy circuit search: interactions that per-edge scores miss, and faithfulness on the zoo induction task."""

from __future__ import annotations

import numpy as np
import pytest

# synthetic edge sets: a AND b carry 1.2, c OR d carry 0.5 (redundant: either alone suffices), the other
# edges 0.02 each, additively; per prompt the whole metric is scaled by a prompt factor
A, B, C, D = 0, 1, 2, 3
N_EDGES, SMALL = 12, 0.02
SCALE = np.linspace(0.8, 1.2, 10)


def _metric(keep: np.ndarray) -> np.ndarray:
    keep = np.atleast_2d(keep)
    v = 1.2 * (keep[:, A] & keep[:, B]) + 0.5 * (keep[:, C] | keep[:, D]) + SMALL * keep[:, 4:].sum(1)
    return v[:, None] * SCALE[None, :]


def _f(keep):
    full, empty = _metric(np.ones(N_EDGES, bool)).mean(), _metric(np.zeros(N_EDGES, bool)).mean()
    return float((_metric(keep).mean() - empty) / (full - empty))


def _noising_scores():
    """Per-edge exact patching in the full model (what exact / EAP-IG estimate): m(without e) - m(full)."""
    full = _metric(np.ones(N_EDGES, bool)).mean()
    out = np.zeros(N_EDGES)
    for e in range(N_EDGES):
        k = np.ones(N_EDGES, bool)
        k[e] = False
        out[e] = _metric(k).mean() - full
    return out


def _denoising_scores():
    """Per-edge: each edge alone in the empty circuit."""
    empty = _metric(np.zeros(N_EDGES, bool)).mean()
    return np.array([_metric(np.eye(N_EDGES, dtype=bool)[e]).mean() - empty for e in range(N_EDGES)])


def _top(order, k):
    m = np.zeros(N_EDGES, bool)
    m[list(order[:k])] = True
    return m


def test_or_edges_ranked_last_by_per_edge_scores_found_by_pruning():
    from circuitry.discovery.greedy import prune_order
    from circuitry.discovery.results import ranking

    warm = _noising_scores()
    per_edge = ranking(warm)
    assert set(per_edge[-2:].tolist()) == {C, D}  # redundant: removing one costs nothing
    m1, m0 = _metric(np.ones(N_EDGES, bool))[0], _metric(np.zeros(N_EDGES, bool))[0]
    path = prune_order(_metric, warm, m1, m0, candidates=4)
    assert set(path.order[:2]) == {A, B} and path.order[2] in (C, D)
    assert _f(_top(path.order, 3)) == pytest.approx(1.7 / 1.86)
    assert _f(_top(per_edge, 3)) == pytest.approx(1.22 / 1.86)
    assert path.faithfulness[2] == pytest.approx(_f(_top(path.order, 3)))
    assert path.circuits == 1 + sum(min(4, k) for k in range(N_EDGES, 1, -1))


def test_and_edges_need_the_pair_step():
    """Forward from the empty circuit, a conjunction is invisible one edge at a time: with singles only the
    search follows the distractors; the pair step (Kittler 1978) adds a and b together first."""
    from circuitry.discovery.greedy import greedy_order
    from circuitry.discovery.results import ranking

    warm = _denoising_scores()
    assert set(ranking(warm)[-2:].tolist()) == {A, B}  # alone, neither edge of the AND does anything
    m1, m0 = _metric(np.ones(N_EDGES, bool))[0], _metric(np.zeros(N_EDGES, bool))[0]
    singles = greedy_order(_metric, warm, m1, m0, candidates=N_EDGES, pairs=0, max_size=4)
    assert not {A, B} <= set(singles.order[:3])
    pairs = greedy_order(_metric, warm, m1, m0, candidates=N_EDGES, pairs=N_EDGES, max_size=4)
    assert pairs.order[:2] == [A, B] and pairs.pair_steps == [0]
    assert pairs.faithfulness[1] == pytest.approx(1.2 / 1.86)
    assert _f(_top(pairs.order, 3)) == pytest.approx(1.7 / 1.86)
    assert _f(_top(ranking(warm), 3)) < 0.7


def test_options_checked():
    from circuitry.discovery.greedy import greedy_order, prune_order
    from circuitry.errors import InputError

    m1, m0 = _metric(np.ones(N_EDGES, bool))[0], _metric(np.zeros(N_EDGES, bool))[0]
    with pytest.raises(InputError, match="candidates"):
        greedy_order(_metric, np.ones(N_EDGES), m1, m0, candidates=0)
    with pytest.raises(InputError, match="max_size"):
        prune_order(_metric, np.ones(N_EDGES), m1, m0, max_size=N_EDGES + 1)
    with pytest.raises(InputError, match="m_model"):
        prune_order(_metric, np.ones(N_EDGES), m0, m0)
