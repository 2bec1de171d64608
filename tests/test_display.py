"""Rich display (issue 29, point 2): results show a bounded text repr and an escaped HTML table of their top rows
with the numbers the library computes."""

from __future__ import annotations

import html

import numpy as np
import pytest

from circuitry.display import Table, fmt, interval
from circuitry.provenance import NamedArray, Provenance


def big_patch_result(n_layers=12, n_heads=12, n_pos=12, n_prompts=16, seed=0):
    """A noising per-position result with 1,728 sites: one strong site (L7H3@9), the rest noise."""
    from circuitry.interventions.results import PatchResult

    rng = np.random.default_rng(seed)
    clean, corrupted = 3.0 + 0.1 * rng.standard_normal(n_prompts), 0.1 * rng.standard_normal(n_prompts)
    share = 0.002 * rng.standard_normal((n_layers, n_heads, n_pos))
    share[7, 3, 9] = 0.8
    per_prompt = clean - share[..., None] * (clean - corrupted) + 0.01 * rng.standard_normal((*share.shape, n_prompts))
    mean = per_prompt.mean(-1)
    gap = clean.mean() - corrupted.mean()
    ax = ("layer", "head", "position")
    return PatchResult(site="z", direction="noising", metric="logit_diff",
                       effect=NamedArray.from_array(1 - (clean.mean() - mean) / gap, ax),
                       metric_mean=NamedArray.from_array(mean, ax),
                       per_prompt=NamedArray.from_array(per_prompt, (*ax, "prompt")), clean=clean.tolist(),
                       corrupted=corrupted.tolist(), n_prompts=n_prompts, provenance=Provenance(model_id="m"))


@pytest.fixture(scope="module")
def big():
    return big_patch_result()


def test_repr_of_a_big_result_is_short_and_shows_the_top_site(big):
    res = big
    text = repr(res)
    lines = text.splitlines()
    assert len(lines) <= 25 and max(map(len, lines)) <= 160  # pydantic's repr printed every one of ~30,000 numbers
    top = [ln for ln in lines if ln.startswith("L7H3@9 ")]
    assert len(top) == 1 and lines.index(top[0]) == lines.index(next(ln for ln in lines if ln.startswith("site"))) + 1
    assert lines[-1] == f"({12 * 12 * 12 - 10} more sites)"


def test_html_holds_the_top_site_and_its_statistics(big):
    res = big
    page = res._repr_html_()
    fam = res.decisions()
    d = max(fam.sites, key=lambda s: abs(s.share))
    assert d.site == "L7H3@9"
    row = (f"<tr><td style=\"text-align:left\">L7H3@9</td><td style=\"text-align:right\">{fmt(d.share)}</td>"
           f"<td style=\"text-align:left\">{html.escape(interval(d.ci_low, d.ci_high))}</td>"
           f"<td style=\"text-align:right\">{fmt(d.pvalue_adjusted)}</td>")
    assert row in page
    assert abs(d.share - float(res.share.numpy()[7, 3, 9])) < 1e-9 and 0.75 < d.share < 0.85
    assert d.pvalue_adjusted < 1e-6 and "Holm over 1728 heads" in page
    assert page.count("<tr>") == 11 and "(1718 more sites)" in page


def test_html_escapes_every_string():
    t = Table("<script>alert(1)</script>", ("site & co", "share"), [("<b>L0H0</b>", 0.5)],
              notes=['a "note" <i>'])
    page = t.html()
    assert "<script>" not in page and "<b>L0H0" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;L0H0&lt;/b&gt;" in page
    assert "site &amp; co" in page and "&quot;note&quot;" in page


def test_claim_verdicts_show_their_evidence():
    from circuitry.claims.verdicts import ClaimResult, Evidence, VerdictReport
    from circuitry.stats import Verdict

    v = Verdict(outcome="refuted", reason="p=0.79 > alpha=0.05", alpha=0.05, pvalue=0.792,
                min_attainable_pvalue=0.00833)
    ev = Evidence(metric="loss", effect=-0.0021, effect_name="damage: rise in loss (nats)", ci_low=-0.009,
                  ci_high=0.007, null_mean=0.955, null_std=1.5, n_null=119, pvalue=0.792, min_attainable_pvalue=0.00833)
    r = ClaimResult(id="bystander<heads>", type="ablation_vs_random", statement="L0H5 and L1H1 matter", verdict=v,
                    evidence=[ev], test="random-head baseline", n_prompts=32, draws=119, seed=0, provenance=Provenance())
    rep = VerdictReport(claim_file="false_claim.yaml", claim_file_sha256="0" * 64, model_id="zoo:attn-only-2l",
                        weights_sha256="1" * 64, library_version="x", results=[r],
                        counts={"supported": 0, "refuted": 1, "inconclusive": 0}, exit_code=1, provenance=Provenance())
    text = repr(rep)
    assert "0 supported, 1 refuted, 0 inconclusive (exit code 1)" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("bystander<heads>"))
    assert row.split()[1:7] == ["ablation_vs_random", "refuted", "-0.002", "[-0.009,", "0.007]", "0.792"]
    assert "bystander&lt;heads&gt;" in rep._repr_html_() and "REFUTED" in repr(r)
    assert "0.955 ± 1.5 (n=119)" in r._repr_html_()


def test_docstring_examples_run():
    import doctest

    import circuitry.display
    import circuitry.plots

    for module in (circuitry.display, circuitry.plots):
        result = doctest.testmod(module)
        assert result.attempted >= 2 and result.failed == 0, module.__name__
