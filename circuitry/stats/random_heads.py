"""The random-head baseline: is a candidate head set's effect larger than that of random head sets?

Ablate the candidate heads; ablate head sets of the same size drawn at random (optionally matched by
layer); the p-value is the share of the reference set at least as extreme as the candidate
(Crosbie & Shutova 2024, "Induction heads as an essential mechanism for pattern matching in in-context
learning"; the Monte Carlo p-value convention of Davison & Hinkley 1997, *Bootstrap Methods and their
Application*, sec. 4.2, and Phipson & Smyth 2010, "Permutation p-values should never be zero").
"""

from __future__ import annotations

import itertools
from typing import Iterable, Literal

import numpy as np

from circuitry.display import Displayed, Table, spread
from circuitry.errors import InputError, bad_value
from circuitry.executors import check_executor, check_picklable
from circuitry.labels import Head, head_label, parse_head
from circuitry.provenance import Frozen
from circuitry.stats._common import RngLike, SetFn, check_choice, check_int, comb, evaluate_sets, resolve_rng
from circuitry.stats.monte_carlo import monte_carlo_pvalue, sequential_null

Match = Literal["all", "layer"]
"""``"all"``: draw ``k`` heads from the whole pool. ``"layer"``: draw, in every layer, as many heads as the
candidate has in that layer (controls for layer: late heads often matter more)."""

Alternative = Literal["greater", "less", "two-sided"]
"""``"greater"``: the candidate's effect is larger than random sets'. ``"less"``: smaller.
``"two-sided"``: farther from the centre of the reference set than random sets are."""

Exact = Literal["auto", "always", "never"]
"""``"auto"``: enumerate every admissible set when there are no more of them than ``n_draws``, else sample.
``"always"``: enumerate (error above ``max_enumerate`` sets). ``"never"``: sample ``n_draws`` sets."""

NullName = Literal["pool", "layer", "conditional", "other-heads"]
"""Which random-head null a test uses (every verdict names it):

* ``"pool"``: the candidate is like a uniformly random set of ``k`` heads from the whole pool (it is itself
  a possible draw). Calibrated for random candidates; a set containing one bottleneck head beats it.
* ``"layer"``: like a random set with the candidate's number of heads in each layer.
* ``"conditional"``: with the ``given`` heads ablated in every set (candidate and draws), the candidate's
  other heads are like a random set drawn from the heads outside ``given``: "these heads matter *beyond*
  the given ones".
* ``"other-heads"``: draws only from heads outside the candidate (``exclude_candidates=True``). The
  candidate is outside the population it is ranked in, so no exchangeability argument makes the p-value
  valid: it is a descriptive rank, never called exact, and anti-conservative for random candidates (12-19%
  of random candidates rank at p <= 0.05). Its result is ``calibrated=False`` with
  ``min_attainable_pvalue = 1``, so :func:`~circuitry.stats.verdict` can never call it "supported"."""

HeadSet = tuple[str, ...]

EFFECT_SIZE_NAME = "standardized effect (statistic - null_mean) / null_std"


