"""The pluggable executor: a random-head null run as independent chunks gives identical numbers serially,
in a process pool and on Ray (a local Ray instance: Ray 2.60 removed ``local_mode``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from circuitry.errors import InputError
from circuitry.executors import run_tasks, task_seeds
from tests.scale.sweep_tasks import null_chunk

TASKS = [3, 3, 2]  # three chunks of draws


@pytest.fixture(scope="module")
def serial():
    return run_tasks(null_chunk, TASKS, seed=11)


def test_serial_is_the_per_task_streams(serial):
    # chunk i is exactly what the i-th spawned stream draws: recompute it by hand
    for i, n in enumerate(TASKS):
        assert null_chunk(n, np.random.default_rng(task_seeds(11, len(TASKS))[i])) == serial[i]
    effects = [e for chunk in serial for _, e in chunk]
    assert len(effects) == sum(TASKS) and np.ptp(effects) > 1e-3  # different head sets, different effects
    assert run_tasks(null_chunk, TASKS, seed=12) != serial  # another seed, other draws


@pytest.mark.slow
def test_processes_equal_serial(serial):
    assert run_tasks(null_chunk, TASKS, seed=11, executor="processes", max_workers=2) == serial


@pytest.mark.slow
def test_ray_equals_serial(serial, monkeypatch):
    pytest.importorskip("ray")
    root = str(Path(__file__).resolve().parents[2])  # Ray workers import tests.scale.sweep_tasks from here
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    assert run_tasks(null_chunk, TASKS, seed=11, executor="ray", max_workers=2) == serial


def test_bad_input_names_the_parameter():
    with pytest.raises(InputError, match="executor='dask'"):
        run_tasks(null_chunk, TASKS, seed=1, executor="dask")
    with pytest.raises(InputError, match="seed=None"):
        run_tasks(null_chunk, TASKS, seed=None)
    with pytest.raises(InputError, match="max_workers=0"):
        run_tasks(null_chunk, TASKS, seed=1, executor="processes", max_workers=0)


# --------------------------------------------------------------------------- the library's own nulls
@pytest.fixture(scope="module")
def effect():
    """The ablation effect of head sets on ``attn-only-2l`` (a pickling :class:`HeadSetEffect`), at one
    thread: worker processes run one BLAS thread each, and the values are compared bit for bit."""
    import torch

    from circuitry.interventions import head_set_effect_fn
    from circuitry.metrics import Targets
    from circuitry.models import load_model
    from circuitry.prompts import induction_pairs

    torch.set_num_threads(1)
    model = load_model("zoo:attn-only-2l")
    data = induction_pairs(8, block_len=6, vocab_size=model.info.d_vocab, bos=0, seed=4)
    return head_set_effect_fn(model, data.clean_ids(), Targets.of(data), method="mean", metric="loss")


def _null(effect, executor):
    from circuitry.labels import all_heads
    from circuitry.stats import circuit_vs_random

    return circuit_vs_random(effect, ["L1H6", "L1H4", "L0H1"], all_heads(2, 8), null="conditional", given=["L0H1"],
                             n_draws=40, rng=9, executor=executor, max_workers=2)


def test_effect_pickles_with_its_model(effect):
    import pickle

    sets = [("L0H1", "L1H6"), ("L1H4",)]
    again = pickle.loads(pickle.dumps(effect))
    assert again.model is not effect.model and again.model.model_id == "zoo:attn-only-2l"
    assert np.array_equal(again(sets), effect(sets)) and np.ptp(effect(sets)) > 1e-3


@pytest.mark.slow
def test_null_in_processes_equals_serial(effect, monkeypatch):
    import circuitry.executors as ex

    serial = _null(effect, "serial")
    calls = []
    real = ex.run_tasks
    monkeypatch.setattr(ex, "run_tasks", lambda fn, tasks, **kw: calls.append((len(tasks), kw)) or real(fn, tasks, **kw))
    par = _null(effect, "processes")
    assert [(n, kw["executor"], kw["max_workers"]) for n, kw in calls] == [(2, "processes", 2)]  # 40 draws, 2 batches
    assert par.null_distribution == serial.null_distribution and par.pvalue == serial.pvalue
    assert np.ptp(serial.null_distribution) > 1e-3 and serial.n_draws == 40


@pytest.mark.slow
def test_null_on_ray_equals_serial(effect):
    pytest.importorskip("ray")
    serial = _null(effect, "serial")
    assert _null(effect, "ray").null_distribution == serial.null_distribution


def test_null_refuses_a_bad_executor_before_any_work(effect):
    from circuitry.labels import all_heads
    from circuitry.stats import random_head_test

    def never(sets):
        raise AssertionError("effect_fn ran before the executor was checked")

    with pytest.raises(InputError, match="executor='threads'"):
        random_head_test(never, ["L1H6"], all_heads(2, 8), executor="threads")
    with pytest.raises(InputError, match="max_workers=0"):
        random_head_test(never, ["L1H6"], all_heads(2, 8), executor="processes", max_workers=0)


def test_null_refuses_an_effect_that_cannot_reach_the_workers(effect):
    from circuitry.interventions import head_set_effect_fn
    from circuitry.labels import all_heads
    from circuitry.metrics import loss
    from circuitry.stats import random_head_test

    local = head_set_effect_fn(effect.model, effect.ids, effect.targets, metric=lambda lg, t: loss(lg, t))
    assert np.isfinite(local([("L1H6",)])).all()  # it works here...
    with pytest.raises(InputError, match=r"effect_fn=.*cannot be sent to worker processes.*lambda.*executor='serial'"):
        random_head_test(local, ["L1H6"], all_heads(2, 8), executor="processes", max_workers=2)
