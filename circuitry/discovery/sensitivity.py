"""Sensitivity of a circuit to the choices behind it: the same question under every ablation and metric.

A kept circuit depends on what a patched edge is fed (the ablation, :mod:`circuitry.discovery.ablations`)
and on the metric the edges are scored in (Zhang & Nanda 2024 show both move activation-patching
conclusions; Miller et al. 2024 on how faithfulness depends on the ablation). :func:`sensitivity_sweep`
scores the edges with one method under every combination of ``ablations`` x ``metrics`` and decides each
edge's membership of the kept circuit in each *setting* exactly as ``discover`` does
(:func:`circuitry.discovery.search.score_edges`: a share of the gap >= ``threshold`` and a Benjamini-Hochberg
adjusted p <= ``alpha`` of Hall's t over prompts). Per edge the conclusion is

- **robust** (``"robust in"`` / ``"robust out"``): the same in every setting;
- **fragile**: it differs somewhere; ``flips`` names the settings whose conclusion differs from the
  baseline setting's (the first ablation with the first metric: by default the counterfactual ablation
  and the logit difference, ``discover``'s defaults).

Settings whose clean-corrupted (or clean-ablated) gap is zero decide nothing and are skipped with their
reason. Cost: one scoring run per setting (EAP-IG by default: ``steps`` forward and backward passes each;
15 settings by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from circuitry.display import Displayed, Table
from circuitry.errors import bad_value
from circuitry.provenance import Frozen, Provenance

Conclusion = Literal["robust in", "robust out", "fragile"]
"""``"robust in"``: in the kept circuit in every setting; ``"robust out"``: in none; ``"fragile"``: it
depends on the setting (``EdgeSensitivity.flips`` says where)."""
DEFAULT_METRICS: tuple[str, ...] = ("logit_diff", "answer_prob", "kl")


class EdgeSensitivity(Frozen):
    """One edge: its conclusion, its membership in each setting (``kept``, aligned with the report's
    ``settings``) and the settings that flip the baseline's conclusion."""

    edge: str
    conclusion: Conclusion
    kept: list[bool]
    flips: list[str]


class SensitivityReport(Displayed, Frozen):
    """Every edge's conclusion across ``settings`` (``"ablation/metric"``); ``skipped`` the settings that
    decided nothing, with the reason; ``n_kept`` the kept circuit's size per setting."""

    method: str
    settings: list[str]
    baseline: str
    skipped: dict[str, str]
    n_kept: list[int]
    edges: list[EdgeSensitivity]
    threshold: float
    alpha: float
    n_prompts: int
    provenance: Provenance

    def count(self, conclusion: Conclusion) -> int:
        return sum(e.conclusion == conclusion for e in self.edges)

    def fragile(self) -> list[EdgeSensitivity]:
        return [e for e in self.edges if e.conclusion == "fragile"]

    def summary(self, k: int = 10) -> str:
        head = (f"{self.method} kept circuits under {len(self.settings)} settings (baseline {self.baseline}; "
                f"share >= {self.threshold:g}, BH p <= {self.alpha:g}, {self.n_prompts} prompts): "
                f"{self.count('robust in')} edges robustly in, {self.count('fragile')} fragile, "
                f"{self.count('robust out')} robustly out")
        lines = [head,
                 "  kept per setting: " + ", ".join(f"{s} {n}" for s, n in zip(self.settings, self.n_kept))]
        for s, why in self.skipped.items():
            lines.append(f"  skipped {s}: {why}")
        frag = sorted(self.fragile(), key=lambda e: -sum(e.kept))
        for e in frag[:k]:
            base = "in" if e.kept[0] else "out"
            lines.append(f"  {e.edge}: {base} at the baseline, flipped by {', '.join(e.flips)}")
        if len(frag) > k:
            lines.append(f"  ... and {len(frag) - k} more fragile edges")
        return "\n".join(lines)

    def _table(self) -> Table:
        """The fragile edges first (kept in most settings first), then the robustly kept, then the rest, with
        the settings that keep each and those that flip the baseline's conclusion."""
        order = {"fragile": 0, "robust in": 1, "robust out": 2}
        rows = [(e.edge, e.conclusion, f"{sum(e.kept)}/{len(e.kept)}", ", ".join(e.flips))
                for e in sorted(self.edges, key=lambda e: (order[e.conclusion], -sum(e.kept)))]
        notes = [f"{self.method}, {self.n_prompts} prompts; an edge is kept in a setting when its share >= "
                 f"{self.threshold:g} and its Benjamini-Hochberg adjusted p (Hall's t over prompts) <= "
                 f"{self.alpha:g}",
                 f"{self.count('fragile')} fragile, {self.count('robust in')} robustly in, "
                 f"{self.count('robust out')} robustly out; kept per setting: "
                 + ", ".join(f"{s} {n}" for s, n in zip(self.settings, self.n_kept)),
                 *(f"skipped {s}: {why}" for s, why in self.skipped.items())]
        return Table(f"SensitivityReport: {len(self.edges)} edges under {len(self.settings)} settings (baseline "
                     f"{self.baseline})", ("edge", "conclusion", "kept in", "flipped by"), rows, notes=notes,
                     noun="edge")


