"""Run independent tasks (random-head draws, bootstrap resamples, checkpoints, seeds) serially, in local
processes, or on Ray, with the same numbers whichever runs them.

Every task gets its own random stream, spawned from one seed with :meth:`numpy.random.SeedSequence.spawn`
(task ``i`` always gets child ``i``), and results come back in task order; so a sweep's results depend on
the seed and the tasks only, never on the executor, the number of workers or the order tasks finish in.

    >>> from circuitry.executors import run_tasks
    >>> def draw(task, rng):
    ...     return task + float(rng.standard_normal())
    >>> a = run_tasks(draw, [0, 10, 20], seed=7)
    >>> b = run_tasks(draw, [0, 10, 20], seed=7, executor="processes", max_workers=2)  # doctest: +SKIP
    >>> a == run_tasks(draw, [0, 10, 20], seed=7)
    True

Task functions that run in other processes must be importable (defined at module level); heavy state
such as a loaded model is best loaded once per worker inside the task function (e.g. cached with
:func:`functools.lru_cache`), not shipped with every task.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence, TypeVar

import numpy as np

from circuitry.errors import InputError, bad_value

T = TypeVar("T")
R = TypeVar("R")

ExecutorName = Literal["serial", "processes", "ray"]
"""``"serial"``: one after another in this process. ``"processes"``: a local process pool
(:class:`concurrent.futures.ProcessPoolExecutor`, ``spawn`` start method). ``"ray"``: Ray tasks on the
cluster ``ray.init`` connects to (a local one when none is running; ``pip install circuitry-lab[scale]``)."""

EXECUTORS: tuple[str, ...] = ExecutorName.__args__  # type: ignore[attr-defined]


def task_seeds(seed: int | np.random.SeedSequence | None, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seed sequences of ``seed`` (the same children for the same seed).

    >>> [int(s.generate_state(1)[0]) for s in task_seeds(0, 2)] == [int(s.generate_state(1)[0]) for s in task_seeds(0, 2)]
    True
    """
    if seed is None:
        raise bad_value("seed", seed, "an int or a numpy SeedSequence (a sweep without a seed cannot be reproduced)")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(_check_seed(seed))
    return ss.spawn(n)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise bad_value("seed", seed, "a non-negative int")
    return int(seed)


def check_executor(executor: Any, max_workers: Any = None) -> None:
    """Raise :class:`InputError` unless ``executor`` is one of :data:`EXECUTORS` (``"ray"`` only with Ray
    installed) and ``max_workers`` is ``None`` or a whole number >= 1; nothing runs before this check."""
    if executor not in EXECUTORS:
        raise bad_value("executor", executor, f"one of {EXECUTORS}")
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1):
        raise bad_value("max_workers", max_workers, "a whole number >= 1, or None")
    if executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise InputError(_NO_RAY)


def check_picklable(obj: Any, name: str) -> None:
    """Raise :class:`InputError` naming ``name`` unless ``obj`` pickles (what a process or Ray worker needs)."""
    import pickle

    try:
        pickle.dumps(obj)
    except Exception as exc:  # pickle raises PicklingError, AttributeError or TypeError depending on the object
        raise InputError(f"{name}={obj!r} cannot be sent to worker processes ({type(exc).__name__}: {exc}). Fix: "
                         "define functions it uses (e.g. a custom metric) at module level, not as a lambda or a "
                         "nested function, or use executor='serial'") from None


_NO_RAY = ("executor='ray' needs Ray, which is not installed. Fix: pip install 'circuitry-lab[scale]' (or pip install "
           "ray), or use executor='processes'")


def _call(fn: Callable[[T, np.random.Generator], R], task: T, ss: np.random.SeedSequence) -> R:
    """Run one task with its own generator (module level, so process pools can pickle it)."""
    return fn(task, np.random.default_rng(ss))


