"""``sensitivity: true``: a claim rerun under every ablation x metric its type admits, each setting's verdict
equal to the verdict of the same claim written with that setting; robust vs fragile."""

from __future__ import annotations

import pytest

from circuitry.claims import check_claims, parse_claim_file

KPATH = {"id": "k-path", "type": "path_share", "statement": "L0H3 -> L1H0 through K carries at least 20%",
         "sender": "L0H3", "receiver": "L1H0", "kind": "k", "min_share": 0.2}
BOTTLENECK = {"id": "l0h3", "type": "ablation_effect", "statement": "ablating L0H3 raises the loss by >= 4 nats",
              "heads": ["L0H3"], "min_effect": 4.0}


def _file(*claims):
    return parse_claim_file({"model": "zoo:attn-only-2l", "task": "induction", "n_prompts": 16,
                             "claims": list(claims)})


@pytest.fixture(scope="module")
def swept(zoo_2l):
    return check_claims(_file({**KPATH, "sensitivity": True}, {**BOTTLENECK, "sensitivity": True}), model=zoo_2l)


def test_settings_per_claim_type():
    from circuitry.claims.sensitivity import settings

    cf = _file(KPATH, BOTTLENECK, {"id": "avr", "type": "ablation_vs_random", "statement": "s", "heads": ["L1H0"],
                                   "metric": "logit_diff", "ablation": "zero"})
    kp, bn, avr = cf.claims
    assert [s for s, _ in settings(kp)] == ["logit_diff", "answer_prob", "loss"]
    assert [s for s, _ in settings(bn)] == ["mean", "zero", "resample"]
    labels = [s for s, _ in settings(avr)]
    assert labels[0] == "zero/logit_diff" and len(labels) == 9 == len(set(labels))


def test_each_setting_equals_the_claim_written_with_it(swept, zoo_2l):
    """The K-path's share holds on the logit difference and the probability but not on the loss of the repeated
    half (measured: refuted, p = 1): fragile, flipped by the loss; rerun as its own claim, the loss setting gives
    the same verdict and p-value."""
    kp = swept.result("k-path")
    s = kp.sensitivity
    assert s.baseline == "logit_diff" and s.settings[0].outcome == kp.verdict.outcome == "supported"
    assert s.conclusion == "fragile" and s.flips == ["loss"]
    alone = check_claims(_file({**KPATH, "metric": "loss"}), model=zoo_2l).results[0]
    row = next(x for x in s.settings if x.setting == "loss")
    assert (row.outcome, row.pvalue) == (alone.verdict.outcome, alone.verdict.pvalue) == ("refuted", 1.0)
    bn = swept.result("l0h3").sensitivity
    assert bn.conclusion == "robust" and [x.outcome for x in bn.settings] == ["supported"] * 3


def test_report_says_robust_or_fragile(swept):
    from circuitry.claims.verdicts import one_line, render_markdown

    assert "sensitivity: fragile: 1 of 3 settings flip it (loss)" in one_line(swept.result("k-path"))
    md = render_markdown(swept)
    assert "**Sensitivity** (robust: the same verdict in all 3 settings; baseline mean)" in md
    assert "| loss | refuted | 1.0000 |" in md
    assert swept.result("k-path").model_dump()["sensitivity"]["flips"] == ["loss"]
