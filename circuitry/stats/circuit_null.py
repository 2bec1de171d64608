"""The circuit-vs-random-heads test under a named null (pool, layer-matched, conditional): the form
``circuitry analyze``'s circuit test and claim files call, on top of :func:`~circuitry.stats.random_heads.random_head_test`
(Crosbie & Shutova 2024; Shi et al. 2024 for testing a circuit against random ones)."""

from __future__ import annotations

from typing import Iterable, Literal

from circuitry.errors import bad_value
from circuitry.labels import Head
from circuitry.stats._common import RngLike, SetFn, check_choice
from circuitry.stats.random_heads import Alternative, RandomHeadTest, random_head_test


def circuit_vs_random(
    effect_fn: SetFn,
    circuit: Iterable[str | Head],
    heads: Iterable[str | Head],
    *,
    null: Literal["pool", "layer", "conditional"] = "pool",
    given: Iterable[str | Head] = (),
    n_draws: int = 1000,
    alternative: Alternative = "greater",
    rng: RngLike = None,
    batch_size: int | None = None,
    executor: str = "serial",
    max_workers: int | None = None,
    stop_after: int | None = None,
) -> RandomHeadTest:
    """The circuit-vs-random-heads test under a *named* null (what ``circuitry analyze`` and claims call).

    Parameters
    ----------
    effect_fn : callable
        ``effect_fn(head_sets) -> array``: the damage of ablating each head set (see :func:`random_head_test`).
    circuit : iterable of head labels
        The circuit's heads.
    heads : iterable of head labels
        The pool, usually every head of the model.
    null : {"pool", "layer", "conditional"}
        ``"pool"``: random sets of the same size from ``heads``. ``"layer"``: as many per layer as the circuit.
        ``"conditional"``: ``given`` is ablated in every set; the circuit's other heads are compared with
        random sets from the heads outside ``given`` ("the circuit matters beyond ``given``"). Each null is
        calibrated by simulation under itself (``tests/stats/test_nulls.py``); see :data:`NullName`.
    given : iterable of head labels
        Required for (and only for) ``null="conditional"``, e.g. a bottleneck head.
    n_draws, alternative, rng, batch_size, executor, max_workers, stop_after
        As in :func:`random_head_test` (every admissible set is enumerated when there are at most
        ``n_draws``; the p-value is then exact).

    Returns
    -------
    RandomHeadTest
        ``statistic``, ``null_mean``, ``null_std``, ``pvalue``, ``min_attainable_pvalue`` (the floor),
        ``null`` (the name), ``null_hypothesis``, ``n_draws``, ``exact``, and :meth:`RandomHeadTest.describe`.

    Raises
    ------
    InputError
        An unknown null, ``given`` without ``null="conditional"`` or the reverse, and everything
        :func:`random_head_test` refuses.

    Examples
    --------
    >>> from circuitry.labels import all_heads
    >>> w = {h: 0.1 for h in all_heads(2, 8)} | {"L0H3": 5.0, "L1H0": 1.0, "L1H5": 1.0}
    >>> fn = lambda sets: [sum(w[h] for h in s) for s in sets]
    >>> res = circuit_vs_random(fn, ["L1H0", "L1H5"], all_heads(2, 8), null="conditional", given=["L0H3"], rng=0)
    >>> res.null, res.exact, res.n_draws, round(res.pvalue, 4)
    ('conditional', True, 104, 0.0095)
    """
    null = check_choice("null", null, ("pool", "layer", "conditional"))
    given = list(given) if not isinstance(given, str) else [given]
    if null == "conditional" and not given:
        raise bad_value("given", given, "the heads held ablated in every set for null='conditional'",
                        "e.g. given=['L0H3']")
    if null != "conditional" and given:
        raise bad_value("given", given, f"no heads for null={null!r}", "use null='conditional' or drop given")
    return random_head_test(effect_fn, circuit, heads, n_draws=n_draws, match="layer" if null == "layer" else "all",
                            alternative=alternative, rng=rng, batch_size=batch_size, given=given,
                            executor=executor, max_workers=max_workers, stop_after=stop_after)
