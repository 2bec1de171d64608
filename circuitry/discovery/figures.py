"""The faithfulness figure: every method's curve with its bootstrap band, its tests against random rankings, and
the random rankings' curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitry.discovery.faithfulness import Faithfulness
from circuitry.plots import _plt, save_figure

_COLORS = {"exact": "#1f77b4", "eap": "#ff7f0e", "eap-ig": "#2ca02c", "acdc": "#d62728"}


def plot_faithfulness(fa: Faithfulness, path: str | Path, *, title: str | None = None) -> Path:
    """Draw faithfulness against the share of edges kept (log axis) for every method in ``fa``, each with its
    bootstrap band and a marker per distinct circuit (filled where it beats the random rankings after Holm at
    ``fa.alpha``), and the random rankings' mean (and their spread, from
    :data:`~circuitry.discovery.faithfulness.MIN_INTERVAL_VALUES` draws on) in grey; write ``path``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.array(fa.percents)
    lv = int(round(fa.confidence_level * 100))
    for c in fa.curves:
        col = _COLORS.get(c.method)
        ct = c.curve_test
        test = "" if ct.pvalue is None else f", curve p {ct.pvalue:.2g} (floor {ct.min_attainable_pvalue:.2g})"
        ax.plot(x, c.faithfulness, color=col,
                label=f"{c.method} (CPR {c.cpr:.2f} [{c.cpr_ci.low:.2f}, {c.cpr_ci.high:.2f}], CMD {c.cmd:.2f}{test})")
        ax.fill_between(x, c.ci_low, c.ci_high, color=col, alpha=0.2, linewidth=0)
        for t in c.tests:  # one marker per distinct circuit: filled = supported after Holm
            ok = t.verdict is not None and t.verdict.outcome == "supported"
            ax.plot(t.percents, [t.faithfulness] * len(t.percents), marker="o", linestyle="none", color=col,
                    markerfacecolor=col if ok else "white")
    if fa.n_random:
        spread = fa.random_low is not None
        ax.plot(x, fa.random_mean, color="grey", linestyle="--", marker=".",
                label=f"random edge rankings (mean of {fa.n_random}" + (f", {lv}% of draws shaded)" if spread else ")"))
        if spread:
            ax.fill_between(x, fa.random_low, fa.random_high, color="grey", alpha=0.2, linewidth=0)
    ax.axhline(1.0, color="black", linewidth=0.6)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xlabel(f"edges kept in the circuit (% of all {fa.total_edges} edges, top by |score|)")
    ax.set_ylabel("faithfulness f = (m(C) - m(empty)) / (m(model) - m(empty))")
    ax.set_title(title or f"faithfulness ({fa.metric}; {lv}% bootstrap bands over {len(fa.m_model)} prompts)\nfilled: the "
                          f"circuit beats random after Holm at {fa.alpha:g}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return save_figure(fig, path)
