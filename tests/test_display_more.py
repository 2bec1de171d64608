"""Rich display of the remaining result classes (issue 29, point 2): on a large instance each repr stays within 25
lines and its top row (the largest |effect|, or a time series' first checkpoint) shows the result's own numbers, in
the text and in the HTML table."""

from __future__ import annotations

import html

import numpy as np

from circuitry.display import fmt, interval
from circuitry.provenance import NamedArray, Provenance

PROV = Provenance(model_id="zoo:attn-only-1l")
HEADS = [f"L{l}H{h}" for l in range(12) for h in range(12)]


def shown(res, first: str, cells) -> list[str]:
    """Check the bounded repr and that the first data row (the line after the header, which starts with
    ``first``) and the first HTML row hold ``cells``; returns the text's lines."""
    text = repr(res)
    assert "values=" not in text and "NamedArray(" not in text  # not pydantic's field-by-field repr
    assert str(res) == text  # print() too (pydantic's str printed every field)
    lines = text.splitlines()
    assert len(lines) <= 25 and max(map(len, lines)) <= 160, text
    head = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith(first + " "))
    row, page = lines[head + 1], res._repr_html_()
    first_html = page.split("<tbody>")[1].split("</tr>")[0]
    for c in cells:
        assert fmt(c) in row, (fmt(c), row)
        assert f">{html.escape(fmt(c))}</td>" in first_html, (fmt(c), first_html)
    return lines


def test_site_decisions():
    from circuitry.stats.decide import decide_sites

    rng = np.random.default_rng(0)
    gap = 2 + 0.1 * rng.standard_normal(12)
    changes = 0.01 * rng.standard_normal((300, 12))
    changes[123] += 0.7 * gap
    fam = decide_sites(changes, gap, labels=[f"e{i}" for i in range(300)], level="edge", alpha=0.05)
    d = fam.sites[123]
    assert 0.65 < d.share < 0.75 and d.pvalue_adjusted < 1e-6 and d.member
    lines = shown(fam, "edge", ["e123", d.share, interval(d.ci_low, d.ci_high), d.pvalue_adjusted, "member"])
    assert lines[-1] == "(290 more edges)" and "Benjamini-Hochberg over 300 edges" in repr(fam)


def test_ablation_result():
    from circuitry.interventions.results import AblationResult

    rng = np.random.default_rng(1)
    base = 3 + 0.2 * rng.standard_normal(16)
    per = base + 0.05 * rng.standard_normal((144, 16))
    per[40] -= 2.0  # ablating L3H4 costs 2 of the metric
    res = AblationResult(method="mean", metric="logit_diff", head_sets=[[h] for h in HEADS],
                         per_prompt=NamedArray.from_array(per, ("set", "prompt")), baseline=base.tolist(),
                         effect=(per - base).mean(1).tolist(), n_prompts=16, provenance=PROV)
    page = res._repr_html_()
    row = page.split("<tbody>")[1].split("</tr>")[0]
    low, high = (float(x) for x in html.unescape(row.split("</td>")[2].split(">")[-1]).strip("[]").split(", "))
    assert low < -2.0 < high and high - low < 0.1  # the interval covers the true effect, and is narrow
    lines = shown(res, "set", ["L3H4", res.effect[40]])
    assert lines[-1] == "(134 more sets)" and "Holm over 144 sets" in repr(res)


def test_backup_report():
    from circuitry.discovery.backup import BackupReport, decide_backups, super_additivity

    rng = np.random.default_rng(2)
    gap = 1 + 0.05 * rng.standard_normal(16)
    alone = 0.01 * rng.standard_normal((143, 16))
    given = alone + 0.01 * rng.standard_normal((143, 16))
    given[17] += 0.5 * gap  # L1H5 takes over once L11H11 is gone
    fam, heads = decide_backups(alone, given, gap, HEADS[:143])
    sa = super_additivity(alone[17] + given[17] + 0.1, alone[[17]], ["L11H11", "L1H5"], n_resamples=200)
    rep = BackupReport(main=["L11H11"], ablation="mean", metric="logit_diff", n_prompts=16, main_damage=0.4,
                       heads=heads, decisions=fam, main_additivity=None, with_backups=sa, seed=0, provenance=PROV)
    h, d = heads[17], fam.sites[17]
    assert rep.backups == ["L1H5"] and 0.45 < h.share < 0.55
    lines = shown(rep, "head", ["L1H5", h.alone, h.given_main, h.growth, h.share, interval(d.ci_low, d.ci_high),
                                h.pvalue_adjusted, "backup"])
    assert lines[-1] == "(133 more heads)" and f"difference {sa.difference:+.3f}" in repr(rep)