class RandomHeadTest(Displayed, Frozen):
    """Result of :func:`random_head_test`.

    ``pvalue = (1 + #{null at least as extreme as statistic}) / (1 + n_draws)`` where ``n_draws`` is the
    number of random sets evaluated (sampled, or all of them when ``enumerated``). ``min_attainable_pvalue``
    is ``1 / (1 + n_draws)``: no result can be more significant than that. ``exact`` is True only when the
    population was enumerated *and* the candidate belongs to it (not for ``null="other-heads"``): then
    ``p = #{all sets >= observed} / N`` is the exact randomization p-value. ``null`` names the null
    (:data:`NullName`) and ``null_hypothesis`` states it; ``given`` lists heads ablated in every set.

    ``calibrated`` is False only for ``null="other-heads"`` (``exclude_candidates=True``): ``pvalue`` is
    then the candidate's descriptive rank ``(1 + #{others >= observed}) / (1 + n_draws)``, not a p-value
    (12-19% of random candidates rank at 0.05 or below), and ``min_attainable_pvalue`` is 1 so that
    :func:`~circuitry.stats.verdict` answers "inconclusive", never "supported"; ``rank_floor`` keeps the
    smallest rank, ``1 / (1 + n_draws)``.
    """

    def describe(self) -> str:
        """One sentence: what was compared with what, under which null, and the p-value with its floor."""
        k = len(self.candidate) - len(self.given)
        sets = (f"all {self.n_draws} other" if self.exact else
                f"all {self.n_draws}" if self.enumerated else f"{self.n_draws} sampled")
        stop = (f"; drawing stopped at the {self.stop_after}th set at least as extreme, after {self.n_draws} of "
                f"up to {self.max_draws} (Besag & Clifford 1991)" if self.stopped else "")
        given = f" with {', '.join(self.given)} ablated in every set" if self.given else ""
        free = [h for h in self.candidate if h not in self.given]
        p = (f"p = {self.pvalue:.3g}, floor {self.min_attainable_pvalue:.3g}" if self.calibrated else
             f"descriptive rank {self.pvalue:.3g} (smallest possible {self.rank_floor:.3g}; not a calibrated "
             "p-value, no verdict)")
        return (f"{', '.join(free)}{given}: damage {self.statistic:.3g} vs {self.null_mean:.3g} +- "
                f"{self.null_std:.3g} for {sets} random sets of {_n_heads(k)} ({self.null} null: "
                f"{self.null_hypothesis}); {p}{', exact' if self.exact else ''}, alternative "
                f"{self.alternative}{stop}.")


    test: str = "random-head baseline (Crosbie & Shutova 2024); Monte Carlo / exact randomization p-value"
    null: NullName = "pool"
    null_hypothesis: str = ""
    given: list[str] = []
    enumerated: bool = False
    candidate: list[str]
    n_heads_pool: int
    match: Match
    exclude_candidates: bool
    alternative: Alternative
    statistic: float
    null_distribution: list[float]
    null_mean: float
    null_std: float
    null_quantiles: dict[str, float]
    effect_size: float | None
    effect_size_name: str = EFFECT_SIZE_NAME
    pvalue: float
    n_draws: int
    exact: bool
    n_distinct_sets: int
    min_attainable_pvalue: float
    seed: int | None
    #: draws stop at the ``stop_after``-th random set at least as extreme as the candidate (``None``: never)
    stop_after: int | None = None
    #: the draws planned (``n_draws`` counts those the p-value uses: fewer when ``stopped``)
    max_draws: int | None = None
    stopped: bool = False
    #: False for the "other-heads" rank: ``pvalue`` is descriptive and ``min_attainable_pvalue`` is 1
    calibrated: bool = True
    #: the smallest value ``pvalue`` can take, ``1 / (1 + n_draws)`` (equals ``min_attainable_pvalue`` when
    #: ``calibrated``)
    rank_floor: float | None = None

    def _table(self) -> Table:
        """The candidate's damage against the random sets' (mean ± sd), the effect size, the p-value (or the
        descriptive rank) and its floor; :meth:`describe` in the notes."""
        free = [h for h in self.candidate if h not in self.given]
        p = "p" if self.calibrated else "rank (not a p-value)"
        return Table(f"RandomHeadTest: {', '.join(free)} against {self.n_draws} random sets ({self.null} null)",
                     ("candidate", "damage", "random sets", "effect size", p, "floor"),
                     [("+".join(free), self.statistic, spread(self.null_mean, self.null_std), self.effect_size,
                       self.pvalue, self.rank_floor if not self.calibrated else self.min_attainable_pvalue)],
                     notes=[f"test: {self.test}", self.describe(), f"effect size: {self.effect_size_name}"],
                     noun="test")


