"""Evaluating claims on a random-init model: verdict logic (supported / refuted / inconclusive below the
floor), evidence consistency, validation against the model before anything runs, and the written files."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from circuitry.claims import check_claims, parse_claim_file, validate_file
from circuitry.claims.schema import ClaimFileError
from circuitry.claims.verdicts import VerdictReport
from circuitry.labels import all_heads

N, SEED = 12, 3


def _file(*claims, **top):
    return parse_claim_file({"n_prompts": N, "seed": SEED, "n_resamples": 200, **top, "claims": list(claims)})


def _avr(cid, heads, **kw):
    return {"id": cid, "type": "ablation_vs_random", "statement": f"{heads} matter", "heads": heads, **kw}


@pytest.fixture(scope="module")
def pair_effects(random_2l):
    """Damage to the loss (mean ablation) of every pair of heads, computed independently of the checker."""
    from circuitry.interventions import head_set_effect_fn
    from circuitry.metrics import Targets
    from circuitry.prompts import make_task

    data = make_task("induction", random_2l, n_prompts=N, seed=SEED)
    fn = head_set_effect_fn(random_2l, data.clean_ids(), Targets(*data.targets()), method="mean", metric="loss",
                            seed=SEED)
    pairs = list(itertools.combinations(all_heads(2, 8), 2))
    return dict(zip(pairs, fn(pairs)))


def test_verdicts_supported_refuted_inconclusive(random_2l, pair_effects):
    best = max(pair_effects, key=pair_effects.get)
    worst = min(pair_effects, key=pair_effects.get)
    cf = _file(_avr("best", list(best)), _avr("worst", list(worst)), _avr("best-strict", list(best), alpha=0.001),
               _avr("worst-less", list(worst), direction="less"))
    rep = check_claims(cf, model=random_2l)
    r = {x.id: x for x in rep.results}
    floor = 1 / 120  # C(16, 2) pairs, enumerated exactly
    assert r["best"].verdict.outcome == "supported" and r["best"].verdict.pvalue == pytest.approx(floor)
    assert r["best"].evidence[0].exact and r["best"].evidence[0].n_null == 119
    assert r["best"].evidence[0].effect == pytest.approx(pair_effects[best], rel=1e-5)
    assert r["worst"].verdict.outcome == "refuted" and r["worst"].verdict.pvalue == pytest.approx(1.0)
    assert r["best-strict"].verdict.outcome == "inconclusive"
    assert "below the smallest attainable p-value" in r["best-strict"].verdict.reason
    assert r["worst-less"].verdict.outcome == "supported"
    assert rep.exit_code == 1 and rep.counts == {"supported": 2, "refuted": 1, "inconclusive": 1}


def test_all_supported_gives_exit_zero(random_2l, pair_effects):
    best = max(pair_effects, key=pair_effects.get)
    rep = check_claims(_file(_avr("best", list(best))), model=random_2l)
    assert rep.exit_code == 0


def test_ablation_table_rows_are_consistent(random_2l):
    from circuitry.scores import icl_score

    cf = _file({"id": "t", "type": "ablation_table", "statement": "s", "heads": ["L0H1", "L1H2"],
                "metrics": ["loss", "icl_score", "logit_diff"], "draws": 50, "alpha": 0.05})
    res = check_claims(cf, model=random_2l).results[0]
    rows = {(t.metric, t.condition): t for t in res.table}
    assert len(res.table) == 9 and len(res.evidence) == 3
    for ev in res.evidence:
        sign = -1 if ev.metric == "logit_diff" else 1
        full, abl = rows[(ev.metric, "full model")], rows[(ev.metric, "candidate heads ablated")]
        rnd = rows[(ev.metric, "random heads ablated")]
        assert sign * (abl.mean - full.mean) == pytest.approx(ev.effect, abs=1e-5)
        assert sign * (rnd.mean - full.mean) == pytest.approx(ev.null_mean, abs=1e-5)
        assert ev.ci_low <= ev.effect <= ev.ci_high
    # the table's ICL score of the full model is the library's icl_score on the same sequences
    icl = icl_score(random_2l, n_samples=N, seed=SEED, n_resamples=200).statistic
    assert rows[("icl_score", "full model")].mean == pytest.approx(icl, abs=1e-4)
    # intersection-union: the joint p-value is the largest per-metric p-value
    assert res.verdict.pvalue == pytest.approx(max(e.pvalue for e in res.evidence))


def test_path_share_decision_rule(random_2l):
    claim = {"id": "p", "type": "path_share", "statement": "s", "sender": "L0H1", "receiver": "L1H3", "kind": "k",
             "min_share": 0.9}
    r = check_claims(_file(claim), model=random_2l).results[0]
    ev = r.evidence[0]
    assert ev.ci_low <= ev.effect <= ev.ci_high and ev.confidence_level == pytest.approx(0.99)
    assert ev.ci_high < 0.9 and r.verdict.outcome == "refuted"  # a random model's path carries little
    mid = (ev.ci_low + ev.ci_high) / 2
    if 0 < mid < 1:
        r2 = check_claims(_file({**claim, "min_share": mid}), model=random_2l).results[0]
        assert r2.verdict.outcome == "inconclusive" and "contains min_share" in r2.verdict.reason


def test_circuit_claims_report_tests(random_2l):
    heads = ["L0H1", "L1H3"]
    cf = _file(*({"id": t, "type": t, "statement": "s", "heads": heads, "n_random": 30}
                 for t in ("sufficiency", "partial_necessity", "minimality")))
    rep = check_claims(cf, model=random_2l)
    for r in rep.results:
        assert r.raw["circuit"] == heads and r.raw["n_random"] == 30
        assert r.verdict.min_attainable_pvalue == pytest.approx(0.9 ** 30 if r.type != "minimality"
                                                                else r.raw["min_attainable_pvalue"])
        # 30 random circuits at q=0.9 cannot reach alpha=0.01 (floor 0.9**30 = 0.042): never "supported"
        assert r.verdict.min_attainable_pvalue > 0.01
        assert r.verdict.outcome == "inconclusive" and "below the smallest attainable" in r.verdict.reason
    assert len(rep.result("minimality").evidence) == 2


def test_heads_not_in_model_fail_before_any_claim_runs(random_2l, monkeypatch):
    from circuitry.claims import evaluate

    def boom(*a, **k):
        raise AssertionError("a claim was run")

    monkeypatch.setattr(evaluate, "EVALUATORS", {k: boom for k in evaluate.EVALUATORS})
    cf = _file(_avr("ok", ["L0H0"]), _avr("big", ["L1H8", "L2H0"]),
               {"id": "back", "type": "path_share", "statement": "s", "sender": "L1H0", "receiver": "L0H3",
                "kind": "q"})
    with pytest.raises(ClaimFileError) as exc:
        check_claims(cf, model=random_2l)
    msg = str(exc.value)
    assert "claim 'big': field `heads` names L1H8" in msg and "L2H0" in msg and "2 layers x 8 heads" in msg
    assert "claim 'back': field `receiver`=L0H3 is not in a later layer" in msg
    assert "claim 'ok'" not in msg


def test_validate_file_writes_json_and_markdown(random_2l, tmp_path):
    src = tmp_path / "claims.yaml"
    src.write_text(f"n_prompts: {N}\nseed: {SEED}\nn_resamples: 200\nclaims:\n"
                   "  - id: l0h0\n    type: ablation_vs_random\n    statement: L0H0 matters\n    heads: [L0H0]\n")
    rep = validate_file(src, tmp_path / "out", model=random_2l)
    data = json.loads((tmp_path / "out" / "verdicts.json").read_text())
    back = VerdictReport.model_validate_json((tmp_path / "out" / "verdicts.json").read_text())
    assert back == rep and data["results"][0]["provenance"]["weights_sha256"] == random_2l.weights_sha256
    prov = back.results[0].provenance
    assert prov.seed == SEED and prov.dataset_sha256 and prov.extra["n_prompts"] == N and prov.extra["draws"] == 15
    md = (tmp_path / "out" / "verdicts.md").read_text()
    assert "`l0h0`" in md and rep.results[0].verdict.outcome in md and "floor" in md
    assert not list((tmp_path / "out").glob("*.tmp"))
    assert np.isfinite(rep.results[0].evidence[0].null_std)
