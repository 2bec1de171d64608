"""Shared pieces of :mod:`circuitry.stats`: random generators with a recorded seed, input checks, and the
batched evaluation of user callables on sets of heads or edges.

Nothing here is public API; the public names are re-exported by :mod:`circuitry.stats`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Iterable, Sequence

import numpy as np
from scipy import stats

from circuitry.errors import InputError, bad_value
from circuitry.provenance import Frozen

RngLike = int | np.random.Generator | None
SetFn = Callable[[list[tuple[Any, ...]]], Any]


class ConfidenceInterval(Frozen):
    """A two-sided interval ``[low, high]``, scipy's ``confidence_interval.low/.high``."""

    low: float
    high: float


def resolve_rng(rng: RngLike) -> tuple[np.random.Generator, int | None]:
    """Turn ``rng`` into a generator and the seed to record.

    ``None`` draws a fresh 63-bit seed from the OS entropy pool and records it, so every result can be
    reproduced; an ``int`` is the seed; a ``numpy.random.Generator`` is used as is and records
    ``seed=None`` (its state is not a seed).
    """
    if rng is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
        return np.random.default_rng(seed), seed
    if isinstance(rng, np.random.Generator):
        return rng, None
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng)), int(rng)
    raise bad_value("rng", rng, "None, a non-negative int seed or a numpy.random.Generator",
                    "pass rng=0 for a reproducible run")


def check_int(name: str, value: Any, minimum: int) -> int:
    """An integer ``>= minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise bad_value(name, value, f"an integer >= {minimum}")
    return int(value)


def check_open_unit(name: str, value: Any, fix: str | None = None) -> float:
    """A float strictly between 0 and 1 (alpha, q, confidence levels)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise bad_value(name, value, "a number strictly between 0 and 1", fix) from None
    if not 0.0 < v < 1.0:
        raise bad_value(name, value, "a number strictly between 0 and 1", fix)
    return v


def check_choice(name: str, value: Any, options: Sequence[str]) -> str:
    """One member of a ``Literal`` option set."""
    if value not in options:
        raise bad_value(name, value, "one of " + ", ".join(repr(o) for o in options))
    return value


