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
