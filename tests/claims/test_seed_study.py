"""The headline claims on the shipped model: the induction heads' ablation table is supported with p at the
resolution limit of the draws, the false claim is refuted. Skipped until the checkpoint is shipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuitry.claims import check_claims, load_claim_file

CLAIMS = Path(__file__).parents[2] / "examples" / "claims"


def _shipped() -> bool:
    from circuitry.zoo.registry import list_zoo

    return "attn-only-2l" in list_zoo()


pytestmark = [pytest.mark.slow, pytest.mark.skipif(not _shipped(), reason="zoo:attn-only-2l is not shipped yet")]


@pytest.fixture(scope="module")
def shipped():
    from circuitry.models import load_model

    return load_model("zoo:attn-only-2l")


def test_seed_study_supported_at_the_floor(shipped):
    rep = check_claims(load_claim_file(CLAIMS / "induction_seed_study.yaml"), model=shipped)
    assert rep.exit_code == 0
    table = rep.result("induction-heads-table")
    for ev in table.evidence:  # both metrics: more extreme than every one of the 119 other pairs
        assert ev.exact and ev.pvalue == pytest.approx(1 / 120) == ev.min_attainable_pvalue
        assert ev.ci_low > ev.null_mean + 3 * ev.null_std
    circuit = rep.result("induction-circuit").evidence[0]
    assert circuit.pvalue == pytest.approx(circuit.min_attainable_pvalue) == pytest.approx(1 / 301)


def test_false_claim_refuted(shipped):
    rep = check_claims(load_claim_file(CLAIMS / "false_claim.yaml"), model=shipped)
    r = rep.results[0]
    assert r.verdict.outcome == "refuted" and r.verdict.pvalue > 0.2 and rep.exit_code == 1
