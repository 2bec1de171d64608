"""Session-wide fixtures. Zoo fixtures load the shipped checkpoints once per test session."""

import pytest


@pytest.fixture(scope="session")
def zoo_2l():
    """The shipped ``attn-only-2l`` zoo model (a ``ZooTransformer`` in eval mode, sha256-verified)."""
    from circuitry.zoo import load_zoo

    model, _ = load_zoo("attn-only-2l")
    return model


@pytest.fixture(scope="session")
def analysis_2l(tmp_path_factory):
    """``circuitry analyze`` (``run_analysis``) of ``attn-only-2l`` on 24 induction pairs, once per session (shared
    by tests/analysis and tests/viewer): ``(model, cfg, out, report)``. Tests that write must copy ``out``."""
    from circuitry.analysis import AnalysisConfig, run_analysis
    from circuitry.models import load_model

    out = tmp_path_factory.mktemp("analyze")
    model = load_model("zoo:attn-only-2l")
    cfg = AnalysisConfig(model="zoo:attn-only-2l", task="induction", n_prompts=24, seed=0, n_draws=500,
                         n_resamples=999)
    return model, cfg, out, run_analysis(model, cfg, out, quiet=True)


@pytest.fixture(scope="session")
def analysis_gqa(tmp_path_factory):
    """``run_analysis`` of the grouped-query ``llama-2l-gqa`` (16 induction pairs, few draws), once per session:
    ``(model, report, out)``."""
    from circuitry.analysis import AnalysisConfig, run_analysis
    from circuitry.models import load_model

    out = tmp_path_factory.mktemp("gqa")
    model = load_model("zoo:llama-2l-gqa")
    cfg = AnalysisConfig(model="zoo:llama-2l-gqa", task="induction", n_prompts=16, seed=0, n_score_samples=3,
                         n_baseline=50, n_resamples=200, n_draws=20)
    return model, run_analysis(model, cfg, out, quiet=True), out
