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
