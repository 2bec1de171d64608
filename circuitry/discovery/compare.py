"""Two rankings' faithfulness at equal circuit size, paired over prompts.

:func:`~circuitry.discovery.faithfulness.faithfulness_curves` gives each method its own band; whether one
method beats another at a size is a question about the *difference*, measured on the same prompts.
:func:`compare_faithfulness` evaluates both methods' top-``k`` circuits at MIB's sizes and resamples the
prompts once for both (percentile bootstrap, :func:`scipy.stats.bootstrap`), so the interval of
``f_a - f_b`` (and of ``CMD_a - CMD_b``, ``CPR_a - CPR_b``) accounts for the prompts both share. ``f`` is
MIB's ratio of means, ``(m(C) - m(empty)) / (m(model) - m(empty))``, recomputed on each resample.

The rankings are held fixed: when they were made on the same prompts the comparison is in-sample (a
search that fits the prompts, like :mod:`circuitry.discovery.greedy`, is favoured); pass held-out prompts
(``data``) to measure how the rankings generalize.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from circuitry.discovery.faithfulness_tests import PERCENTS, curve_area, unique_sizes
from circuitry.discovery.results import EdgeScores
from circuitry.display import Displayed, Table, interval, percent, ranked
from circuitry.errors import bad_value
from circuitry.provenance import Frozen, Provenance


class SizeDifference(Frozen):
    """``f`` of both methods' top ``n_edges`` and the interval of ``difference = f_a - f_b``."""

    n_edges: int
    percents: list[float]
    f_a: float
    f_b: float
    difference: float
    ci_low: float
    ci_high: float


class FaithfulnessComparison(Displayed, Frozen):
    """Method ``a`` against ``b`` at every distinct size below 100 %, and over the whole curve (CMD: lower
    is better, so a negative ``cmd_difference`` favours ``a``; CPR: higher is better)."""

    a: str
    b: str
    sizes: list[SizeDifference]
    cmd_a: float
    cmd_b: float
    cmd_difference: float
    cmd_ci: tuple[float, float]
    cpr_a: float
    cpr_b: float
    cpr_difference: float
    cpr_ci: tuple[float, float]
    n_prompts: int
    n_resamples: int
    confidence_level: float
    interval: str = "percentile bootstrap over prompts, both methods on the same resamples"
    seed: int
    provenance: Provenance

    def summary(self) -> str:
        lv = round(100 * self.confidence_level)
        head = (f"{self.a} vs {self.b} ({self.n_prompts} prompts, {lv}% {self.interval}): CMD {self.cmd_a:.4f} vs "
                f"{self.cmd_b:.4f}, difference {self.cmd_difference:+.4f} [{self.cmd_ci[0]:+.4f}, "
                f"{self.cmd_ci[1]:+.4f}]; CPR {self.cpr_a:.4f} vs {self.cpr_b:.4f}, difference "
                f"{self.cpr_difference:+.4f} [{self.cpr_ci[0]:+.4f}, {self.cpr_ci[1]:+.4f}]")
        lines = [head]
        for s in self.sizes:
            lines.append(f"  {s.n_edges} edges ({', '.join(f'{p:g}' for p in s.percents)}%): f {s.f_a:.3f} vs "
                         f"{s.f_b:.3f}, difference {s.difference:+.3f} [{s.ci_low:+.3f}, {s.ci_high:+.3f}]")
        return "\n".join(lines)

    def _table(self) -> Table:
        """CMD and CPR of both methods with the paired interval of their difference, then the sizes where
        ``f`` differs most."""
        whole = [("CMD (lower is better)", self.cmd_a, self.cmd_b, self.cmd_difference, interval(*self.cmd_ci)),
                 ("CPR (higher is better)", self.cpr_a, self.cpr_b, self.cpr_difference, interval(*self.cpr_ci))]
        sizes = [(f"f at {s.n_edges} edges ({', '.join(f'{p:g}' for p in s.percents)}%)", s.f_a, s.f_b, s.difference,
                  interval(s.ci_low, s.ci_high)) for s in ranked(self.sizes, key=lambda s: s.difference)]
        return Table(f"FaithfulnessComparison: {self.a} vs {self.b}, {self.n_prompts} prompts",
                     ("quantity", self.a, self.b, "difference", percent(self.confidence_level)), whole + sizes,
                     notes=[f"interval: {self.interval} ({self.n_resamples} resamples, seed {self.seed}); difference "
                            f"= {self.a} - {self.b}"], noun="row")


