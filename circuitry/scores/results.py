"""Result types of :mod:`circuitry.scores`: frozen, JSON round-trippable, with provenance.

* :class:`HeadScores`: one value per head (``NamedArray`` with axes ``("layer", "head")``), the mean
  over sampled sequences with a bootstrap confidence interval per head, plus the per-sample values.
* :class:`CompositionScores`: Q-, K- or V-composition for every earlier -> later head pair, raw, the
  random-matrix baseline (mean and spread) and baseline-subtracted.
* :class:`ScalarScore`: one number per model (the ICL score) with its bootstrap interval.
* :class:`ScoreReport`: everything ``circuitry scores`` writes to ``scores.json``.

The confidence intervals of means over sequences are those of :func:`circuitry.stats.bootstrap_ci`'s
default ``method="auto"`` (the resampling unit is the sequence): the studentized bootstrap from 8 sequences
(Hall 1988), Student's t below. At ``circuitry scores``' default of 10 sequences on the shipped model the
head-score intervals of heads no more skewed than exponential data cover 0.929-0.960 per detector (BCa, the
former default: 0.869-0.893), all heads 0.870-0.951; a head whose mean is carried by a few sequences covers
~0.5 with any method (rare retrieval hits ~0) (``tests/scores/test_interval_calibration.py``, ``docs/statistics.md``).
The bootstrap draws from its own random stream, a child of the token seed
(:func:`bootstrap_seed`), so it never reuses the numbers that drew the tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from circuitry.display import TOP_ROWS, Displayed, Table, interval, percent
from circuitry.errors import InputError
from circuitry.labels import head_label
from circuitry.provenance import Frozen, NamedArray, Provenance
from circuitry.scores.significance import HeadSignificance

CompositionKind = Literal["Q", "K", "V"]
"""``"Q"``: the earlier head's output feeds the later head's queries; ``"K"``: its keys; ``"V"``: its
values (Elhage et al. 2021)."""


def _spread(mat: np.ndarray) -> tuple[float, ...]:
    """``(max |value|,)`` over the finite values, ``()`` when there are none."""
    finite = np.abs(mat[np.isfinite(mat)])
    return (float(finite.max()),) if finite.size else ()


def bootstrap_seed(seed: int | None) -> int | None:
    """The seed of the bootstrap over sequences for a score seeded with ``seed``: the first
    :func:`~circuitry.stats.spawn_seeds` child of ``seed`` (``None`` stays ``None``: a fresh seed is drawn and
    recorded). The tokens are drawn with ``seed`` itself, so the two procedures use independent streams.

    >>> bootstrap_seed(0) != 0 and bootstrap_seed(0) == bootstrap_seed(0)
    True
    """
    from circuitry.stats import spawn_seeds

    return None if seed is None else spawn_seeds(seed, 1)[0]


class BootstrapInfo(Frozen):
    """How the intervals of a result were computed (scipy's vocabulary).

    ``method`` is the interval used (``"studentized"`` from 8 sequences, ``"t"`` below; ``"BCa"`` in results
    written before the default changed); ``seed`` the bootstrap's own seed (:func:`bootstrap_seed` of the
    score's seed)."""

    confidence_level: float = 0.95
    method: str = "BCa"
    n_resamples: int = 2000
    seed: int | None = 0
    test: str = ("bootstrap over sampled sequences (circuitry.stats.bootstrap_ci, method='auto': studentized "
                 "bootstrap from 8 sequences, Student's t below)")


class HeadScores(Displayed, Frozen):
    """A score for every head: mean over ``n_samples`` sequences and a bootstrap interval.

    Attributes
    ----------
    name, description
        The detector's name (``"induction"``) and what it measures.
    values, ci_low, ci_high
        ``NamedArray`` with axes ``("layer", "head")``: the mean over samples and the interval bounds.
    per_sample
        ``NamedArray`` ``("sample", "layer", "head")``: the per-sequence values the mean is taken over
        (``None`` for weight-based scores, which have no samples).
    n_samples
        Number of sequences (0 for weight-based scores).
    recipe
        The sequence recipe (block length, repeats, BOS, excluded tokens, seed...).
    significance
        The per-head test against the detector's null, corrected over heads
        (:class:`~circuitry.scores.significance.HeadSignificance`); ``None`` for a detector without a null.
    """

    name: str
    description: str
    values: NamedArray
    ci_low: NamedArray | None = None
    ci_high: NamedArray | None = None
    per_sample: NamedArray | None = None
    n_samples: int = 0
    bootstrap: BootstrapInfo | None = None
    recipe: dict[str, Any] = Field(default_factory=dict)
    significance: HeadSignificance | None = None
    provenance: Provenance

    def significant_heads(self) -> list[str]:
        """Labels of the heads significant for this detector (empty without a null)."""
        return [] if self.significance is None else list(self.significance.significant)

    def numpy(self) -> np.ndarray:
        """The ``[layer, head]`` means as a float array."""
        return self.values.numpy()

    def best(self, layer: int | None = None) -> str:
        """Label of the highest-scoring head (of ``layer`` if given), e.g. ``"L1H3"``."""
        arr = self.numpy()
        if layer is not None:
            return head_label(layer, int(np.nanargmax(arr[layer])))
        lay, h = np.unravel_index(int(np.nanargmax(arr)), arr.shape)
        return head_label(int(lay), int(h))

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` highest heads as ``(label, mean)``, highest first."""
        arr = self.numpy()
        order = np.argsort(-np.nan_to_num(arr, nan=-np.inf), axis=None)[:k]
        return [(head_label(*map(int, np.unravel_index(i, arr.shape))), float(arr.flat[i])) for i in order]

    def _table(self) -> Table:
        """The highest-scoring heads with their interval and, with a null, the excess over it and Holm's p."""
        from circuitry.labels import parse_head

        sig, arr = self.significance, self.numpy()
        rows = []
        for label, mean in self.top(TOP_ROWS):
            l, h = parse_head(label)
            ci = interval(*(None if a is None else float(a.numpy()[l, h]) for a in (self.ci_low, self.ci_high)))
            rows.append((label, mean, ci) + (() if sig is None else (
                float(sig.excess.numpy()[l, h]), float(sig.adjusted_pvalue.numpy()[l, h]),
                "yes" if label in sig.significant else "")))
        cols = ("head", "score", "CI") + (() if sig is None else ("excess over null", f"p_adj ({sig.method})",
                                                                   "significant"))
        notes = [self.description, f"{self.n_samples} sequences; {self.provenance.model_id}"]
        if sig is not None:
            notes.append(f"test: {sig.test}; null: {sig.null_description}; min effect {sig.min_effect:g}, alpha "
                         f"{sig.alpha:g}; significant: {', '.join(sig.significant) or 'none'}")
        return Table(f"HeadScores: {self.name}", cols, rows, notes=notes, total=int(np.isfinite(arr).sum()),
                     noun="head")

    def heatmap(self, path: str | Path, *, vmin: float | None = None, vmax: float | None = None) -> Path:
        """Write a layer x head heatmap of the means (``circuitry.plots.heatmap``). Scores that are shares
        (every value in ``[0, 1]``: attention shares, hit rates) are drawn on ``[0, 1]``, so a duplicate-token
        score of 0.06 is dark, not the top colour; others (a loss in nats) on a scale anchored at 0;
        ``vmin``/``vmax`` set the limits instead."""
        from circuitry.plots import heatmap

        arr = self.numpy()
        finite = arr[np.isfinite(arr)]
        share = finite.size > 0 and finite.min() >= 0 and finite.max() <= 1
        return heatmap(arr, path, title=f"{self.name} score ({self.provenance.model_id})",
                       cbar_label=f"{self.name} score (mean over sequences)", natural=(0.0, 1.0) if share else None,
                       vmin=vmin, vmax=vmax)


class CompositionScores(Displayed, Frozen):
    """Composition scores of one kind for every pair (earlier head -> later head).

    Attributes
    ----------
    kind
        ``"Q"``, ``"K"`` or ``"V"``.
    raw, subtracted
        ``NamedArray`` with axes ``("src_layer", "src_head", "dst_layer", "dst_head")``; entries with
        ``src_layer >= dst_layer`` are missing (``None`` in JSON, NaN in :meth:`numpy`).
        ``subtracted = raw - baseline_mean``.
    baseline_mean, baseline_std, baseline_n_draws, baseline_distribution
        The score of random heads of the same shapes: mean and standard deviation over
        ``baseline_n_draws`` simulated pairs, and how they were drawn.
    convention
        The matrix products, in circuitry's row-vector convention.
    """

    kind: CompositionKind
    raw: NamedArray
    subtracted: NamedArray
    baseline_mean: float
    baseline_std: float
    baseline_n_draws: int
    baseline_distribution: str
    convention: str
    provenance: Provenance

    def numpy(self, *, which: Literal["raw", "subtracted"] = "raw") -> np.ndarray:
        """``[src_layer, src_head, dst_layer, dst_head]`` array (NaN for invalid pairs)."""
        return (self.raw if which == "raw" else self.subtracted).numpy()

    def score(self, src: str | tuple[int, int], dst: str | tuple[int, int]) -> float:
        """Raw score of one pair, e.g. ``score("L0H2", "L1H5")``."""
        from circuitry.labels import parse_head

        (l1, h1), (l2, h2) = parse_head(src), parse_head(dst)
        return float(self.numpy()[l1, h1, l2, h2])

    def pairs(self, k: int | None = None) -> list[tuple[str, str, float, float]]:
        """Pairs as ``(src, dst, raw, raw - baseline)``, highest raw score first (the top ``k``)."""
        arr = self.numpy()
        idx = np.argwhere(np.isfinite(arr))
        rows = [(head_label(a, b), head_label(c, d), float(arr[a, b, c, d]),
                 float(arr[a, b, c, d] - self.baseline_mean)) for a, b, c, d in idx]
        rows.sort(key=lambda r: -r[2])
        return rows if k is None else rows[:k]

    def _table(self) -> Table:
        """The pairs with the highest raw score, with the excess over the random-matrix baseline in its
        standard deviations."""
        sd = self.baseline_std or float("nan")
        rows = [(f"{a}->{b}", raw, sub, sub / sd) for a, b, raw, sub in self.pairs(TOP_ROWS)]
        n = int(np.isfinite(self.numpy()).sum())
        return Table(f"CompositionScores: {self.kind}-composition, {self.provenance.model_id}",
                     ("pair", "score", "minus baseline", "z (baseline sd)"), rows,
                     notes=[f"random-matrix baseline {self.baseline_mean:.3f} ± {self.baseline_std:.3f} over "
                            f"{self.baseline_n_draws} draws ({self.baseline_distribution})"], total=n, noun="pair")

    def heatmap(self, path: str | Path, *, limit: float | None = None, vmin: float | None = None,
                vmax: float | None = None) -> Path:
        """Heatmap of the baseline-subtracted scores: rows = source heads (layers 0..L-2),
        columns = destination heads (layers 1..L-1); invalid pairs blank. The colour scale is symmetric
        around 0, half-width ``limit`` (default the largest |score - baseline|; :func:`composition_heatmaps`
        passes one for Q, K and V so the figures share a scale) but at least 3 standard deviations of the
        random-matrix baseline, so pairs within the baseline's noise stay pale; ``vmin``/``vmax`` set the
        limits instead."""
        from circuitry.plots import heatmap

        arr = self.numpy(which="subtracted")
        n_layers, n_heads = arr.shape[:2]
        mat = arr[: n_layers - 1, :, 1:, :].reshape((n_layers - 1) * n_heads, (n_layers - 1) * n_heads)
        rows = [head_label(a, b) for a in range(n_layers - 1) for b in range(n_heads)]
        cols = [head_label(a, b) for a in range(1, n_layers) for b in range(n_heads)]
        return heatmap(mat, path, title=f"{self.kind}-composition minus baseline {self.baseline_mean:.3f}",
                       xlabel="destination head", ylabel="source head", xticklabels=cols, yticklabels=rows,
                       center=0.0, annotate=mat.size <= 256, limit=max(limit or 0.0, *_spread(mat),
                                                                        3 * self.baseline_std) or 1.0,
                       vmin=vmin, vmax=vmax, cbar_label=f"{self.kind}-composition score minus random-matrix "
                                                        f"baseline (baseline sd {self.baseline_std:.3f})")


class ScalarScore(Displayed, Frozen):
    """One number per model with a bootstrap interval over sequences (e.g. the ICL score)."""

    name: str
    description: str
    statistic: float
    ci_low: float
    ci_high: float
    per_sample: list[float]
    n_samples: int
    bootstrap: BootstrapInfo
    details: dict[str, Any] = Field(default_factory=dict)
    provenance: Provenance

    def _table(self) -> Table:
        """The statistic with its interval over sequences and how the interval was made."""
        b = self.bootstrap
        return Table(f"ScalarScore: {self.name}, {self.provenance.model_id}",
                     ("score", "value", percent(b.confidence_level), "sequences"),
                     [(self.name, self.statistic, interval(self.ci_low, self.ci_high), self.n_samples)],
                     notes=[self.description, f"interval: {b.method} ({b.test}), {b.n_resamples} resamples, "
                                              f"seed {b.seed}"], noun="score")


class ScoreReport(Displayed, Frozen):
    """Everything ``circuitry scores`` computes: head scores by detector name, weight-based scores,
    composition scores by kind and the ICL score."""

    head_scores: dict[str, HeadScores]
    composition: dict[str, CompositionScores]
    icl: ScalarScore | None = None
    provenance: Provenance

    def catalogue(self) -> dict[str, list[str]]:
        """Every head labelled with the detectors for which it is significant (heads without any label are
        left out), e.g. ``{"L1H5": ["induction", "duplicate_token"]}``; detectors without a null label nothing."""
        return head_catalogue(self.head_scores)

    def _table(self) -> Table:
        """One row per score: the top row of its own table (the highest head, pair or the model's value) with
        its interval, adjusted p and the number of significant heads."""
        rows = []
        for name, hs in self.head_scores.items():
            head, value, ci, *test = hs._shown_table().rows[0]
            rows.append((name, head, value, ci, test[1] if test else None,
                         "–" if hs.significance is None else len(hs.significance.significant)))
        for kind, cs in self.composition.items():
            top = cs._shown_table().rows
            rows += [(f"{kind}-composition", top[0][0], top[0][1], "–", None, "–")] if top else []
        if self.icl is not None:
            _, value, ci, _ = self.icl._shown_table().rows[0]
            rows.append((self.icl.name, "model", value, ci, None, "–"))
        notes = ["head scores: the highest head, mean over sequences with its bootstrap interval; p_adj: the test "
                 "against the detector's null, corrected over heads; composition: the highest raw pair score"]
        return Table(f"ScoreReport: {self.provenance.model_id}, {len(self.head_scores)} head scores",
                     ("score", "top", "value", "CI", "p_adj", "significant heads"), rows, notes=notes, k=15,
                     noun="score")


def head_catalogue(head_scores: dict[str, HeadScores]) -> dict[str, list[str]]:
    """``{head: [detector names]}`` from the significant heads of each :class:`HeadScores`, sorted by head."""
    from circuitry.labels import parse_head

    out: dict[str, list[str]] = {}
    for name, s in head_scores.items():
        for h in s.significant_heads():
            out.setdefault(h, []).append(name)
    return dict(sorted(out.items(), key=lambda kv: parse_head(kv[0])))


def head_scores_from_samples(per_sample: np.ndarray, *, name: str, description: str, provenance: Provenance,
                             recipe: dict[str, Any], confidence_level: float = 0.95, n_resamples: int = 2000,
                             seed: int | None = 0, null: np.ndarray | None = None, min_effect: float = 0.1,
                             alpha: float = 0.05, correction: str = "holm",
                             null_description: str = "") -> HeadScores:
    """Mean and per-head bootstrap interval of ``per_sample [n_samples, layer, head]``.

    The intervals are :func:`circuitry.stats.bootstrap_ci`'s default (``method="auto"``: studentized
    bootstrap from 8 sequences, Student's t below), computed for every head at once
    (:func:`circuitry.stats.intervals.mean_intervals`, the same resampled sequences for every head) with the
    bootstrap's own stream :func:`bootstrap_seed` ``(seed)``; with a single sample the interval is the point
    itself. Sequences whose values are NaN (a pattern detector's target selects no
    query there) are dropped; ``n_samples`` counts the sequences kept. With ``null`` (the expected score
    under the detector's null, broadcastable to ``per_sample``) each head is also tested
    (:func:`circuitry.scores.significance.head_significance` with ``min_effect``, ``alpha``, ``correction``).
    """
    from circuitry.scores.significance import head_significance
    from circuitry.stats.intervals import mean_intervals

    arr = np.asarray(per_sample, dtype=float)
    keep = np.isfinite(arr).all(axis=(1, 2))  # sequences without a target row are NaN for every head
    if not keep.any():
        raise InputError(f"detector {name!r} gave no finite score on any sequence")
    arr = arr[keep]
    sig = None
    if null is not None and arr.shape[0] >= 2:
        e = np.broadcast_to(np.asarray(null, dtype=float), (keep.size, *arr.shape[1:]))[keep]
        sig = head_significance(arr, e, min_effect=min_effect, alpha=alpha, method=correction,
                                null_description=null_description)
    n = arr.shape[0]
    boot_seed = bootstrap_seed(seed)
    if n < 2:
        low = high = arr[0]
        method = "none (one sequence)"
    else:
        low, high, _, method = mean_intervals(arr, confidence_level=confidence_level, n_resamples=n_resamples,
                                              rng=boot_seed)
    ax = ("layer", "head")
    return HeadScores(
        name=name, description=description, values=NamedArray.from_array(arr.mean(axis=0), ax),
        ci_low=NamedArray.from_array(low, ax), ci_high=NamedArray.from_array(high, ax),
        per_sample=NamedArray.from_array(arr, ("sample", *ax)), n_samples=n,
        bootstrap=BootstrapInfo(confidence_level=confidence_level, method=method, n_resamples=n_resamples,
                                seed=boot_seed),
        recipe=recipe, significance=sig, provenance=provenance)


def plot_catalogue(head_scores: dict[str, HeadScores], path: str | Path, *, title: str = "") -> Path:
    """Heatmap of every head (columns) by detector (rows): the mean excess over the detector's null on a fixed
    scale of +-1, the natural range of a share's excess (an excess of 0.05 is pale whatever the largest;
    ``ablation_loss`` is in nats and can exceed it: it takes the end colour and the bar an arrow); significant
    heads are marked ``*``.
    Detectors without a null are left out."""
    from circuitry.plots import _plt, save_figure

    rows = [(n, s.significance) for n, s in head_scores.items() if s.significance is not None]
    if not rows:
        raise InputError("no detector with a null among head_scores; nothing to plot")
    L, H = rows[0][1].excess.shape
    mat = np.stack([sig.excess.numpy().reshape(-1) for _, sig in rows])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.42 * L * H + 2.5), 0.45 * len(rows) + 1.8))
    span = 1.0  # the natural range of a share's excess; a loss (nats) beyond it takes the end colour
    im = ax.imshow(mat, cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto")
    cols = [head_label(a, b) for a in range(L) for b in range(H)]
    ax.set_xticks(range(len(cols)), cols, rotation=90)
    ax.set_yticks(range(len(rows)), [n for n, _ in rows])
    for i, (_, sig) in enumerate(rows):
        for lab in sig.significant:
            ax.text(cols.index(lab), i, "*", ha="center", va="center", fontsize=11, color="black")
    ax.set_xlabel("head")
    ax.set_ylabel("detector")
    ax.set_title(title or "head catalogue: excess over the null (* significant after correction)")
    over, under = bool(np.nanmax(mat) > span), bool(np.nanmin(mat) < -span)
    fig.colorbar(im, ax=ax, label=f"mean score minus null score (clipped to +-{span:.2g})",
                 extend="both" if over and under else "max" if over else "min" if under else "neither")
    return save_figure(fig, path)


def composition_heatmaps(compositions: "dict[str, CompositionScores]", folder: str | Path, *,
                         prefix: str = "composition_") -> list[Path]:
    """Write ``{prefix}{Q,K,V}.png`` to ``folder`` on one colour scale (centred on 0, half-width the largest
    |score - baseline| of the three), so that the figures compare."""
    lim = max((float(np.nanmax(np.abs(c.numpy(which="subtracted")), initial=0)) for c in compositions.values()),
              default=0.0) or 1.0
    return [c.heatmap(Path(folder) / f"{prefix}{kind}.png", limit=lim) for kind, c in compositions.items()]