def random_head_test(
    effect_fn: SetFn,
    candidate: Iterable[str | Head],
    heads: Iterable[str | Head],
    *,
    n_draws: int = 1000,
    match: Match = "all",
    exclude_candidates: bool = False,
    alternative: Alternative = "greater",
    exact: Exact = "auto",
    rng: RngLike = None,
    batch_size: int | None = None,
    max_enumerate: int = 200_000,
    given: Iterable[str | Head] = (),
    executor: str = "serial",
    max_workers: int | None = None,
    stop_after: int | None = None,
) -> RandomHeadTest:
    """Test a candidate head set against random head sets of the same size.

    Parameters
    ----------
    effect_fn : callable
        ``effect_fn(head_sets) -> array of shape (len(head_sets),)``: the effect of ablating each head
        set (a tuple of labels like ``("L0H3", "L1H2")``, sorted by layer then head), e.g. the mean rise
        in loss over the prompts. Called once with ``[candidate]`` and then in batches of at most
        ``batch_size`` sets, so one forward pass can ablate many sets.
    candidate : iterable of head labels or ``(layer, head)``
        The heads claimed to matter. Must lie in ``heads``.
    heads : iterable of head labels or ``(layer, head)``
        The pool random sets are drawn from, e.g. ``all_heads(n_layers, n_heads)``.
    n_draws : int
        Random sets to sample (ignored when the null is enumerated).
    match : {"all", "layer"}
        See :data:`Match`.
    exclude_candidates : bool
        False (default): random sets are drawn from the whole pool, so the candidate set is itself a
        possible draw and the p-value is exactly valid under the null "the candidate is a random head
        set" (candidate and draws are exchangeable). True: draw only from heads outside the candidate
        (the papers' "compared with other heads"). That answers a different question and is
        anti-conservative under the random-candidate null when a few heads dominate: in circuitry's
        calibration test, a 16-head pool with one dominant head gives p < 0.05 in ~12% of random
        candidates with True and ~5% with False (see ``docs/statistics.md``). The result is therefore
        descriptive only: ``calibrated=False`` and ``min_attainable_pvalue=1``, so
        :func:`~circuitry.stats.verdict` never calls it "supported"; use ``given`` (the conditional null),
        ``match="layer"`` or the pool null for a verdict.
    alternative : {"greater", "less", "two-sided"}
        See :data:`Alternative`. Two-sided compares ``|x - c|`` where ``c`` is the mean of the candidate
        and all null effects together (a symmetric function of the reference set, so exchangeability
        still gives a valid p-value).
    exact : {"auto", "always", "never"}
        See :data:`Exact`.
    rng : None, int or numpy.random.Generator
        Randomness for the draws; the seed is recorded.
    batch_size : int, optional
        Largest number of sets per ``effect_fn`` call. Default: ``effect_fn.batch_size`` when it has one
        (``None`` there means every set in one call, per worker: a
        :class:`~circuitry.interventions.HeadSetEffect` computes the layers that sets share once, the more
        sets it sees at once the more it shares, and it bounds its own memory), else 256.
    max_enumerate : int
        Refuse to enumerate more sets than this (``exact="always"``).
    given : iterable of head labels, optional
        Heads ablated in *every* set, the candidate's and each draw's (the ``"conditional"`` null): the
        candidate's other heads are compared with random sets of as many heads from outside ``given``.
        ``given`` heads may be listed in ``candidate`` or not; the statistic is the effect of ablating
        ``candidate`` and ``given`` together.
    executor : {"serial", "processes", "ray"}
        Who evaluates the random sets (:func:`circuitry.executors.run_tasks`): here, one batch after another;
        a local process pool; or Ray tasks. The sets are drawn here first, so the draws, and with the same
        BLAS thread count the values, are the same for every executor. ``effect_fn`` must then pickle
        (:func:`circuitry.interventions.head_set_effect_fn` does, model included).
    max_workers : int, optional
        Processes (or Ray CPUs) for a parallel ``executor``; default: the CPUs this process may use.
    stop_after : int, optional
        Stop drawing at the ``stop_after``-th random set at least as extreme as the candidate (Besag &
        Clifford 1991, sequential Monte Carlo p-values): a null the candidate clearly does not beat ends
        early, one it beats runs all ``n_draws``. The sets are drawn as without stopping and evaluated in
        order (a first call of 100, then as many as the rate of extreme sets so far says are needed); the
        p-value counts the draws up to the stopping one, ``(1 + stop_after) / (1 + L)`` at the ``L``-th,
        which is at least Besag & Clifford's valid ``stop_after / L`` and so valid too
        (``tests/stats/test_nulls.py`` checks its calibration). The floor stays ``1 / (1 + n_draws)``.
        One-sided alternatives only; an enumerated null is evaluated whole. ``None`` (default): every draw.

    Returns
    -------
    RandomHeadTest

    Raises
    ------
    InputError
        Unknown or duplicate heads, a candidate outside the pool, no admissible random set, options out
        of range, or an ``effect_fn`` that returns the wrong number of values or non-finite values.

    Notes
    -----
    The null used is recorded in ``null`` (:data:`NullName`) and stated in ``null_hypothesis``; see
    :func:`circuit_vs_random` for the named-null interface.

    Ties count against the claim: a null value within 100 machine epsilons (relative) of the candidate's
    counts as at least as extreme. With an exact null every admissible set other than the candidate is
    evaluated once and the same formula gives ``p = (1 + #{others >= observed}) / (1 + N_others)``; with
    ``exclude_candidates=False`` that equals ``#{all sets >= observed} / N``, the classical exact
    randomization p-value, with floor ``1 / N``.

    References
    ----------
    Crosbie, J. & Shutova, E. (2024). Induction heads as an essential mechanism for pattern matching in
    in-context learning. arXiv:2407.07011.
    Besag, J. & Clifford, P. (1991). Sequential Monte Carlo p-values. Biometrika 78(2), 301-304.
    Phipson, B. & Smyth, G. K. (2010). Permutation p-values should never be zero. SAGMB 9(1).

    Examples
    --------
    >>> from circuitry.labels import all_heads
    >>> w = {h: (5.0 if h in ("L1H3", "L1H5") else 0.1) for h in all_heads(2, 8)}
    >>> fn = lambda sets: [sum(w[h] for h in s) for s in sets]
    >>> res = random_head_test(fn, ["L1H3", "L1H5"], all_heads(2, 8), rng=0)
    >>> res.exact, res.n_distinct_sets, res.n_draws, res.pvalue == 1 / 120
    (True, 120, 119, True)
    """
    pool = _parse_unique("heads", heads)
    cand = _parse_unique("candidate", candidate)
    fixed = _parse_unique("given", given)
    if not cand:
        raise bad_value("candidate", list(candidate), "at least one head")
    missing = [head_label(*h) for h in cand + fixed if h not in set(pool)]
    if missing:
        raise InputError(f"candidate or given heads {missing} are not in the head pool `heads`; the pool must "
                         "contain them (e.g. heads=all_heads(n_layers, n_heads))")
    free = [h for h in cand if h not in set(fixed)]
    if not free:
        raise bad_value("candidate", [head_label(*h) for h in cand], "at least one head outside `given`",
                        "name the heads whose contribution beyond `given` is claimed")
    if fixed and exclude_candidates:
        raise bad_value("exclude_candidates", True, "False with `given` (the conditional null draws from every "
                        "head outside `given`, candidate included)", "drop exclude_candidates")
    n_draws = check_int("n_draws", n_draws, 1)
    match = check_choice("match", match, ("all", "layer"))
    alternative = check_choice("alternative", alternative, ("greater", "less", "two-sided"))
    exact = check_choice("exact", exact, ("auto", "always", "never"))
    if batch_size is None:
        batch_size = getattr(effect_fn, "batch_size", 256)
    else:
        batch_size = check_int("batch_size", batch_size, 1)
    max_enumerate = check_int("max_enumerate", max_enumerate, 1)
    check_executor(executor, max_workers)
    if stop_after is not None:
        stop_after = check_int("stop_after", stop_after, 1)
        if alternative == "two-sided":
            raise bad_value("stop_after", stop_after, "None with alternative='two-sided' (its centre moves with "
                            "every draw, so there is no fixed 'at least as extreme' to stop at)",
                            "use a one-sided alternative or stop_after=None")
    if executor != "serial":
        check_picklable(effect_fn, "effect_fn")
    if not isinstance(exclude_candidates, bool):
        raise bad_value("exclude_candidates", exclude_candidates, "True or False")
    if not callable(effect_fn):
        raise bad_value("effect_fn", effect_fn, "a callable effect_fn(list_of_head_sets) -> array")

    cand_set = set(cand)
    draw_pool = [h for h in pool if not (exclude_candidates and h in cand_set) and h not in set(fixed)]
    groups = _groups(free, draw_pool, match)
    n_distinct = 1
    for avail, k in groups:
        n_distinct *= comb(len(avail), k)
    n_other = n_distinct - (0 if exclude_candidates else 1)
    if n_other < 1:
        raise InputError(f"no random head set is admissible: candidate {[head_label(*h) for h in cand]} with "
                         f"match={match!r}, exclude_candidates={exclude_candidates} leaves "
                         f"{n_distinct} distinct set(s). Fix: use match='all', a larger head pool, or "
                         "exclude_candidates=False")
    do_exact = exact == "always" or (exact == "auto" and n_other <= n_draws)
    if do_exact and n_other > max_enumerate:
        raise InputError(f"exact='always' would enumerate {n_other} head sets (> max_enumerate={max_enumerate}). "
                         "Fix: use exact='auto' to sample, or raise max_enumerate")

    gen, seed = resolve_rng(rng)
    fixed_labels = _labels(fixed)

    def with_given(labels: HeadSet) -> HeadSet:
        return _labels(parse_head(h) for h in labels + fixed_labels)

    free_labels = _labels(free)
    cand_labels = with_given(free_labels)
    observed = float(evaluate_sets(effect_fn, [cand_labels], batch_size=1, name="effect_fn")[0])
    draws = [s for s in _enumerate(groups) if s != free_labels] if do_exact else _sample(groups, n_draws, gen)
    sets = [with_given(s) for s in draws]
    run = dict(batch_size=batch_size, name="effect_fn", executor=executor, max_workers=max_workers)
    sequential = stop_after is not None and not do_exact
    if sequential:
        null, stopped = sequential_null(effect_fn, sets, observed, alternative, stop_after, run)
    else:
        null, stopped = evaluate_sets(effect_fn, sets, **run), False
    name = null_name(match=match, exclude_candidates=exclude_candidates, given=bool(fixed))
    res = _summarize(observed, null, cand_labels=list(cand_labels), n_pool=len(pool), match=match,
                     exclude=exclude_candidates, alternative=alternative, enumerated=do_exact,
                     n_distinct=n_distinct, seed=seed, null_name=name, given=list(fixed_labels),
                     hypothesis=_hypothesis(name, free, fixed_labels, len(draw_pool), match))
    if not sequential:
        return res
    floor = 1.0 / (1 + len(sets))
    return res.model_copy(update=dict(stop_after=stop_after, max_draws=len(sets), stopped=stopped, rank_floor=floor,
                                      min_attainable_pvalue=floor if res.calibrated else 1.0))