def compare_faithfulness(model, data, a: EdgeScores, b: EdgeScores, *, percents: Sequence[float] = PERCENTS,
                         n_resamples: int = 2000, confidence_level: float = 0.95, rng: int = 0, prepared=None,
                         max_rows: int | None = None) -> FaithfulnessComparison:
    """Faithfulness of ``a``'s and ``b``'s top-``k`` circuits on ``data``, the difference paired over prompts.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> from circuitry.discovery import score_edges
    >>> m = load_model("zoo:attn-only-2l"); d = make_task("induction", m, n_prompts=8)
    >>> ex, ig = (score_edges(m, d, method=k, progress=False) for k in ("exact", "eap-ig"))
    >>> cmp = compare_faithfulness(m, d, ex, ig, n_resamples=200)
    >>> [s.n_edges for s in cmp.sizes]
    [1, 3, 5, 13, 26, 51, 128]
    """
    from scipy import stats

    from circuitry.discovery.runs import evaluate_circuits
    from circuitry.discovery.search import prepare
    from circuitry.provenance import make_provenance

    pr = prepared or prepare(model, data, metric=a.metric)
    E = len(pr.edges)
    if len(a.edges) != E or len(b.edges) != E:
        raise bad_value("a, b", f"{len(a.edges)} and {len(b.edges)} edges", f"scores of this model ({E} edges)")
    pct = [float(p) for p in percents]
    if not pct or pct[-1] != 100.0 or sorted(set(pct)) != pct or pct[0] <= 0:
        raise bad_value("percents", percents, "increasing percentages in (0, 100] ending at 100", "use MIB's")
    ks, groups, index = unique_sizes(E, pct)
    part = [k for k in ks if k < E]
    masks = [np.zeros(E, bool), np.ones(E, bool)] + [s.top(k) for s in (a, b) for k in part]
    vals = evaluate_circuits(model, pr.edges, pr.ids, pr.clean, pr.corr, np.stack(masks), pr.metric, pr.targets,
                             max_rows=max_rows).double().numpy()
    n, P = vals.shape[1], len(part)
    empty, full = vals[0], vals[1]
    va, vb = vals[2:2 + P], vals[2 + P:]

    def curves(W):  # W [B, n] prompt weights -> f_a, f_b [B, ks]
        e, c = W @ empty, W @ full
        fa = (va @ W.T - e) / (c - e)
        fb = (vb @ W.T - e) / (c - e)
        one = np.ones((len(ks) - P, W.shape[0]))
        return np.concatenate([fa, one]).T, np.concatenate([fb, one]).T

    def stat(idx, axis=-1):
        idx = np.atleast_2d(np.asarray(idx, dtype=int))
        W = np.zeros((idx.shape[0], n))
        np.add.at(W, (np.arange(idx.shape[0])[:, None], idx), 1.0)
        W /= n
        fa, fb = curves(W)
        pa, pb = fa[:, index], fb[:, index]
        cmd = curve_area(np.abs(1 - pa), pct) - curve_area(np.abs(1 - pb), pct)
        cpr = curve_area(pa, pct) - curve_area(pb, pct)
        return np.concatenate([(fa - fb)[:, :P], cmd[:, None], cpr[:, None]], 1).T

    bs = stats.bootstrap((np.arange(n),), stat, vectorized=True, n_resamples=n_resamples,
                         confidence_level=confidence_level, method="percentile", rng=np.random.default_rng(rng))
    lo, hi = bs.confidence_interval.low, bs.confidence_interval.high
    fa, fb = (x[0] for x in curves(np.full((1, n), 1.0 / n)))
    pa, pb = fa[index], fb[index]
    cmd_a, cmd_b = float(curve_area(np.abs(1 - pa), pct)), float(curve_area(np.abs(1 - pb), pct))
    cpr_a, cpr_b = float(curve_area(pa, pct)), float(curve_area(pb, pct))
    sizes = [SizeDifference(n_edges=k, percents=groups[i], f_a=float(fa[i]), f_b=float(fb[i]),
                            difference=float(fa[i] - fb[i]), ci_low=float(lo[i]), ci_high=float(hi[i]))
             for i, k in enumerate(part)]
    return FaithfulnessComparison(
        a=a.method, b=b.method, sizes=sizes, cmd_a=cmd_a, cmd_b=cmd_b, cmd_difference=cmd_a - cmd_b,
        cmd_ci=(float(lo[P]), float(hi[P])), cpr_a=cpr_a, cpr_b=cpr_b, cpr_difference=cpr_a - cpr_b,
        cpr_ci=(float(lo[P + 1]), float(hi[P + 1])), n_prompts=n, n_resamples=n_resamples,
        confidence_level=confidence_level, seed=rng,
        provenance=make_provenance(model, dataset=data, seed=rng, task=data.task))
