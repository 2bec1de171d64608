"""The headline claims on the shipped model, each under its named null: the previous-token bottleneck, the
induction heads against random layer-1 heads (exact, at the floor 1/70), the induction heads beyond the
bottleneck (conditional null), the previous-token head's key path; the false claim is refuted."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuitry.claims import check_claims, load_claim_file

CLAIMS = Path(__file__).parents[2] / "examples" / "claims"


pytestmark = pytest.mark.slow  # a headline claim: still run in CI


@pytest.fixture(scope="module")
def shipped():
    import torch

    from circuitry.models import load_model

    torch.set_num_threads(1)
    return load_model("zoo:attn-only-2l")


def test_seed_study_holds_under_its_nulls(shipped):
    rep = check_claims(load_claim_file(CLAIMS / "induction_seed_study.yaml"), model=shipped)
    assert rep.exit_code == 0, [(r.id, r.verdict.reason) for r in rep.results]
    bottleneck = rep.result("previous-token-bottleneck")
    assert bottleneck.evidence[0].effect > 4.0 and bottleneck.evidence[1].effect > 3.0  # damage, lower bound
    table = rep.result("induction-heads-table")
    for ev in table.evidence:  # both metrics: above every other one of the 70 layer-1 sets, exactly
        assert ev.exact and ev.pvalue == pytest.approx(1 / 70) == pytest.approx(ev.min_attainable_pvalue)
        assert ev.null.startswith("layer:") and ev.ci_low > ev.null_mean + 2 * ev.null_std
    beyond = rep.result("induction-heads-beyond-bottleneck")
    ev = beyond.evidence[0]
    assert ev.null.startswith("conditional:") and "L0H3 ablated in every set" in ev.null and not ev.exact
    assert ev.pvalue <= 0.05 and ev.min_attainable_pvalue == pytest.approx(1 / 1001)
    assert ev.effect > ev.null_mean  # the induction heads add damage beyond L0H3
    path = rep.result("previous-token-head-keys")
    gap, share, _ = path.evidence
    assert path.verdict.outcome == "supported" and gap.ci_low > 0 and share.ci_low >= 0.2


def test_false_claim_refuted(shipped):
    rep = check_claims(load_claim_file(CLAIMS / "false_claim.yaml"), model=shipped)
    r = rep.results[0]
    assert r.verdict.outcome == "refuted" and r.verdict.pvalue > 0.2 and rep.exit_code == 1
    assert r.verdict.null.startswith("pool:")