def null_name(*, match: str, exclude_candidates: bool, given: bool) -> NullName:
    """The :data:`NullName` of a combination of options."""
    if exclude_candidates:
        return "other-heads"
    if given:
        return "conditional"
    return "layer" if match == "layer" else "pool"


def _hypothesis(name: str, free: list[Head], given: tuple[str, ...], n_avail: int, match: str) -> str:
    k = len(free)
    if match == "layer":
        per: dict[int, int] = {}
        for layer, _ in free:
            per[layer] = per.get(layer, 0) + 1
        shape = "with " + ", ".join(f"{c} in layer {lay}" for lay, c in sorted(per.items()))
    else:
        shape = f"drawn uniformly from {n_avail} heads"
    if name == "conditional":
        return (f"with {', '.join(given)} ablated in every set, the rest of the candidate ({_n_heads(k)}) is like a "
                f"random set of {_n_heads(k)} {shape} (all but {', '.join(given)})")
    if name == "other-heads":
        return (f"ranked among random sets of {k} non-candidate heads {shape}; the candidate is outside that "
                "population, so this is a descriptive rank, not a calibrated test")
    return f"the candidate is like a random set of {_n_heads(k)} {shape}"


def _n_heads(k: int) -> str:
    return f"{k} head" if k == 1 else f"{k} heads"


