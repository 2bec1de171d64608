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
from circuitry.stats import spawn_seeds

N, SEED = 12, 3
PROMPT_SEED, ABLATION_SEED = spawn_seeds(SEED, 4)[:2]  # the claim's independent streams (evaluate.STREAMS)


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

    data = make_task("induction", random_2l, n_prompts=N, seed=PROMPT_SEED)
    fn = head_set_effect_fn(random_2l, data.clean_ids(), Targets(*data.targets()), method="mean", metric="loss",
                            seed=ABLATION_SEED)
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
    # the table's ICL score of the full model is the library's icl_score on the claim's own task prompts
    from circuitry.prompts import make_task

    data = make_task("induction", random_2l, n_prompts=N, seed=PROMPT_SEED)
    icl = icl_score(random_2l, data.clean_ids(), n_resamples=200).statistic
    assert rows[("icl_score", "full model")].mean == pytest.approx(icl, abs=1e-4)
    # intersection-union: the joint p-value is the largest per-metric p-value
    assert res.verdict.pvalue == pytest.approx(max(e.pvalue for e in res.evidence))


PATH = {"id": "p", "type": "path_share", "statement": "s", "sender": "L0H1", "receiver": "L1H3", "kind": "k"}


@pytest.mark.parametrize("n", [2, 3, 5])
def test_path_share_on_few_prompts_is_inconclusive(random_2l, n):
    r = check_claims(_file({**PATH, "min_share": 0.01, "n_prompts": n}, alpha=0.1), model=random_2l).results[0]
    assert r.verdict.outcome == "inconclusive" and r.n_prompts == n
    effect = r.evidence[-1]
    # the site's effect test (Hall's t, circuitry.stats.skew_t) has floor 0: few prompts are refused by n
    assert effect.min_attainable_pvalue == 0.0 and effect.pvalue is not None
    assert any("fewer than 16" in w for w in r.warnings)


def test_path_share_follows_the_share_test(random_2l):
    r = check_claims(_file({**PATH, "min_share": 0.5, "n_prompts": 24}), model=random_2l).results[0]
    st = r.raw["share_test"]
    gap, share, effect = r.evidence
    assert r.verdict.outcome == st["outcome"] and r.verdict.pvalue == pytest.approx(st["pvalue"])
    assert gap.effect_name == "clean - corrupted gap" and gap.pvalue == pytest.approx(st["gap"]["pvalue"])
    if not st["gap"]["resolved"]:  # a share of an unresolved gap is not a number
        assert r.verdict.outcome == "inconclusive" and share.ci_low is None and share.ci_high is None
    else:
        assert share.ci_low is not None and share.ci_low <= share.effect <= share.ci_high
        assert (r.verdict.outcome == "supported") == (st["pvalue"] <= 0.01 and st["min_attainable_pvalue"] <= 0.01)
    assert effect.pvalue == pytest.approx(st["effect_pvalue"]) and effect.min_attainable_pvalue == st["effect_floor"]
    assert type(r).model_validate_json(r.model_dump_json()) == r


def test_ablation_effect_claim(random_2l, pair_effects):
    from circuitry.interventions import ablate_heads
    from circuitry.metrics import Targets
    from circuitry.prompts import make_task

    data = make_task("induction", random_2l, n_prompts=16, seed=PROMPT_SEED)
    ids, t = data.clean_ids(), Targets(*data.targets())
    base = ablate_heads(random_2l, ids, [[]], t, method="mean", metric="loss", seed=ABLATION_SEED)[0]
    abl = ablate_heads(random_2l, ids, [["L0H1"]], t, method="mean", metric="loss", seed=ABLATION_SEED)[0]
    damage = float((abl - base).mean())
    claim = {"id": "e", "type": "ablation_effect", "statement": "s", "heads": ["L0H1"], "n_prompts": 16}
    low = check_claims(_file({**claim, "min_effect": 5.0}), model=random_2l).results[0]
    assert low.evidence[0].effect == pytest.approx(damage, abs=1e-5)
    assert low.verdict.outcome == "refuted" and low.verdict.min_attainable_pvalue == pytest.approx(1 / 201)
    assert low.evidence[1].null == "mean <= 5"
    few = check_claims(_file({**claim, "min_effect": 5.0, "n_prompts": 8}), model=random_2l).results[0]
    assert few.verdict.outcome == "inconclusive" and "fewer than 16" in few.verdict.reason


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


def test_jsonl_task_records_the_prompts_used_and_feeds_every_metric(random_2l, tmp_path):
    from circuitry.prompts import induction_pairs

    path = induction_pairs(20, block_len=8, vocab_size=100, seed=4).to_jsonl(tmp_path / "pairs.jsonl")
    cf = parse_claim_file({"task": str(path), "n_prompts": 8, "n_resamples": 200, "draws": 20, "claims": [
        {"id": "icl", "type": "ablation_table", "statement": "s", "heads": ["L0H1"], "metrics": ["icl_score"]}]})
    r = check_claims(cf, model=random_2l).results[0]
    assert r.n_prompts == 20 and r.provenance.extra["n_prompts"] == 20  # the file's 20 pairs, not 8
    assert any("n_prompts is ignored" in w for w in r.warnings)
    from circuitry.scores import icl_score
    from circuitry.prompts import make_task

    icl = icl_score(random_2l, make_task(str(path), random_2l).clean_ids(), n_resamples=200).statistic
    full = next(t for t in r.table if t.condition == "full model")
    assert full.mean == pytest.approx(icl, abs=1e-4)  # icl_score ran on the claim's task prompts


def test_block_len_sets_the_induction_prompts(random_2l):
    cf = _file(_avr("b", ["L0H1"], draws=10), block_len=6)
    from circuitry.claims.check import validate_against_model

    ctx = validate_against_model(cf, random_2l)
    assert ctx.dataset(N, SEED).seq_len == 1 + 2 * 6
