"""Result types of the intervention engine (frozen, JSON round-trippable, with provenance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitry.display import Displayed, Table, interval, percent, ranked
from circuitry.provenance import Frozen, NamedArray, Provenance


class PatchResult(Displayed, Frozen):
    """An activation-patching sweep.

    :attr:`share` is the share of the clean-corrupted gap each site carries (positive = the site matters,
    in both directions; :func:`circuitry.metrics.share_of_gap`): the quantity every figure, table and CLI
    line shows. ``effect`` is Zhang & Nanda's normalized effect ``(M_patched - M_corrupted) / (M_clean -
    M_corrupted)`` of the mean metric (0 = like the corrupted run, 1 = like the clean run, whichever run was
    patched); ``metric_mean`` the raw mean metric with the patch; ``per_prompt`` the raw metric per unit and
    prompt (last axis ``prompt``), for bootstrapping; ``clean`` / ``corrupted`` the metric of the unpatched
    runs, per prompt.
    """

    site: str
    direction: str
    metric: str
    effect: NamedArray
    metric_mean: NamedArray
    per_prompt: NamedArray
    clean: list[float]
    corrupted: list[float]
    n_prompts: int
    provenance: Provenance

    @property
    def clean_mean(self) -> float:
        return float(np.mean(self.clean))

    @property
    def corrupted_mean(self) -> float:
        return float(np.mean(self.corrupted))

    @property
    def share(self) -> NamedArray:
        """Share of the clean-corrupted gap each site carries (same axes as ``effect``)."""
        from circuitry.metrics import share_of_gap

        return NamedArray.from_array(share_of_gap(self.effect.numpy(), self.direction), self.effect.axes,
                                     self.effect.coords)

    def unit_labels(self) -> list[dict]:
        """One dict of coordinates per site, in ``effect``'s order (``layer``, ``head``, ``position``)."""
        axes, shape = self.effect.axes, self.effect.shape
        layers = self.effect.coords.get("layer", list(range(shape[0])))
        out = []
        for idx in np.ndindex(*shape):
            row = {}
            for ax, i in zip(axes, idx):
                row[ax] = layers[i] if ax == "layer" else int(i)
            out.append(row)
        return out

    def to_records(self) -> list[dict]:
        """One row per patched site: coordinates, ``share``, ``normalized_effect``, ``metric_mean`` (the
        pandas-friendly table: ``pandas.DataFrame(res.to_records())``)."""
        share, eff, mean = (a.reshape(-1) for a in (self.share.numpy(), self.effect.numpy(), self.metric_mean.numpy()))
        return [{**c, "site": self.site, "direction": self.direction, "metric": self.metric, "share": float(s),
                 "normalized_effect": float(e), "metric_mean": float(m)}
                for c, s, e, m in zip(self.unit_labels(), share, eff, mean)]

    def to_frame(self):
        """:meth:`to_records` as a ``pandas.DataFrame`` (needs pandas)."""
        return _frame(self.to_records())

    def summary(self, k: int = 5) -> str:
        """A few lines: the runs' metric and the ``k`` sites carrying the largest share."""
        rows = sorted(self.to_records(), key=lambda r: -abs(r["share"]) if r["share"] == r["share"] else 0)[:k]
        top = ", ".join(f"{_site_name(r)} {r['share']:.2f}" for r in rows)
        return (f"{self.direction} {self.site}, {self.n_prompts} prompts, metric {self.metric}: clean "
                f"{self.clean_mean:.3f}, corrupted {self.corrupted_mean:.3f}\nlargest share of the gap: {top}")

    def __str__(self) -> str:
        return self.summary()

    def decisions(self, *, alpha: float = 0.05, min_share: float | None = None):
        """Every site's share with its interval and Holm-adjusted p-value: :func:`circuitry.stats.decide.decide_sites`
        on the per-prompt changes (the decision ``circuitry analyze`` makes for a head). Needs 2 or more prompts."""
        return decide_changes(self.per_prompt.numpy().reshape(-1, self.n_prompts), self.clean, self.corrupted,
                              [_site_name(r) for r in self.unit_labels()], direction=self.direction, level="head",
                              alpha=alpha, min_share=min_share)

    def _table(self) -> Table:
        return site_table(self, f"PatchResult: {self.direction} {self.site}, metric {self.metric}",
                          [_site_name(r) for r in self.unit_labels()], self.share.numpy().reshape(-1).tolist(),
                          "site")

    def heatmap(self, path: str | Path, *, vmin: float | None = None, vmax: float | None = None) -> Path:
        """Draw the share of the gap: a ``layer x head`` (or ``layer/head x position``) heatmap whose colour
        bar names the quantity (:func:`circuitry.metrics.share_label`), on the share's natural range
        ``[-1, 1]`` with 0 white (a site with noise of +-0.001 is white, not saturated), unless ``vmin`` /
        ``vmax`` are given; shares beyond it (overshoot) take the end colours and the bar an arrow."""
        from circuitry.metrics import share_label
        from circuitry.plots import heatmap

        arr = self.share.numpy()
        axes = self.effect.axes
        layers = self.effect.coords.get("layer", list(range(arr.shape[0])))
        title = f"{self.direction} {self.site}: share of the {self.metric} gap"
        kw = {"title": title, "center": 0.0, "natural": (-1.0, 1.0), "vmin": vmin, "vmax": vmax,
              "cbar_label": share_label(self.metric, self.direction, short=True)}
        if axes == ("layer", "head"):
            return heatmap(arr, path, yticklabels=[str(l) for l in layers], **kw)
        if axes == ("layer",):
            return heatmap(arr[:, None], path, xlabel="", xticklabels=[""], yticklabels=[str(l) for l in layers], **kw)
        if axes == ("layer", "position"):
            return heatmap(arr, path, xlabel="position", yticklabels=[str(l) for l in layers], annotate=False, **kw)
        flat = arr.reshape(-1, arr.shape[-1])
        labels = [f"L{l}H{h}" for l in layers for h in range(arr.shape[1])]
        return heatmap(flat, path, xlabel="position", ylabel="head", yticklabels=labels, annotate=False, **kw)


