"""Each random procedure of ``analyze`` draws from its own stream: changing one procedure's count leaves
every other procedure's numbers bit-identical, and the head/path verdicts draw nothing at all."""

from __future__ import annotations

import pytest

from circuitry.analysis import AnalysisConfig, run_analysis
from circuitry.models import load_model

BASE = dict(model="zoo:attn-only-2l", task="induction", n_prompts=12, seed=3, n_score_samples=10, n_baseline=60,
            n_resamples=300, n_draws=60, stop_after=None, max_path_heads=16)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    model = load_model("zoo:attn-only-2l")
    out = {}
    for name, change in [("base", {}), ("resamples", {"n_resamples": 500}), ("draws", {"n_draws": 90}),
                         ("baseline", {"n_baseline": 80})]:
        cfg = AnalysisConfig(**{**BASE, **change})
        out[name] = run_analysis(model, cfg, tmp_path_factory.mktemp(name), quiet=True)
    return out


def _numbers(x):
    """A result's dump without its provenance (which records when it was made)."""
    if isinstance(x, dict):
        return {k: _numbers(v) for k, v in x.items() if k != "provenance"}
    if isinstance(x, list):
        return [_numbers(v) for v in x]
    return x


def _sites(r):
    return [e.model_dump() for e in r.head_effects + r.path_effects]


def _ctest(r):
    return _numbers(r.circuit_test.model_dump()) if r.circuit_test is not None else None


def test_changing_the_bootstrap_count_moves_only_the_score_intervals(runs):
    a, b = runs["base"], runs["resamples"]
    assert _sites(a) == _sites(b) and a.gap == b.gap  # nothing drawn
    assert _ctest(a) == _ctest(b)
    assert _numbers([c.model_dump() for c in a.composition.values()]) == _numbers(
        [c.model_dump() for c in b.composition.values()])
    ha, hb = a.head_scores["induction"], b.head_scores["induction"]
    assert ha.values.numpy().tolist() == hb.values.numpy().tolist()  # the same sequences were drawn
    assert (ha.ci_low.numpy().tolist() != hb.ci_low.numpy().tolist()  # only the bootstrap moved
            or (a.icl.ci_low, a.icl.ci_high) != (b.icl.ci_low, b.icl.ci_high))


def test_changing_the_null_draws_moves_only_the_circuit_test(runs):
    a, b = runs["base"], runs["draws"]
    assert _sites(a) == _sites(b)
    assert _numbers(a.head_scores["induction"].model_dump()) == _numbers(b.head_scores["induction"].model_dump())
    assert _numbers(a.icl.model_dump()) == _numbers(b.icl.model_dump())
    assert _ctest(a) != _ctest(b) and _ctest(a) is not None


def test_changing_the_composition_baseline_moves_only_the_baseline(runs):
    a, b = runs["base"], runs["baseline"]
    assert _sites(a) == _sites(b) and _ctest(a) == _ctest(b)
    assert _numbers(a.head_scores["induction"].model_dump()) == _numbers(b.head_scores["induction"].model_dump())
    ka, kb = a.composition["K"], b.composition["K"]
    assert ka.raw.model_dump() == kb.raw.model_dump() and ka.baseline_mean != kb.baseline_mean