def _summarize(observed: float, null: np.ndarray, *, cand_labels: list[str], n_pool: int, match: str,
               exclude: bool, alternative: str, enumerated: bool, n_distinct: int, seed: int | None,
               null_name: NullName, given: list[str], hypothesis: str) -> RandomHeadTest:
    n = null.size
    pvalue = monte_carlo_pvalue(observed, null, alternative=alternative)
    mean = float(null.mean())
    std = float(null.std(ddof=0 if enumerated else 1)) if n > 1 else 0.0
    q05, q50, q95 = (float(v) for v in np.quantile(null, [0.05, 0.5, 0.95]))
    return RandomHeadTest(
        null=null_name, null_hypothesis=hypothesis, given=given, enumerated=enumerated,
        candidate=cand_labels, n_heads_pool=n_pool, match=match, exclude_candidates=exclude,
        alternative=alternative, statistic=observed, null_distribution=[float(v) for v in null],
        null_mean=mean, null_std=std, null_quantiles={"0.05": q05, "0.5": q50, "0.95": q95},
        effect_size=(observed - mean) / std if std > 0 else None, pvalue=pvalue, n_draws=n,
        exact=enumerated and not exclude, n_distinct_sets=n_distinct,
        min_attainable_pvalue=1.0 if exclude else 1.0 / (1 + n), calibrated=not exclude,
        rank_floor=1.0 / (1 + n), seed=seed)