def test_sensitivity_report():
    from circuitry.discovery.sensitivity import EdgeSensitivity, SensitivityReport

    settings = [f"{a}/{m}" for a in ("counterfactual", "zero", "mean", "resample", "shuffled")
                for m in ("logit_diff", "answer_prob", "kl")]
    edges = [EdgeSensitivity(edge=f"L0H{i % 12}->L1H{i // 12 % 12}<q{i}>", conclusion="robust out",
                             kept=[False] * 15, flips=[]) for i in range(2000)]
    edges[5] = EdgeSensitivity(edge="L0H5->logits", conclusion="robust in", kept=[True] * 15, flips=[])
    edges[900] = EdgeSensitivity(edge="L0H1->L1H2<k>", conclusion="fragile", kept=[True] * 14 + [False],
                                 flips=["shuffled/kl"])
    rep = SensitivityReport(method="eap-ig", settings=settings, baseline=settings[0], skipped={}, n_kept=[2] * 14 + [1],
                            edges=edges, threshold=0.05, alpha=0.01, n_prompts=8, provenance=PROV)
    lines = shown(rep, "edge", ["L0H1->L1H2<k>", "fragile", "14/15", "shuffled/kl"])
    assert lines[lines.index(next(ln for ln in lines if ln.startswith("L0H1->"))) + 1].startswith("L0H5->logits")
    assert lines[-1] == "(1990 more edges)" and "L0H1-&gt;L1H2&lt;k&gt;" in rep._repr_html_()


def test_faithfulness_comparison():
    from circuitry.discovery.compare import FaithfulnessComparison, SizeDifference

    sizes = [SizeDifference(n_edges=2 ** i, percents=[float(i)], f_a=0.1 * i, f_b=0.1 * i - 0.01 * i,
                            difference=0.01 * i, ci_low=0.01 * i - 0.02, ci_high=0.01 * i + 0.02) for i in range(1, 31)]
    cmp = FaithfulnessComparison(a="greedy", b="eap-ig", sizes=sizes, cmd_a=0.12, cmd_b=0.31, cmd_difference=-0.19,
                                 cmd_ci=(-0.25, -0.13), cpr_a=0.9, cpr_b=0.7, cpr_difference=0.2, cpr_ci=(0.1, 0.3),
                                 n_prompts=16, n_resamples=2000, confidence_level=0.95, seed=0, provenance=PROV)
    lines = shown(cmp, "quantity", [0.12, 0.31, -0.19, interval(-0.25, -0.13)])
    assert lines[-1] == "(22 more rows)"
    assert next(ln for ln in lines if ln.startswith("f at ")).startswith("f at 1073741824 edges (30%)")


def test_decodability_result():
    from circuitry.decodability.run import DecodabilityResult

    ks, layers, tasks = [0, 1, 2, 4, 8, 16, 32, 64], ["embed"] + [f"L{i}" for i in range(12)], ["a", "b", "c", "d"]
    rng = np.random.default_rng(3)
    acc = 0.25 + 0.3 * rng.random((8, 13))
    acc[5, 6] = 0.97
    pv = np.full((8, 13), 0.5)
    pv[5, 6] = 1 / 1001
    ax, kl = ("n_examples", "layer"), {"n_examples": ks, "layer": layers}
    na = lambda a: NamedArray.from_array(a, ax, kl)  # noqa: E731
    res = DecodabilityResult(
        tasks=tasks, n_examples=ks, layers=layers, accuracy=na(acc), recall=NamedArray.from_array(
            np.repeat(acc[..., None], 4, -1), (*ax, "task")), shuffled_mean=na(np.full((8, 13), 0.25)),
        shuffled_sd=na(np.full((8, 13), 0.04)), pvalue=na(pv), adjusted_pvalue=na(np.minimum(1, 104 * pv)),
        chance=0.25, task_accuracy=NamedArray.from_array(np.full((8, 4), 0.6), ("n_examples", "task")),
        solved={t: True for t in tasks}, solved_threshold=0.5,
        settings={"classifier": "ridge", "n_folds": 5, "n_permutations": 1000, "n_prompts": 256}, provenance=PROV)
    lines = shown(res, "k", [16, "L5", 0.97, "0.250 ± 0.040", 1 / 1001, 104 / 1001])
    assert lines[-1] == "(94 more cells)" and "a 0.60 (solved)" in repr(res)