def run_tasks(fn: Callable[[T, np.random.Generator], R], tasks: Sequence[T], *, seed: int | np.random.SeedSequence,
              executor: ExecutorName = "serial", max_workers: int | None = None) -> list[R]:
    """``[fn(task, rng_i) for i, task in enumerate(tasks)]``, run by ``executor``.

    Parameters
    ----------
    fn
        ``fn(task, rng) -> result``; ``rng`` is a :class:`numpy.random.Generator` of the task's own stream.
        For ``"processes"`` and ``"ray"`` it must be picklable (a module-level function).
    tasks
        The independent units of work (anything picklable), e.g. chunks of random draws or seeds.
    seed
        The sweep's seed; task ``i`` draws from ``SeedSequence(seed).spawn(len(tasks))[i]``.
    executor
        See :data:`ExecutorName`.
    max_workers
        Processes for ``"processes"`` (default: the CPUs this process may use; each worker then uses
        ``CPUs // workers`` BLAS/OpenMP threads, so the workers share the cores; the pool is kept for later
        calls with the same count until :func:`shutdown_pools` or exit); CPUs requested from Ray per run for ``"ray"``
        when it starts a local instance (default: all).

    Returns
    -------
    list
        One result per task, in task order; identical for every executor.

    Raises
    ------
    InputError
        An unknown executor, a bad seed or worker count, or ``"ray"`` without Ray installed.
    """
    check_executor(executor, max_workers)
    if not callable(fn):
        raise bad_value("fn", fn, "a callable fn(task, rng) -> result")
    tasks = list(tasks)
    seeds = task_seeds(seed, len(tasks))
    if executor == "serial" or not tasks:
        return [_call(fn, t, s) for t, s in zip(tasks, seeds)]
    if executor == "processes":
        from concurrent.futures.process import BrokenProcessPool

        workers = max_workers or available_cpus()
        try:
            return [f.result() for f in _submit(_pool(workers), fn, tasks, seeds)]
        except BrokenProcessPool:
            _POOLS.pop(workers, None)  # a dead worker: the next call starts afresh
            raise
        except BaseException:  # an interrupt or a failed task: stop every worker now, none is left running
            _kill_pool(workers)
            raise
    return _run_ray(fn, tasks, seeds, max_workers)


def _submit(pool, fn, tasks: list, seeds: list) -> list:
    """Submit every task. Workers start during submission; SIGINT is *blocked* in this thread meanwhile, so
    that they start with it blocked (a signal mask survives exec) until their initializer ignores it, and a
    Ctrl-C reaches only this process, which stops the pool, instead of printing a traceback from every worker
    that was still starting up. Blocked, not ignored: a Ctrl-C that arrives during submission stays pending
    and interrupts the run when the mask is restored (an ignored one was lost, and the run went on). Where
    the OS has no signal masks, SIGINT is ignored meanwhile instead."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    masks = main and hasattr(signal, "pthread_sigmask")
    if masks:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    else:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        return [pool.submit(_call, fn, t, s) for t, s in zip(tasks, seeds)]
    finally:
        if masks:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        elif previous is not None:
            signal.signal(signal.SIGINT, previous)


_POOLS: dict = {}  # worker count -> a live process pool, kept for the next call (start-up is ~9 s here)


def _pool(workers: int):
    """The process pool of ``workers`` spawned workers, started on first use and reused by later calls
    (an analysis runs several nulls; each worker imports torch and circuitry once). Shut down at exit."""
    if workers not in _POOLS:
        import atexit
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
        threads = max(1, available_cpus() // workers)  # the workers share the cores instead of each taking all
        _POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                              initargs=(threads, os.getpid()))
        if len(_POOLS) == 1:
            atexit.register(shutdown_pools)
    return _POOLS[workers]


def shutdown_pools() -> None:
    """Stop the worker processes that ``executor="processes"`` keeps between calls."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(cancel_futures=True)


def _kill_pool(workers: int) -> None:
    """Terminate the pool of ``workers`` at once (its running tasks too) and forget it."""
    pool = _POOLS.pop(workers, None)
    if pool is None:
        return
    procs = list(getattr(pool, "_processes", {}).values())  # the executor has no public kill
    for p in procs:
        p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
    for p in procs:
        p.join(5)
        if p.is_alive():  # pragma: no cover - a worker stuck in C code ignoring SIGTERM
            p.kill()


def _init_worker(threads: int, parent: int) -> None:
    """A process-pool worker's initializer: Ctrl-C is the parent's to handle (it stops the pool; workers
    print no tracebacks), the worker exits when its parent is gone (never an orphan), and BLAS threads are
    limited (:func:`_limit_threads`)."""
    import os
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="circuitry-parent-watch", daemon=True).start()
    _limit_threads(threads)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _limit_threads(threads: int) -> None:
    """A process-pool worker's initializer: at most ``threads`` BLAS/OpenMP threads, set in the environment
    (read by torch when a task first imports it) and in torch itself when the worker already imported it
    (a spawned worker re-imports the parent's main module first)."""
    import os
    import sys

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _run_ray(fn, tasks: list, seeds: list, max_workers: int | None) -> list:
    try:
        import ray
    except ImportError:
        raise InputError(_NO_RAY) from None
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=max_workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(_call)
        fn_ref = ray.put(fn)
        return ray.get([remote.remote(fn_ref, t, s) for t, s in zip(tasks, seeds)])
    finally:
        if started:
            ray.shutdown()