def decide_changes(per_prompt, clean, corrupted, labels: list[str], *, direction: str, level: str,
                   alpha: float = 0.05, min_share: float | None = None):
    """:func:`circuitry.stats.decide.decide_sites` on a patching result's raw metric ``per_prompt [site, prompt]``:
    the change each site makes, signed so that positive carries the gap (noising ``M_clean - M_patched``,
    denoising ``M_patched - M_corrupted``), against the per-prompt gap ``M_clean - M_corrupted``."""
    from circuitry.stats.decide import MIN_SHARE, decide_sites

    p = np.asarray(per_prompt, dtype=float)
    c, k = np.asarray(clean, dtype=float), np.asarray(corrupted, dtype=float)
    changes = c - p if direction == "noising" else p - k
    return decide_sites(changes, c - k, labels=labels, level=level, alpha=alpha,
                        min_share=MIN_SHARE if min_share is None else min_share)


def site_table(res, title: str, labels: list[str], shares: list[float], noun: str) -> Table:
    """The display table of a patching result (:class:`PatchResult`, ``PathPatchResult``): the sites with the
    largest |share| with the interval and adjusted p-value of :meth:`PatchResult.decisions`' test, when the
    result has 2 or more prompts with finite values (otherwise the shares alone)."""
    clean, corr = float(np.mean(res.clean)), float(np.mean(res.corrupted))
    notes = [f"{res.n_prompts} prompts; clean {clean:.3f}, corrupted {corr:.3f}, gap {clean - corr:.3f}; share = "
             f"share of the gap the {noun} carries (1 = all of it)"]
    from circuitry.errors import InputError

    try:
        fam = res.decisions()
    except InputError:  # one prompt, or a non-finite metric: no test, the shares alone
        fam = None
    if fam is None:
        rows = ranked(list(zip(labels, shares)), key=lambda r: r[1])
        return Table(title, (noun, "share"), rows, notes=notes + ["no test (fewer than 2 prompts or a "
                                                                   "non-finite metric)"], noun=noun)
    lv = int(round(fam.confidence_level * 100))
    rows = [(d.site, d.share, interval(d.ci_low, d.ci_high), d.pvalue_adjusted, "yes" if d.member else "")
            for d in ranked(fam.sites, key=lambda d: d.share)]
    notes.append(f"test: {fam.describe()}")
    return Table(title, (noun, "share", f"{lv}% CI", f"p_adj ({fam.correction})", "member"), rows, notes=notes,
                 noun=noun)


def _site_name(r: dict) -> str:
    name = f"L{r['layer']}" + (f"H{r['head']}" if "head" in r else "")
    return name + (f"@{r['position']}" if "position" in r else "")


def _frame(records: list[dict]):
    try:
        import pandas as pd
    except ImportError:
        from circuitry.errors import InputError

        raise InputError("to_frame() needs pandas, which is not installed. Fix: pip install pandas, or use "
                         "to_records() (a list of dicts)") from None
    return pd.DataFrame.from_records(records)


class AblationResult(Displayed, Frozen):
    """Metric per ablated head set and prompt, with the unablated baseline.

    ``per_prompt`` has axes ``("set", "prompt")``; ``effect`` is the mean over prompts of
    ``metric(ablated) - metric(unablated)`` per set."""

    method: str
    metric: str
    head_sets: list[list[str]]
    per_prompt: NamedArray
    baseline: list[float]
    effect: list[float]
    n_prompts: int
    provenance: Provenance

    def _table(self) -> Table:
        """The sets with the largest |effect|, with the interval of the mean change over prompts, Hall's p
        and Holm's adjusted p over the sets (the effects alone with fewer than 2 prompts)."""
        from circuitry.stats.intervals import mean_intervals
        from circuitry.stats.multiple import adjust_pvalues
        from circuitry.stats.skew_t import SKEW_T_TEST, skew_t_pvalue

        names = ["+".join(hs) or "(none)" for hs in self.head_sets]
        notes = [f"{self.method} ablation, metric {self.metric}, {self.n_prompts} prompts; unablated "
                 f"{np.mean(self.baseline):.3f}; effect = mean of metric(ablated) - metric(unablated)"]
        diff = self.per_prompt.numpy() - np.asarray(self.baseline)[None]
        if self.n_prompts < 2 or not np.isfinite(diff).all():
            return Table(f"AblationResult: {len(names)} head sets", ("set", "effect"),
                         ranked(list(zip(names, self.effect)), key=lambda r: r[1]),
                         notes=notes + ["no test (fewer than 2 prompts or a non-finite metric)"], noun="set")
        low, high, _, used = mean_intervals(diff.T, rng=0)
        p = skew_t_pvalue(diff)
        adj = adjust_pvalues(p, method="holm")
        rows = ranked([(n, e, interval(lo, hi), pv, pa) for n, e, lo, hi, pv, pa in
                       zip(names, self.effect, low.tolist(), high.tolist(), p.tolist(), adj.tolist())],
                      key=lambda r: r[1])
        notes.append(f"test: {SKEW_T_TEST}, Holm over {len(names)} sets; interval: {used} bootstrap of the mean")
        return Table(f"AblationResult: {len(names)} head sets",
                     ("set", "effect", percent(0.95), "p", "p_adj (holm)"), rows, notes=notes, noun="set")