def test_dynamics_result():
    from circuitry.dynamics.measure import CheckpointScores
    from circuitry.dynamics.phase import locate_phase_change
    from circuitry.dynamics.series import DynamicsResult

    steps = list(range(100, 4100, 100))
    jump = np.array([0.0 if s < 1500 else 1.0 for s in steps])
    icl, ind = -0.1 - 1.5 * jump, 0.05 + 0.8 * jump
    ax = ("layer", "head")

    def scores(v, d):
        a = np.full((1, 8), 0.02)
        a[0, 3] = v
        return [NamedArray.from_array(a + x, ax) for x in (0, -d, d)]

    rows = [CheckpointScores(step=s, model_id=f"m@{s}", weights_sha256="0" * 64, icl=i, icl_ci_low=i - 0.05,
                             icl_ci_high=i + 0.05, heldout_loss=4 - s / 2000, heldout_loss_sem=0.01,
                             **dict(zip(("prev_token", "prev_token_ci_low", "prev_token_ci_high"), scores(0.3, 0.02))),
                             **dict(zip(("induction", "induction_ci_low", "induction_ci_high"), scores(v, 0.03))))
            for s, i, v in zip(steps, icl, ind)]
    pc = locate_phase_change(steps, icl, ind, icl_ci=(icl - 0.05, icl + 0.05), induction_ci=(ind - 0.03, ind + 0.03))
    assert pc.found and pc.window == (1400, 1500)
    res = DynamicsResult(series="m", checkpoints=rows, heldout_source={}, phase_change=pc, provenance=PROV)
    lines = shown(res, "step", [100, icl[0], interval(icl[0] - 0.05, icl[0] + 0.05), 3.95, 0.3, ind[0]])
    data = lines[lines.index(next(ln for ln in lines if ln.startswith("step "))) + 1:-1]
    assert [int(ln.split()[0]) for ln in data] == [100, 200, 1400, 1500, 3900, 4000]
    assert data[3].endswith("window end") and fmt(float(ind[14])) in data[3] and fmt(float(ind[13])) in data[2]
    assert lines[-1] == "(34 more checkpoints)" and "phase change found between steps 1400 and 1500" in repr(res)
    flat = [c.model_copy(update={"induction": rows[0].induction}) for c in rows]  # no induction head forms
    pc = locate_phase_change(steps, icl, [ind[0]] * len(steps))
    lines = repr(res.model_copy(update={"checkpoints": flat, "phase_change": pc})).splitlines()
    assert not pc.found and lines[1].startswith("no phase change (checkpoints): prefix-matching score changes by +0.0")
    assert [ln.split()[0] for ln in lines[-5:]] == ["100", "200", "3900", "4000", "(36"]