def sensitivity_sweep(model, data, *, method: str = "eap-ig", ablations: Sequence[str] | None = None,
                      metrics: Sequence[str] = DEFAULT_METRICS, steps: int = 5, threshold: float = 0.05,
                      alpha: float = 0.01, seed: int = 0, progress: bool = False) -> SensitivityReport:
    """Score the edges with ``method`` under every ablation x metric and compare the kept circuits.

    Parameters
    ----------
    model, data
        As in :func:`~circuitry.discovery.search.score_edges`.
    method
        A scoring method with a per-edge decision: ``"exact"``, ``"eap"`` or ``"eap-ig"``.
    ablations
        Default every ablation (:data:`circuitry.discovery.ablations.ABLATIONS`); the first is the baseline's.
    metrics
        Default logit difference, answer probability and KL; the first is the baseline's.
    steps, threshold, alpha, seed
        As in :func:`~circuitry.discovery.search.score_edges` (``seed`` also seeds the resample ablation).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> m = load_model("zoo:attn-only-2l"); d = make_task("induction", m, n_prompts=8)
    >>> rep = sensitivity_sweep(m, d, ablations=["counterfactual", "zero"], metrics=["logit_diff"])
    >>> rep.settings
    ['counterfactual/logit_diff', 'zero/logit_diff']
    """
    from circuitry.discovery.ablations import ABLATIONS, check_ablation
    from circuitry.discovery.search import score_edges
    from circuitry.errors import InputError
    from circuitry.provenance import make_provenance

    if method not in ("exact", "eap", "eap-ig"):
        raise bad_value("method", method, "'exact', 'eap' or 'eap-ig' (a per-edge decision)", "use method='eap-ig'")
    abl = list(ABLATIONS if ablations is None else ablations)
    for a in abl:
        check_ablation(a)
    mets = list(metrics)
    if not abl or not mets or len(set(abl)) != len(abl) or len(set(mets)) != len(mets):
        raise bad_value("ablations/metrics", f"{abl} x {mets}", "one or more distinct ablations and metrics")
    settings, kept, skipped = [], [], {}
    names: list[str] = []
    grid = [(a, m) for a in abl for m in mets]
    if progress:
        from tqdm.auto import tqdm

        grid = tqdm(grid, desc="sensitivity", leave=False)
    for a, m in grid:
        name = f"{a}/{m}"
        try:
            res = score_edges(model, data, method=method, metric=m, ablation=a, steps=steps, threshold=threshold,
                              alpha=alpha, seed=seed, progress=False)
        except InputError as err:  # e.g. a metric the task cannot feed
            skipped[name] = str(err).split(". Fix")[0]
            continue
        if not np.isfinite(res.gap) or res.gap == 0:
            skipped[name] = f"the gap is {res.gap:g}: nothing to decide"
            continue
        settings.append(name)
        kept.append(np.asarray(res.in_circuit, dtype=bool))
        names = res.edges
    if not settings:
        raise InputError("no setting decided anything: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    K = np.stack(kept)  # [setting, edge]
    edges = []
    for e, edge in enumerate(names):
        col = K[:, e]
        conclusion = "robust in" if col.all() else "robust out" if not col.any() else "fragile"
        flips = [settings[s] for s in range(1, len(settings)) if col[s] != col[0]]
        edges.append(EdgeSensitivity(edge=edge, conclusion=conclusion, kept=col.tolist(), flips=flips))
    return SensitivityReport(method=method, settings=settings, baseline=settings[0], skipped=skipped,
                             n_kept=K.sum(1).tolist(), edges=edges, threshold=float(threshold), alpha=float(alpha),
                             n_prompts=len(data), provenance=make_provenance(model, dataset=data, seed=seed,
                                                                             task=data.task, method=method))
