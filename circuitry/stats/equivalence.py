"""Equivalence of a circuit's and the full model's task scores, per prompt (Shi et al. 2024).

Statistic: on how many prompts the circuit scores higher than the model. If circuit and model behave
alike, that happens on about half of the prompts; ``epsilon`` is the tolerated departure from one half.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import stats

from circuitry.errors import InputError
from circuitry.provenance import Frozen
from circuitry.stats._common import RngLike, check_choice, finite_1d, resolve_rng

EquivalenceNull = Literal["not_equivalent", "equivalent"]
"""``"not_equivalent"`` (default): H0 ``|theta - 1/2| >= epsilon``, tested by two one-sided binomial tests
(TOST, Schuirmann 1987); a small p-value *supports equivalence*. ``"equivalent"``: Shi et al.'s
orientation, H0 ``|theta - 1/2| <= epsilon``; a small p-value shows the circuit is *not* equivalent."""


class EquivalenceTest(Frozen):
    """Result of :func:`equivalence_test`. ``theta`` is P(circuit score > model score) on a prompt."""

    test: str
    null: EquivalenceNull
    supports: str
    n: int
    n_circuit_better: int
    n_ties: int
    share_circuit_better: float
    epsilon: float
    circuit_mean: float
    model_mean: float
    pvalue: float
    min_attainable_pvalue: float
    seed: int | None


def equivalence_test(circuit_scores: Any, model_scores: Any, *, epsilon: float = 0.1,
                     null: EquivalenceNull = "not_equivalent", rng: RngLike = None) -> EquivalenceTest:
    """Paired, per-prompt test of whether the circuit performs like the model.

    Parameters
    ----------
    circuit_scores, model_scores : array_like, shape (n_prompts,)
        The task score of the circuit and of the full model on the same prompts, in the same order.
    epsilon : float
        Tolerated departure of ``theta`` from 1/2, in (0, 0.5) (the paper: 0.1).
    null : {"not_equivalent", "equivalent"}
        See :data:`EquivalenceNull`.
    rng : None, int or numpy.random.Generator
        Breaks exact ties at random (a tie carries no direction; counting it as a loss, as a plain
        ``>`` would, biases the count). The seed is recorded.

    Returns
    -------
    EquivalenceTest
        ``min_attainable_pvalue`` is the smallest p-value any count could give with these ``n`` prompts.

    Notes
    -----
    With ``k`` of ``n`` prompts where the circuit is better:

    - ``"not_equivalent"``: ``p = max(P[K <= k | 1/2 + eps], P[K >= k | 1/2 - eps])``, ``K ~ Binomial(n, .)``.
    - ``"equivalent"`` (Shi et al.): ``p = P[|K - n/2| >= |k - n/2| | theta = 1/2 + eps]``, capped at 1.

    Both treat prompts as independent; with few prompts TOST cannot support equivalence at all
    (check ``min_attainable_pvalue``).

    References
    ----------
    Shi, C. et al. (2024). Hypothesis Testing the Circuit Hypothesis in LLMs. NeurIPS. arXiv:2410.13032.
    Schuirmann, D. J. (1987). A comparison of the two one-sided tests procedure. J. Pharmacokin. Biopharm. 15.

    Examples
    --------
    >>> g = np.random.default_rng(0); model = g.normal(2, 1, 400)
    >>> equivalence_test(model + g.normal(0, 0.1, 400), model, rng=0).pvalue < 0.05
    True
    """
    c = finite_1d("circuit_scores", circuit_scores, min_n=1)
    m = finite_1d("model_scores", model_scores, min_n=1)
    if c.shape != m.shape:
        raise InputError(f"circuit_scores has {c.size} prompts but model_scores has {m.size}; the test is "
                         "paired: pass both scores for the same prompts, in the same order")
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        eps = float("nan")
    if not 0.0 < eps < 0.5:
        raise InputError(f"epsilon={epsilon!r} is invalid: expected a number in (0, 0.5). Fix: epsilon=0.1")
    null = check_choice("null", null, ("not_equivalent", "equivalent"))
    gen, seed = resolve_rng(rng)
    n = int(c.size)
    ties = int(np.sum(c == m))
    k = int(np.sum(c > m)) + int(gen.binomial(ties, 0.5)) if ties else int(np.sum(c > m))
    pvalue = _pvalue(k, n, eps, null)
    floor = min(_pvalue(j, n, eps, null) for j in range(n + 1))
    if null == "not_equivalent":
        test = "equivalence by two one-sided exact binomial tests (TOST) on the per-prompt sign of circuit - model"
        supports = f"the circuit is equivalent to the model: P(circuit better) within 1/2 +- {eps:g}"
    else:
        test = "Shi et al. 2024 equivalence test: exact binomial test at theta = 1/2 + epsilon (H0: equivalent)"
        supports = f"the circuit is not equivalent to the model: P(circuit better) outside 1/2 +- {eps:g}"
    return EquivalenceTest(test=test, null=null, supports=supports, n=n, n_circuit_better=k, n_ties=ties,
                           share_circuit_better=k / n, epsilon=eps, circuit_mean=float(c.mean()),
                           model_mean=float(m.mean()), pvalue=pvalue, min_attainable_pvalue=float(floor),
                           seed=seed)


def _pvalue(k: int, n: int, eps: float, null: str) -> float:
    if null == "not_equivalent":
        upper = stats.binom.cdf(k, n, 0.5 + eps)  # H0: theta >= 1/2 + eps, small when k is low
        lower = stats.binom.sf(k - 1, n, 0.5 - eps)  # H0: theta <= 1/2 - eps, small when k is high
        return float(min(1.0, max(upper, lower)))
    lo, hi = min(k, n - k), max(k, n - k)
    theta = 0.5 + eps
    return float(min(1.0, stats.binom.cdf(lo, n, theta) + stats.binom.sf(hi - 1, n, theta)))
