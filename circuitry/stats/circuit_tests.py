"""Hypothesis tests of the circuit hypothesis (Shi et al. 2024, "Hypothesis Testing the Circuit Hypothesis
in LLMs", NeurIPS): sufficiency and partial necessity against random circuits of the same size, and
minimality per edge. Equivalence of circuit and model scores lives in :mod:`circuitry.stats.equivalence`.

Model-agnostic: the tests take callables over *sets* of elements (edges such as ``("L0H2", "L1H3.k")``
or heads such as ``"L1H3"``) and never touch a model.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable, Literal

import numpy as np

from circuitry.display import Displayed, Table, fmt, interval, ranked
from circuitry.errors import InputError, bad_value
from circuitry.provenance import Frozen
from circuitry.stats._common import (ConfidenceInterval, RngLike, SetFn, binom_greater, binom_greater_floor, check_choice,
                                     check_elements, check_int, check_open_unit, element_label, evaluate_sets,
                                     resolve_rng, tie_tolerance)
from circuitry.stats.multiple import Correction, adjust_pvalues

Sampler = Callable[[np.random.Generator], Iterable[Hashable]]
ReferenceSampler = Callable[[np.random.Generator], tuple[Iterable[Hashable], Hashable]]
Property = Literal["sufficiency", "partial_necessity"]
"""``"sufficiency"``: the circuit alone is more faithful than random circuits of its size.
``"partial_necessity"``: knocking the circuit out hurts more than knocking out random circuits of its size."""


class CircuitTest(Displayed, Frozen):
    """Result of :func:`sufficiency_test` or :func:`partial_necessity_test`.

    ``n_beaten`` of ``n_random`` random circuits were beaten; ``pvalue`` is the one-sided exact binomial
    test (``scipy.stats.binomtest``) of H0 "the candidate beats a random circuit with probability <= q".
    """

    test: str
    property: Property
    supports: str
    circuit: list[str]
    circuit_size: int
    universe_size: int
    statistic: float
    null_distribution: list[float]
    n_random: int
    q: float
    n_beaten: int
    share_beaten: float
    share_ci: ConfidenceInterval
    pvalue: float
    min_attainable_pvalue: float
    seed: int | None
    null: str = ""

    def _table(self) -> Table:
        """The candidate's statistic, how many random circuits it beat (share with its interval), the binomial
        p-value and its floor."""
        return Table(f"CircuitTest: {self.property} of a {self.circuit_size}-element circuit (of {self.universe_size})",
                     ("property", "statistic", "beaten", "share beaten", "CI", "p", "floor"),
                     [(self.property, self.statistic, f"{self.n_beaten}/{self.n_random}", self.share_beaten,
                       interval(self.share_ci.low, self.share_ci.high), self.pvalue, self.min_attainable_pvalue)],
                     notes=[f"test: {self.test}", f"supports: {self.supports} (q {self.q:g})"]
                     + ([f"null: {self.null}"] if self.null else []), noun="test")


class EdgeMinimality(Frozen):
    """One edge of :class:`MinimalityTest`: its knock-out effect ``delta`` and its binomial test."""

    element: str
    delta: float
    n_beaten: int
    share_beaten: float
    pvalue: float
    adjusted_pvalue: float
    rejected: bool


class MinimalityTest(Displayed, Frozen):
    """Result of :func:`minimality_test`.

    ``edges`` holds one binomial test per circuit element, corrected with ``correction``. ``pvalue`` is the
    intersection-union p-value of "every element is needed": the largest raw per-element p-value
    (Berger 1982; no multiplicity correction is needed for an all-must-hold claim).
    """

    test: str = ("minimality (Shi et al. 2024): per element, one-sided exact binomial test that its "
                 "knock-out changes the score more than knocking out a random added element in a share "
                 "> q of draws (scipy.stats.binomtest)")
    supports: str = "every element of the circuit is needed (each beats random added elements)"
    circuit: list[str]
    universe_size: int
    circuit_score: float
    reference_deltas: list[float]
    n_random: int
    q: float
    correction: Correction
    alpha: float
    edges: list[EdgeMinimality]
    n_rejected: int
    pvalue: float
    min_attainable_pvalue: float
    seed: int | None
    null: str = ""

    def _table(self) -> Table:
        """The elements whose knock-out changes the score most, with their binomial test before and after the
        correction; the intersection-union p-value in the title."""
        rows = [(e.element, e.delta, e.share_beaten, e.pvalue, e.adjusted_pvalue, "yes" if e.rejected else "")
                for e in ranked(self.edges, key=lambda e: e.delta)]
        return Table(f"MinimalityTest: {self.n_rejected} of {len(self.edges)} elements needed; p {fmt(self.pvalue)} "
                     f"(floor {fmt(self.min_attainable_pvalue)})",
                     ("element", "delta", "share beaten", "p", f"p_adj ({self.correction})", "needed"), rows,
                     notes=[f"test: {self.test}", f"circuit score {fmt(self.circuit_score)}; {self.n_random} random "
                            f"added elements per test, q {self.q:g}, alpha {self.alpha:g}"], noun="element")


def sufficiency_test(faithfulness_fn: SetFn, circuit: Iterable[Hashable], universe: Iterable[Hashable], *,
                     n_random: int = 100, q: float = 0.9, rng: RngLike = None, sampler: Sampler | None = None,
                     batch_size: int = 64) -> CircuitTest:
    """Is the circuit more faithful than a share ``q`` of random circuits of the same size?

    Parameters
    ----------
    faithfulness_fn : callable
        ``faithfulness_fn(element_sets) -> array (len(element_sets),)``: the faithfulness *loss* (lower
        is better, e.g. mean ``|score(model) - score(circuit)|`` over prompts) of running only each set's
        elements, everything else ablated. Called in batches of at most ``batch_size`` sets; each set is
        a tuple of elements in ``universe`` order.
    circuit : iterable of hashable
        The candidate's edges (or heads).
    universe : iterable of hashable
        Every element a circuit may contain; must include the circuit.
    n_random : int
        Random circuits (the paper: 100).
    q : float
        Share of random circuits the candidate must beat (the paper: 0.9).
    rng : None, int or numpy.random.Generator
        Randomness; the seed is recorded.
    sampler : callable, optional
        ``sampler(rng) -> iterable of elements``: one random circuit. Default: a uniform subset of
        ``universe`` of the circuit's size. Pass one that draws connected circuits to follow the paper
        more closely.
    batch_size : int
        Largest number of sets per call.

    Returns
    -------
    CircuitTest
        A "win" is ``loss(candidate) < loss(random)``; ties are losses. ``min_attainable_pvalue = q ** n_random``.

    References
    ----------
    Shi, C. et al. (2024). Hypothesis Testing the Circuit Hypothesis in LLMs. NeurIPS. arXiv:2410.13032.

    Examples
    --------
    >>> universe = [f"e{i}" for i in range(30)]
    >>> loss = lambda sets: [10.0 - sum(e in ("e1", "e2", "e3") for e in s) * 3 for s in sets]
    >>> res = sufficiency_test(loss, ["e1", "e2", "e3"], universe, rng=0)
    >>> res.n_beaten > 90, res.pvalue < 0.01
    (True, True)
    """
    return _flexible("sufficiency", faithfulness_fn, circuit, universe, n_random=n_random, q=q, rng=rng,
                     sampler=sampler, batch_size=batch_size)


def partial_necessity_test(faithfulness_fn: SetFn, circuit: Iterable[Hashable], universe: Iterable[Hashable], *,
                           n_random: int = 100, q: float = 0.9, rng: RngLike = None,
                           sampler: Sampler | None = None, batch_size: int = 64) -> CircuitTest:
    """Does knocking the circuit out hurt more than knocking out a share ``q`` of random circuits?

    Same callable and options as :func:`sufficiency_test`; ``faithfulness_fn`` is evaluated on the
    *complements* ``universe - circuit`` and ``universe - random`` (the model with the set knocked out),
    and a "win" is ``loss(universe - circuit) > loss(universe - random)``.

    References
    ----------
    Shi, C. et al. (2024). Hypothesis Testing the Circuit Hypothesis in LLMs. NeurIPS. arXiv:2410.13032.

    Examples
    --------
    >>> universe = [f"e{i}" for i in range(30)]
    >>> loss = lambda sets: [10.0 - sum(e in ("e1", "e2", "e3") for e in s) * 3 for s in sets]
    >>> partial_necessity_test(loss, ["e1", "e2", "e3"], universe, rng=0).pvalue < 0.01
    True
    """
    return _flexible("partial_necessity", faithfulness_fn, circuit, universe, n_random=n_random, q=q, rng=rng,
                     sampler=sampler, batch_size=batch_size)


def minimality_test(score_fn: SetFn, circuit: Iterable[Hashable], universe: Iterable[Hashable], *,
                    n_random: int = 100, q: float = 0.9, correction: Correction = "holm", alpha: float = 0.05,
                    rng: RngLike = None, reference_sampler: ReferenceSampler | None = None,
                    batch_size: int = 64) -> MinimalityTest:
    """Is every element of the circuit needed?

    For element ``e`` of circuit ``C`` the knock-out effect is ``delta_e = |s(C) - s(C - {e})|``. The
    reference distribution knocks out an element that is *not* needed: add a random set ``A`` containing
    element ``a`` and take ``|s(C + A) - s(C + A - {a})|`` (default ``A = {a}``, ``a`` uniform over
    ``universe - C``). Per element, a one-sided exact binomial test of H0 "``delta_e`` beats a random
    reference delta with probability <= q"; the per-element p-values are corrected with ``correction``.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(element_sets) -> array``: the task score (or faithfulness loss; only absolute changes
        are used) of running each set as the circuit.
    circuit, universe : iterable of hashable
        As in :func:`sufficiency_test`; ``universe - circuit`` must not be empty.
    n_random : int
        Reference draws (the paper: 100).
    q : float
        Share of reference deltas an element must beat.
    correction : {"holm", "bh", "bonferroni"}
        Correction across the circuit's elements (see :mod:`circuitry.stats.multiple`).
    alpha : float
        Level of the per-element decisions ``rejected`` (the whole-circuit claim is judged by
        :func:`verdict` on ``pvalue``).
    rng : None, int or numpy.random.Generator
        Randomness; the seed is recorded.
    reference_sampler : callable, optional
        ``reference_sampler(rng) -> (added_elements, knocked_element)`` to add whole random paths as in the
        paper's Figure 4 instead of single elements.
    batch_size : int
        Largest number of sets per call.

    References
    ----------
    Shi, C. et al. (2024). Hypothesis Testing the Circuit Hypothesis in LLMs. NeurIPS. arXiv:2410.13032.
    Berger, R. L. (1982). Multiparameter hypothesis testing and acceptance sampling. Technometrics 24.

    Examples
    --------
    >>> universe = [f"e{i}" for i in range(20)]
    >>> score = lambda sets: [sum({"e0": 3.0, "e1": 2.0}.get(e, 0.01) for e in s) for s in sets]
    >>> res = minimality_test(score, ["e0", "e1"], universe, rng=0)
    >>> [e.rejected for e in res.edges], res.pvalue < 0.01
    ([True, True], True)
    """
    cand, elems = _check_circuit(circuit, universe)
    n_random = check_int("n_random", n_random, 1)
    q = check_open_unit("q", q, "e.g. q=0.9 (the paper's share)")
    alpha = check_open_unit("alpha", alpha, "e.g. alpha=0.05")
    batch_size = check_int("batch_size", batch_size, 1)
    correction = check_choice("correction", correction, ("holm", "bh", "bonferroni"))
    outside = [e for e in elems if e not in set(cand)]
    if not outside:
        raise InputError("minimality_test needs elements outside the circuit to build its reference; "
                         "universe - circuit is empty. Fix: pass the full edge set as universe")
    gen, seed = resolve_rng(rng)
    order = {e: i for i, e in enumerate(elems)}
    key = lambda s: tuple(sorted(set(s), key=order.__getitem__))  # noqa: E731
    base = key(cand)
    knocked = [key(set(cand) - {e}) for e in cand]
    refs: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []
    for _ in range(n_random):
        if reference_sampler is None:
            a = outside[int(gen.integers(len(outside)))]
            added, out = {a}, a
        else:
            added_raw, out = reference_sampler(gen)
            added = set(added_raw)
            if out not in added or not added <= set(elems):
                raise InputError(f"reference_sampler returned added={sorted(map(element_label, added))} and "
                                 f"knocked={element_label(out)}; the knocked element must be one of the added "
                                 "elements, all in universe")
        inflated = key(set(cand) | added)
        refs.append((inflated, key(set(inflated) - {out})))
    unique = list(dict.fromkeys([base, *knocked, *(s for pair in refs for s in pair)]))
    values = dict(zip(unique, evaluate_sets(score_fn, unique, batch_size=batch_size, name="score_fn")))
    s_c = values[base]
    deltas = np.array([abs(s_c - values[k]) for k in knocked])
    ref = np.array([abs(values[a] - values[b]) for a, b in refs])
    pvals, beaten = [], []
    for d in deltas:
        k = int(np.sum(d > ref + tie_tolerance(d)))
        beaten.append(k)
        pvals.append(binom_greater(k, n_random, q)[0])
    adjusted = adjust_pvalues(pvals, method=correction)
    edges = [EdgeMinimality(element=element_label(e), delta=float(d), n_beaten=k, share_beaten=k / n_random,
                            pvalue=float(p), adjusted_pvalue=float(a), rejected=bool(a <= alpha))
             for e, d, k, p, a in zip(cand, deltas, beaten, pvals, adjusted)]
    return MinimalityTest(circuit=[element_label(e) for e in cand], universe_size=len(elems),
                          circuit_score=float(s_c), reference_deltas=[float(x) for x in ref], n_random=n_random,
                          q=q, correction=correction, alpha=alpha, edges=edges,
                          n_rejected=sum(e.rejected for e in edges), pvalue=float(max(pvals)),
                          min_attainable_pvalue=binom_greater_floor(n_random, q), seed=seed,
        null=f"the circuit beats a random circuit of its size with probability <= {q:g}")


def _check_circuit(circuit: Iterable[Hashable], universe: Iterable[Hashable]) -> tuple[list[Hashable], list[Hashable]]:
    elems = check_elements("universe", universe, min_n=2)
    cand = check_elements("circuit", circuit, min_n=1)
    inside = set(elems)
    missing = [element_label(e) for e in cand if e not in inside]
    if missing:
        raise InputError(f"circuit elements {missing[:5]} are not in universe; the universe must contain "
                         "every element of the circuit (e.g. all edges of the model's graph)")
    return cand, elems


def _flexible(prop: str, fn: SetFn, circuit: Iterable[Hashable], universe: Iterable[Hashable], *, n_random: int,
              q: float, rng: RngLike, sampler: Sampler | None, batch_size: int) -> CircuitTest:
    cand, elems = _check_circuit(circuit, universe)
    n_random = check_int("n_random", n_random, 1)
    q = check_open_unit("q", q, "e.g. q=0.9 (the paper's share)")
    batch_size = check_int("batch_size", batch_size, 1)
    if not callable(fn):
        raise bad_value("faithfulness_fn", fn, "a callable faithfulness_fn(list_of_sets) -> array")
    if sampler is None and len(cand) >= len(elems):
        raise InputError(f"the circuit has all {len(elems)} elements of the universe; random circuits of the "
                         "same size would all equal it. Fix: pass the full edge set as universe")
    gen, seed = resolve_rng(rng)
    order = {e: i for i, e in enumerate(elems)}
    inside = set(elems)
    randoms: list[set[Hashable]] = []
    for _ in range(n_random):
        if sampler is None:
            idx = gen.choice(len(elems), size=len(cand), replace=False)
            randoms.append({elems[i] for i in idx})
        else:
            drawn = set(sampler(gen))
            if not drawn <= inside:
                raise InputError("sampler returned elements outside universe: "
                                 f"{sorted(map(element_label, drawn - inside))[:5]}")
            randoms.append(drawn)
    if prop == "partial_necessity":
        sets = [inside - set(cand)] + [inside - r for r in randoms]
    else:
        sets = [set(cand)] + randoms
    keyed = [tuple(sorted(s, key=order.__getitem__)) for s in sets]
    values = evaluate_sets(fn, keyed, batch_size=batch_size, name="faithfulness_fn")
    obs, null = float(values[0]), values[1:]
    tol = tie_tolerance(obs)
    wins = null > obs + tol if prop == "sufficiency" else null < obs - tol
    k = int(wins.sum())
    p, ci = binom_greater(k, n_random, q)
    supports = ("the circuit alone is more faithful than a share > q of random circuits of its size"
                if prop == "sufficiency" else
                "knocking the circuit out hurts more than knocking out a share > q of random circuits of its size")
    return CircuitTest(
        test=(f"{prop.replace('_', ' ')} (Shi et al. 2024): one-sided exact binomial test of the share of "
              "random circuits beaten against q (scipy.stats.binomtest)"),
        property=prop, supports=supports, circuit=[element_label(e) for e in cand], circuit_size=len(cand),
        universe_size=len(elems), statistic=obs, null_distribution=[float(v) for v in null], n_random=n_random,
        q=q, n_beaten=k, share_beaten=k / n_random, share_ci=ci, pvalue=p,
        min_attainable_pvalue=binom_greater_floor(n_random, q), seed=seed,
        null=f"the circuit beats a random circuit of its size with probability <= {q:g}")