def test_score_report_and_scalar_score():
    from circuitry.scores.results import (BootstrapInfo, CompositionScores, ScalarScore, ScoreReport,
                                          head_scores_from_samples)

    rng = np.random.default_rng(4)
    heads = {}
    for j, name in enumerate(("induction", "prev_token", "duplicate_token")):
        x = 0.05 * rng.random((10, 12, 12))
        x[:, 5, j] += 0.8 + 0.02 * rng.standard_normal(10)
        heads[name] = head_scores_from_samples(x, name=name, description=f"{name} score", provenance=PROV, recipe={},
                                               n_resamples=200, null=np.full((1, 12, 12), 0.025))
    raw = np.full((12, 12, 12, 12), np.nan)
    raw[0, 1, 3, 2] = 0.4
    axes = ("src_layer", "src_head", "dst_layer", "dst_head")
    comp = CompositionScores(kind="K", raw=NamedArray.from_array(raw, axes),
                             subtracted=NamedArray.from_array(raw - 0.1, axes),
                             baseline_mean=0.1, baseline_std=0.02, baseline_n_draws=100, baseline_distribution="x",
                             convention="y", provenance=PROV)
    per = (-1.0 + 0.1 * rng.standard_normal(1000)).tolist()
    icl = ScalarScore(name="icl", description="late minus early loss", statistic=float(np.mean(per)), ci_low=-1.02,
                      ci_high=-0.98, per_sample=per, n_samples=1000, bootstrap=BootstrapInfo(method="t"),
                      provenance=PROV)
    shown(icl, "score", ["icl", np.mean(per), interval(-1.02, -0.98), 1000])
    rep = ScoreReport(head_scores=heads, composition={"K": comp}, icl=icl, provenance=PROV)
    ind = heads["induction"]
    assert ind.significant_heads() == ["L5H0"]
    p_adj = float(ind.significance.adjusted_pvalue.numpy()[5, 0])
    ci = interval(float(ind.ci_low.numpy()[5, 0]), float(ind.ci_high.numpy()[5, 0]))
    lines = shown(rep, "score", ["induction", "L5H0", float(ind.numpy()[5, 0]), ci, p_adj, 1])
    assert [ln.split()[:2] for ln in lines[-4:]] == [["prev_token", "L5H1"], ["duplicate_token", "L5H2"],
                                                     ["K-composition", "L0H1->L3H2"], ["icl", "model"]]


def test_random_head_and_circuit_tests():
    from circuitry.stats import random_head_test
    from circuitry.stats.circuit_tests import minimality_test, sufficiency_test

    damage = {h: 0.01 * (i % 7) for i, h in enumerate(HEADS)} | {"L3H4": 1.0}
    rh = random_head_test(lambda sets: np.array([sum(damage[h] for h in s) for s in sets]), ["L3H4", "L5H5"], HEADS,
                          n_draws=2000, rng=0)
    null = np.array(rh.null_distribution)  # 2,000 numbers pydantic's repr printed
    assert null.size == 2000 and rh.pvalue == (1 + (null >= rh.statistic - 1e-12).sum()) / 2001 < 0.05
    shown(rh, "candidate", ["L3H4+L5H5", rh.statistic, f"{fmt(rh.null_mean)} ± {fmt(rh.null_std)}", rh.effect_size,
                            rh.pvalue])
    universe = list(range(300))
    st = sufficiency_test(lambda sets: np.array([0.5 - 0.1 * len(set(s) & {1, 2, 3}) for s in sets]), [1, 2, 3, 4],
                          universe, n_random=500, rng=0)
    assert st.n_beaten == 500 and len(st.null_distribution) == 500
    shown(st, "property", ["sufficiency", st.statistic, "500/500", 1.0, interval(st.share_ci.low, st.share_ci.high),
                           st.pvalue])
    mt = minimality_test(lambda sets: np.array([sum(1.0 / (e + 1) for e in s) for s in sets]), list(range(40)),
                         universe, n_random=100, rng=0)
    e0 = mt.edges[0]
    assert e0.element == "0"
    lines = shown(mt, "element", [e0.delta, e0.share_beaten, e0.pvalue, e0.adjusted_pvalue, "yes"])
    assert lines[-1] == "(30 more elements)" and abs(e0.delta - 1.0) < 1e-12

    from circuitry.analysis.circuit_test import CircuitTests
    from circuitry.stats import circuit_vs_random, mean_test

    def fn(sets):
        return np.array([sum(damage[h] for h in s) for s in sets])

    pool = circuit_vs_random(fn, ["L3H4", "L5H5"], HEADS, n_draws=1000, rng=1)
    beyond = circuit_vs_random(fn, ["L5H5", "L3H4"], HEADS, null="conditional", given=["L3H4"], n_draws=1000, rng=2)
    alone = mean_test(1.0 + 0.1 * np.random.default_rng(8).standard_normal(16), rng=0)
    ct = CircuitTests(circuit=["L3H4", "L5H5"], circuit_damage=pool.statistic, single_damage=damage, pool=pool,
                      top_head="L3H4", top_head_test=alone, top_head_share=1.0 / pool.statistic, beyond=beyond)
    lines = shown(ct, "test", ["pool", "L3H4+L5H5", pool.statistic, pool.effect_size, pool.pvalue])
    assert lines[-2].split()[:3] == ["beyond", "L3H4", "L5H5"] and fmt(beyond.pvalue) in lines[-2]
    assert lines[-1].split()[:3] == ["alone", "L3H4", fmt(alone.statistic)] and fmt(alone.pvalue) in lines[-1]