def _parse_unique(name: str, items: Iterable[str | Head]) -> list[Head]:
    if isinstance(items, str):
        items = [items]
    out: list[Head] = []
    for x in items:
        h = parse_head(x)
        if h in out:
            raise InputError(f"{name} lists head {head_label(*h)} twice; each head may appear once")
        out.append(h)
    return out


def _labels(heads: Iterable[Head]) -> HeadSet:
    return tuple(head_label(*h) for h in sorted(heads))


def _groups(cand: list[Head], draw_pool: list[Head], match: str) -> list[tuple[list[Head], int]]:
    """(available heads, how many to draw) per stratum: one stratum, or one per candidate layer."""
    if match == "all":
        return [(sorted(draw_pool), len(cand))]
    counts: dict[int, int] = {}
    for layer, _ in cand:
        counts[layer] = counts.get(layer, 0) + 1
    return [(sorted(h for h in draw_pool if h[0] == layer), k) for layer, k in sorted(counts.items())]


def _enumerate(groups: list[tuple[list[Head], int]]) -> Iterable[HeadSet]:
    for parts in itertools.product(*(itertools.combinations(avail, k) for avail, k in groups)):
        yield _labels(h for part in parts for h in part)


def _sample(groups: list[tuple[list[Head], int]], n_draws: int, gen: np.random.Generator) -> list[HeadSet]:
    """``n_draws`` independent uniform draws (with replacement across draws, without within a draw)."""
    chosen: list[np.ndarray] = []
    for avail, k in groups:
        keys = gen.random((n_draws, len(avail)))
        chosen.append(np.argpartition(keys, k - 1, axis=1)[:, :k] if k < len(avail)
                      else np.tile(np.arange(len(avail)), (n_draws, 1)))
    out: list[HeadSet] = []
    for i in range(n_draws):
        out.append(_labels(groups[g][0][j] for g in range(len(groups)) for j in chosen[g][i]))
    return out