def finite_1d(name: str, values: Any, *, min_n: int = 1) -> np.ndarray:
    """A finite 1-D float array of at least ``min_n`` values; torch tensors are accepted."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}") from None
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D (one value per prompt), got shape {arr.shape}. "
                         "Fix: reduce over other axes first, or pass arr.ravel()")
    if arr.size < min_n:
        raise InputError(f"{name} has {arr.size} value(s); at least {min_n} are needed. "
                         "Fix: evaluate the effect on more prompts")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(f"{name}[{bad[0]}]={arr[bad[0]]!r} is not finite ({bad.size} non-finite value(s)). "
                         "Fix: drop or repair those prompts before testing")
    return arr


def element_label(x: Hashable) -> str:
    """A JSON-friendly label for a head or an edge: strings pass through, a ``(u, v)`` edge becomes
    ``"u->v"``, a longer tuple joins with ``"->"`` as well."""
    if isinstance(x, str):
        return x
    if isinstance(x, tuple):
        return "->".join(element_label(p) for p in x)
    return str(x)


def check_elements(name: str, items: Iterable[Hashable], *, min_n: int = 1) -> list[Hashable]:
    """Distinct hashable elements (heads or edges), order kept."""
    try:
        out = list(items)
        seen: set[Hashable] = set()
        for x in out:
            if x in seen:
                raise InputError(f"{name} lists {x!r} twice; each head or edge may appear once")
            seen.add(x)
    except TypeError:
        raise InputError(f"{name} must be an iterable of hashable heads or edges") from None
    if len(out) < min_n:
        raise bad_value(name, out, f"at least {min_n} element(s)")
    return out


def evaluate_sets(fn: SetFn, sets: Sequence[tuple[Any, ...]], *, batch_size: int | None, name: str,
                  executor: str = "serial", max_workers: int | None = None) -> np.ndarray:
    """Call ``fn`` on ``sets`` in batches of ``batch_size`` (``None``: all of them) and check that every
    batch returns one finite number per set.

    With ``executor="processes"`` or ``"ray"`` (:func:`circuitry.executors.run_tasks`) the batches run in
    parallel, each one call of ``fn`` (which must pickle, e.g. a
    :class:`~circuitry.interventions.HeadSetEffect`); batches are then cut small enough that every worker
    gets one. Every set gets the same value from every executor up to the float rounding of differently
    sized batches (bit-equal in the tests, at one BLAS thread per process)."""
    from circuitry.executors import available_cpus, run_tasks

    batch_size = batch_size or max(1, len(sets))
    if executor != "serial" and len(sets) > 1:
        workers = max_workers or available_cpus()
        batch_size = max(1, min(batch_size, math.ceil(len(sets) / workers)))
    batches = [list(sets[s:s + batch_size]) for s in range(0, len(sets), batch_size)]
    if executor == "serial" or len(batches) < 2:
        results = [fn(b) for b in batches]
    else:  # the seed is unused: a batch's sets are drawn before it is sent
        results = run_tasks(_call_batch, [(fn, b) for b in batches], seed=0, executor=executor,
                            max_workers=max_workers)
    out = np.empty(len(sets), dtype=float)
    start = 0
    for batch, res in zip(batches, results):
        if hasattr(res, "detach"):
            res = res.detach().cpu().numpy()
        arr = np.asarray(res, dtype=float).reshape(-1)
        if arr.size != len(batch):
            raise InputError(f"{name} returned {arr.size} value(s) for a batch of {len(batch)} sets; "
                             "it must return one effect per set, in order")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name} returned a non-finite effect for set {batch[int(np.argmin(np.isfinite(arr)))]}; "
                             "fix the metric (e.g. clamp log-probabilities) before testing")
        out[start:start + len(batch)] = arr
        start += len(batch)
    return out


def _call_batch(task: tuple[SetFn, list], rng) -> Any:
    """One batch of :func:`evaluate_sets` in a worker (module level, so it pickles)."""
    fn, batch = task
    return fn(batch)


def tie_tolerance(observed: float) -> float:
    """Values within this distance of ``observed`` count as ties (and so against the claim), as in
    ``scipy.stats.permutation_test``: 100 machine epsilons relative to the observed value."""
    return abs(observed) * np.finfo(float).eps * 100


def binom_greater_floor(n: int, q: float) -> float:
    """The smallest p-value ``binomtest(k, n, q, alternative="greater")`` can return: ``q ** n`` (k = n)."""
    return float(q) ** n if n > 0 else 1.0


def binom_greater(k: int, n: int, q: float) -> tuple[float, ConfidenceInterval]:
    """One-sided exact binomial test that the success share exceeds ``q``; p-value and the Clopper-Pearson
    95% interval of the share."""
    res = stats.binomtest(k, n, q, alternative="greater")
    ci = res.proportion_ci(confidence_level=0.95, method="exact")
    return float(res.pvalue), ConfidenceInterval(low=float(ci.low), high=float(ci.high))


def comb(n: int, k: int) -> int:
    """Binomial coefficient as an exact int."""
    return math.comb(n, k)


def spawn_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent 63-bit seeds derived from ``seed`` with :meth:`numpy.random.SeedSequence.spawn`.

    Each consumer of randomness (prompt generation, head draws, bootstrap resampling, ...) gets its own
    stream, so two uses of the same user seed never draw the same numbers (``SeedSequence`` children are
    statistically independent by construction; O'Neill 2015, PCG).

    >>> a, b = spawn_seeds(0, 2)
    >>> a != b and a != 0 and spawn_seeds(0, 2) == [a, b]
    True
    """
    seed = check_int("seed", seed, 0)
    n = check_int("n", n, 1)
    return [int(c.generate_state(1, np.uint64)[0] % (2**63)) for c in np.random.SeedSequence(seed).spawn(n)]


