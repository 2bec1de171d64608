"""How much an edge ranking depends on the prompt sample.

Found circuits shift with the prompts they were found on. Resample the prompts with replacement,
re-rank the edges on each resample and compare with the ranking on all prompts: the Jaccard index of
the top-``k`` edge sets (``|A & B| / |A | B|``) at several ``k`` and Spearman's rank correlation of
``|score|`` over all edges (:func:`scipy.stats.spearmanr`). For exact patching, EAP and EAP-IG an
edge's score is a mean over prompts, so a resample only re-averages the per-prompt scores already
measured; ACDC has no per-prompt scores, and :func:`circuitry.discovery.search.score_edges` is rerun on
each resample (:func:`rerun_stability`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from circuitry.discovery.faithfulness import PERCENTS, circuit_sizes
from circuitry.discovery.results import EdgeScores, top_mask
from circuitry.errors import bad_value
from circuitry.provenance import Frozen
from circuitry.stats import ConfidenceInterval
from circuitry.stats._common import resolve_rng


class RankingStability(Frozen):
    """Agreement between the ranking on all prompts and the rankings on bootstrap resamples.

    ``k[i]`` edges (``percents[i]`` % of all), ``jaccard[i]`` the mean Jaccard index of the top-``k``
    sets over resamples with ``jaccard_ci[i]`` its percentile interval; ``spearman`` the mean rank
    correlation of ``|score|`` with its interval; ``per_resample_*`` the raw values."""

    method: str
    percents: list[float]
    k: list[int]
    jaccard: list[float]
    jaccard_ci: list[ConfidenceInterval]
    spearman: float
    spearman_ci: ConfidenceInterval
    per_resample_jaccard: list[list[float]]
    per_resample_spearman: list[float]
    n_resamples: int
    confidence_level: float
    seed: int | None

    def summary(self) -> str:
        seen = dict(zip(self.k, self.jaccard))  # small percentages can give the same k
        js = ", ".join(f"top {k}: {j:.2f}" for k, j in seen.items())
        return (f"{self.method}: Spearman {self.spearman:.2f} ([{self.spearman_ci.low:.2f}, {self.spearman_ci.high:.2f}])"
                f" over {self.n_resamples} resamples; Jaccard {js}")


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def compare_rankings(method: str, full: np.ndarray, resampled: Sequence[np.ndarray], *, percents: Sequence[float],
                     confidence_level: float, seed: int | None) -> RankingStability:
    """:class:`RankingStability` of the rankings ``resampled`` (one score vector each) against ``full``."""
    from scipy.stats import spearmanr

    ks = circuit_sizes(full.size, [p for p in percents if p < 100])
    jac = np.array([[_jaccard(top_mask(full, k), top_mask(r, k)) for k in ks] for r in resampled])
    rho = np.array([spearmanr(np.abs(full), np.abs(r)).statistic for r in resampled])
    q = (1 - confidence_level) / 2
    ci = lambda v: ConfidenceInterval(low=float(np.quantile(v, q)), high=float(np.quantile(v, 1 - q)))  # noqa: E731
    return RankingStability(
        method=method, percents=[p for p in percents if p < 100], k=ks, jaccard=jac.mean(0).tolist(),
        jaccard_ci=[ci(jac[:, i]) for i in range(len(ks))], spearman=float(np.nanmean(rho)), spearman_ci=ci(rho),
        per_resample_jaccard=jac.tolist(), per_resample_spearman=rho.tolist(), n_resamples=len(resampled),
        confidence_level=confidence_level, seed=seed)


def ranking_stability(scores: EdgeScores, *, n_resamples: int = 200, percents: Sequence[float] = PERCENTS,
                      confidence_level: float = 0.95, rng: int | None = 0) -> RankingStability:
    """Stability of a per-prompt edge ranking (exact, EAP, EAP-IG) across bootstrap resamples of the prompts.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> from circuitry.discovery import score_edges
    >>> m = load_model("zoo:attn-only-2l")
    >>> st = ranking_stability(score_edges(m, make_task("induction", m, n_prompts=8), method="eap",
    ...                                    progress=False), n_resamples=20)
    >>> 0 < st.spearman <= 1
    True
    """
    if scores.per_prompt is None:
        raise bad_value("scores", scores.method, "scores with per-prompt values (exact, eap, eap-ig)",
                        "for ACDC use rerun_stability")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 2:
        raise bad_value("n_resamples", n_resamples, "an integer >= 2", "use n_resamples=200")
    pp = scores.per_prompt.numpy()
    gen, seed = resolve_rng(rng)
    n = pp.shape[1]
    res = [pp[:, gen.integers(0, n, n)].mean(1) for _ in range(n_resamples)]
    return compare_rankings(scores.method, pp.mean(1), res, percents=percents, confidence_level=confidence_level,
                            seed=seed)


def rerun_stability(scores: EdgeScores, data, rescore: Callable, *, n_resamples: int = 5,
                    percents: Sequence[float] = PERCENTS, confidence_level: float = 0.95,
                    rng: int | None = 0, progress: bool = True) -> RankingStability:
    """Stability by rerunning a method on bootstrap resamples of ``data``: ``rescore(subset) -> EdgeScores``
    (ACDC: ``lambda d: score_edges(model, d, method="acdc", ...)``). Costs one full run per resample."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 2:
        raise bad_value("n_resamples", n_resamples, "an integer >= 2", "use n_resamples=5")
    gen, seed = resolve_rng(rng)
    n = len(data)
    draws = range(n_resamples)
    if progress:
        from tqdm.auto import tqdm

        draws = tqdm(draws, desc=f"{scores.method} stability: resamples", leave=False)
    res = [np.asarray(rescore(data.subset(gen.integers(0, n, n).tolist())).score) for _ in draws]
    return compare_rankings(scores.method, np.asarray(scores.score), res, percents=percents,
                            confidence_level=confidence_level, seed=seed)