def test_corrected_pvalues():
    from circuitry.stats import correct_pvalues

    p = np.r_[np.random.default_rng(5).uniform(0.01, 1, 700), 1e-7]
    cp = correct_pvalues(p, method="bh", labels=[f"t{i}" for i in range(701)])
    assert cp.rejected == [False] * 700 + [True] and abs(cp.adjusted_pvalues[-1] - 701e-7) < 1e-12
    lines = shown(cp, "test", ["t700", 1e-7, 701e-7, "yes"])
    assert lines[-1] == "(691 more tests)"


def test_ranking_stability():
    from circuitry.discovery.faithfulness_tests import PERCENTS
    from circuitry.discovery.stability import stability_result

    rng = np.random.default_rng(6)
    signal = np.r_[np.linspace(5, 1, 20), np.zeros(980)]
    halves = signal + 0.5 * rng.standard_normal((30, 2, 1000))
    rs = stability_result("eap", halves, 64, percents=PERCENTS, confidence_level=0.95, seed=0)
    assert np.asarray(rs.selection_frequency.numpy()).size >= 5000  # pydantic's repr printed all of these
    j, c = rs.jaccard[0], rs.jaccard_interval[0]
    shown(rs, "top k", [rs.k[0], j, interval(c.low, c.high)])
    assert f"Spearman of |score| {fmt(rs.spearman)}" in repr(rs)


def test_faithfulness_curve_and_replication():
    from circuitry.discovery.faithfulness import Faithfulness, FaithfulnessCurve, ReplicatedFaithfulness
    from circuitry.discovery.faithfulness_tests import CurveTest, SizeTest
    from circuitry.stats import ConfidenceInterval, GapSummary, Verdict

    ci = lambda lo, hi: ConfidenceInterval(low=lo, high=hi)  # noqa: E731
    v = Verdict(outcome="supported", reason="p <= alpha", alpha=0.05, pvalue=0.004, min_attainable_pvalue=0.001)
    tests = [SizeTest(n_edges=2 ** i, percents=[float(i)], faithfulness=0.05 * i,
                      ci=ci(0.05 * i - 0.02, 0.05 * i + 0.02), resolved=True, random_mean=0.01 * i,
                      pvalue=0.001 * (i + 1), min_attainable_pvalue=0.001, pvalue_adjusted=0.002 * (i + 1),
                      adjusted_floor=0.002, verdict=v) for i in range(20)]
    curve = FaithfulnessCurve(method="eap-ig", faithfulness=[t.faithfulness for t in tests],
                              ci_low=[t.ci.low for t in tests], ci_high=[t.ci.high for t in tests], tests=tests,
                              curve_test=CurveTest(statistic=0.6, null_mean=0.3, null_sd=0.05, pvalue=0.001,
                                                   min_attainable_pvalue=0.001),
                              cpr=0.6, cpr_ci=ci(0.55, 0.65), cmd=0.4, cmd_ci=ci(0.35, 0.45),
                              per_prompt=NamedArray.from_array(np.zeros((20, 64)), ("size", "prompt")))
    lines = shown(curve, "edges", [1, 0.0, interval(-0.02, 0.02), 0.0, 0.001, 0.002, "supported"])
    assert lines[-1] == "(10 more sizes)" and "CPR 0.600 [0.550, 0.650], CMD 0.400" in lines[1]
    gap = GapSummary(mean=2.0, ci_low=1.8, ci_high=2.2, pvalue=1e-9, n=32, confidence_level=0.95, resolved=True)
    f = Faithfulness(metric="logit_diff", percents=[float(i) for i in range(20)], n_edges=[2 ** i for i in range(20)],
                     total_edges=2 ** 19, m_model=[1.0] * 32, m_empty=[0.0] * 32, gap=gap, curves=[curve],
                     random=NamedArray.from_array(np.zeros((20, 1000)), ("size", "draw")), random_cpr=[0.3] * 1000,
                     random_mean=None, random_low=None, random_high=None, n_random=1000, n_resamples=1000,
                     confidence_level=0.95, alpha=0.05, seed=0, provenance=PROV)
    rep = ReplicatedFaithfulness(ranked_on=list(range(32)), evaluated_on=list(range(32, 64)), faithfulness=f)
    lines = shown(rep, "method", ["eap-ig", *f.cells("eap-ig")])
    assert lines[0] == "ReplicatedFaithfulness: ranked on 32 prompts, evaluated on the other 32"