def procedure_seed(seed: int, procedure: str) -> int:
    """The seed of one named random procedure of a run seeded with ``seed``: a 63-bit seed from
    ``numpy.random.SeedSequence(seed, spawn_key=(crc32(procedure),))``.

    Each procedure (``"head-scores"``, ``"composition-baseline"``, ``"icl"``, ...) gets its own stream, fixed by
    the run's seed and the procedure's name alone: no procedure's draws depend on how many numbers another
    one drew, so changing one resampling count never moves another procedure's numbers.

    >>> a, b = procedure_seed(0, "head-scores"), procedure_seed(0, "icl")
    >>> a != b and a == procedure_seed(0, "head-scores") and a != 0
    True
    """
    import zlib

    seed = check_int("seed", seed, 0)
    ss = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(procedure.encode()),))
    return int(ss.generate_state(1, np.uint64)[0] % (2**63))


SIGNFLIP_NULL = "each prompt's change is symmetric about 0 (sign-flip; exact for symmetry, approximate for a zero mean)"


def signflip_floor(n: int, n_permutations: int, alternative: str) -> float:
    """The smallest p-value :func:`signflip_pvalue` can return for ``n`` values and ``n_permutations``:
    exact enumeration (``2**n <= n_permutations``) gives ``1 / 2**n`` one-sided, random flips
    ``1 / (n_permutations + 1)``; doubled (capped at 1) when two-sided.

    >>> signflip_floor(3, 9999, "two-sided"), signflip_floor(5, 9999, "greater")
    (0.25, 0.03125)
    """
    one = 1.0 / 2**n if 2**n <= n_permutations else 1.0 / (n_permutations + 1)
    return min(1.0, 2 * one) if alternative == "two-sided" else one


_FLIP_CHUNK = 2**22  # sign-pattern entries held at once (32 MiB of float64)


def signflip_pvalue(d: Any, *, alternative: str = "two-sided", n_permutations: int = 9999,
                    rng: RngLike = None) -> float:
    """Sign-flip permutation p-value of the mean of ``d``. Null: every ``d_i`` is symmetric about 0. All
    zeros give 1. Its floor is :func:`signflip_floor`.

    The p-value of ``scipy.stats.permutation_test((d,), mean, permutation_type="samples")``, computed
    vectorized (scipy's generic loop costs 22 ms a site at 32 prompts; this 1-2 ms): when
    ``2**n <= n_permutations`` every sign pattern is enumerated and ``p = #{patterns at least as extreme} /
    2**n`` (the observed pattern included; the exact randomization p-value, equal to scipy's,
    ``tests/stats/test_prompt_effects.py``); otherwise ``n_permutations`` random patterns (each sign a fair
    coin from ``rng``) give ``p = (1 + #{at least as extreme}) / (1 + n_permutations)`` (Phipson & Smyth
    2010). Two-sided: twice the smaller one-sided p-value, capped at 1, as scipy does. Ties within
    :func:`tie_tolerance` of the observed mean count as at least as extreme.

    >>> signflip_pvalue([0.3, 0.5, 0.2], alternative="greater")
    0.125
    """
    alternative = check_choice("alternative", alternative, ("two-sided", "less", "greater"))
    n_permutations = check_int("n_permutations", n_permutations, 1)
    d = np.asarray(d, dtype=float).ravel()
    if d.size < 2:
        raise bad_value("d", d.tolist(), "two or more values (one per prompt)")
    if np.all(d == 0):
        return 1.0
    n = d.size
    gen, _ = resolve_rng(rng)
    exact = 2**n <= n_permutations
    total = 2**n if exact else n_permutations
    obs = d.mean()
    gamma = tie_tolerance(obs)
    n_less = n_greater = 0
    step = max(1, _FLIP_CHUNK // n)
    for s in range(0, total, step):
        rows = min(step, total - s)
        if exact:  # pattern j flips the values whose bit is set in j
            bits = (np.arange(s, s + rows)[:, None] >> np.arange(n)) & 1
        else:
            raw = gen.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
            bits = np.unpackbits(raw, axis=1, count=n)
        null = (d * (1 - 2 * bits.astype(np.int8))).mean(axis=1)
        n_less += int(np.count_nonzero(null <= obs + gamma))
        n_greater += int(np.count_nonzero(null >= obs - gamma))
    adj = 0 if exact else 1
    less, greater = (n_less + adj) / (total + adj), (n_greater + adj) / (total + adj)
    if alternative == "less":
        return float(less)
    if alternative == "greater":
        return float(greater)
    return float(min(1.0, 2 * min(less, greater)))
