"""The headline claims on the shipped model: the induction heads' ablation table is supported with p at the
resolution limit of the draws, the false claim is refuted."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuitry.claims import check_claims, load_claim_file

CLAIMS = Path(__file__).parents[2] / "examples" / "claims"


pytestmark = pytest.mark.slow  # a headline claim: still run in CI


@pytest.fixture(scope="module")
def shipped():
    from circuitry.models import load_model

    return load_model("zoo:attn-only-2l")


def test_seed_study_supported_at_the_floor(shipped):
    rep = check_claims(load_claim_file(CLAIMS / "induction_seed_study.yaml"), model=shipped)
    assert rep.exit_code == 0
    table = rep.result("induction-circuit-table")
    for ev in table.evidence:  # both metrics: more extreme than every one of the 462 random sets, exactly
        assert ev.exact and ev.pvalue == pytest.approx(1 / 463) == pytest.approx(ev.min_attainable_pvalue)
        assert ev.ci_low > ev.null_mean + 3 * ev.null_std
    layer = rep.result("induction-heads-vs-layer-1").evidence[0]
    assert layer.exact and layer.pvalue == pytest.approx(1 / 70)  # the floor of C(8, 4) layer-1 sets
    path = rep.result("previous-token-head-keys")
    assert path.verdict.outcome == "supported" and path.evidence[0].ci_low >= 0.2


def test_false_claim_refuted(shipped):
    rep = check_claims(load_claim_file(CLAIMS / "false_claim.yaml"), model=shipped)
    r = rep.results[0]
    assert r.verdict.outcome == "refuted" and r.verdict.pvalue > 0.2 and rep.exit_code == 1