def test_checkpoint_scores_training_log_and_head_significance():
    from circuitry.dynamics.measure import CheckpointScores
    from circuitry.dynamics.phase import TrainingLog
    from circuitry.scores.significance import head_significance

    rng = np.random.default_rng(7)
    ind, prev = 0.1 * rng.random((12, 12)), 0.1 * rng.random((12, 12))
    ind[4, 7] = 0.9
    na = lambda a: NamedArray.from_array(a, ("layer", "head"))  # noqa: E731
    cs = CheckpointScores(step=800, model_id="m@800", weights_sha256="0" * 64, icl=-1.2, icl_ci_low=-1.3,
                          icl_ci_high=-1.1, heldout_loss=3.1, heldout_loss_sem=0.02, prev_token=na(prev),
                          prev_token_ci_low=na(prev - 0.01), prev_token_ci_high=na(prev + 0.01), induction=na(ind),
                          induction_ci_low=na(ind - 0.02), induction_ci_high=na(ind + 0.02),
                          k_composition=NamedArray.from_array(rng.random((12, 12, 12, 12)),
                                                              ("src_layer", "src_head", "dst_layer", "dst_head")))
    p47 = float(prev[4, 7])
    lines = shown(cs, "head", ["L4H7", 0.9, interval(0.88, 0.92), p47, interval(p47 - 0.01, p47 + 0.01)])
    assert lines[-1] == "(134 more heads)" and "ICL score -1.200 [-1.300, -1.100] nats" in repr(cs)
    steps = list(range(0, 5000, 50))
    ind_log = [0.05 if s < 2000 else 0.7 for s in steps]
    log = TrainingLog(steps=steps, train_loss=[5 - s / 2000 for s in steps],
                      icl_proxy=[-0.1 - (s >= 2050) for s in steps], best_prev_token=[0.5] * 100,
                      best_induction=ind_log)
    lines = shown(log, "step", [0, 5.0, -0.1, 0.5, 0.05])
    data = [int(ln.split()[0]) for ln in lines[lines.index(next(ln for ln in lines if ln.startswith("step "))) + 1:-1]]
    assert data == [0, 50, 100, 2000, 2050, 4850, 4900, 4950] and lines[-1] == "(92 more steps)"
    assert "steepest prefix-matching rise" in next(ln for ln in lines if ln.startswith("2000 "))
    assert "steepest ICL drop" in next(ln for ln in lines if ln.startswith("2050 "))
    scores = 0.05 * rng.random((10, 12, 12))
    scores[:, 2, 3] += 0.6
    sig = head_significance(scores, np.zeros((1, 12, 12)), min_effect=0.1)
    lines = shown(sig, "head", ["L2H3", float(sig.excess.numpy()[2, 3]), float(sig.statistic.numpy()[2, 3]),
                                float(sig.adjusted_pvalue.numpy()[2, 3]), "yes"])
    assert sig.significant == ["L2H3"] and lines[-1] == "(134 more heads)"
