"""Issue 24: bounded inputs, typed files, outputs that survive full disks and concurrent runs, clean interrupts.

One test (or one parametrized table) per kind of failure, each naming the error it expects:
unbounded work -> ``LimitError``; type confusion in files -> ``InputError`` with ``file:line`` and the field;
partial work -> every option and file checked before any work (``InputError``, nothing written); a full disk
-> ``OutputError`` (exit 1, the old result intact); a second run on the same ``--out`` -> ``BusyError``
(exit 2, naming the first); Ctrl-C under ``--executor processes`` -> one message, exit 130, no worker left.

No subprocess here has a wall-clock timeout: on a slow or loaded machine they just take longer.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from circuitry.cli import main
from circuitry.errors import BusyError, InputError, LimitError, OutputError

ROOT = Path(__file__).resolve().parents[2]
IDS = {"clean": [0, 1, 2, 1], "corrupted": [0, 3, 2, 3], "answers": [2], "foils": [4]}


@pytest.fixture(scope="module")
def zoo():
    from circuitry.models import load_model

    return load_model("zoo:attn-only-2l")


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _claim_json(t: Path, **over) -> Path:
    claim = {"id": "c", "type": "sufficiency", "statement": "s", "heads": ["L1H6"], **over}
    (t / "c.json").write_text(json.dumps({"version": 1, "model": "zoo:attn-only-2l", "task": "induction",
                                          "claims": [claim]}))
    return t / "c.json"


def _big_task(t: Path) -> Path:
    with open(t / "big.jsonl", "w") as fh:
        line = json.dumps(IDS) + "\n"
        fh.writelines(line for _ in range(1_000_000))
    return t / "big.jsonl"


# --- unbounded work: refused up front (LimitError, exit 2), with the limit and what it derives from -----------

LIMITS = [
    ("discover --n-random 1e8", lambda t: ["discover", "--n-random", "100000000", "--out", str(t / "o")],
     r"--n-random=100000000 is beyond the limit 10000 \(time"),
    ("discover --steps 1e6", lambda t: ["discover", "--method", "eap-ig", "--steps", "1000000", "--out", str(t / "o")],
     r"--steps=1000000 is beyond the limit 1000 \(time"),
    ("discover --n-resamples 1e9", lambda t: ["discover", "--n-resamples", str(10**9), "--out", str(t / "o")],
     r"--n-resamples=1000000000 is beyond the limit"),
    ("claim n_random 1e9", lambda t: ["validate", str(_claim_json(t, n_random=1e9)), "--out", str(t / "o")],
     r"n_random.*less than or equal to 10000"),
    ("claim draws 1e12", lambda t: ["validate", str(_claim_json(t, type="ablation_vs_random", draws=10**12,
                                                                heads=["L1H6"], metric="loss")), "--out", str(t / "o")],
     r"draws.*less than or equal to 1000000"),
    ("task file of 1e6 lines", lambda t: ["patch", "--task", str(_big_task(t)), "--out", str(t / "o")],
     r"has 1000000 lines, beyond the limit of 100000 pairs \(memory and time"),
    ("scores --n-samples 1e8", lambda t: ["scores", "--model", "zoo:attn-only-2l", "--n-samples", "100000000",
                                          "--out", str(t / "o")], r"--n-samples=100000000 is beyond the limit 1000"),
    ("scores --n-baseline 1e9", lambda t: ["scores", "--model", "zoo:attn-only-2l", "--n-baseline", str(10**9),
                                           "--out", str(t / "o")], r"--n-baseline=1000000000 is beyond the limit"),
    ("analyze --n-prompts 1e5 (memory)", lambda t: ["analyze", "--n-prompts", "100000", "--out", str(t / "o")],
     r"--n-prompts=100000 is beyond the limit \d+ \(memory: a pair of 33 tokens holds"),
    ("patch --n-prompts 1e5 (memory)", lambda t: ["patch", "--n-prompts", "100000", "--out", str(t / "o")],
     r"--n-prompts=100000 is beyond the limit \d+ \(memory"),
    ("dynamics --n-heldout 1e9", lambda t: ["dynamics", "--n-heldout", str(10**9), "--out", str(t / "o")],
     r"--n-heldout=1000000000 is beyond the limit 100000"),
    ("decodability --n-permutations 1e9", lambda t: ["decodability", "--n-permutations", str(10**9), "--out",
                                                     str(t / "o")], r"--n-permutations=1000000000 is beyond the limit"),
    ("decodability --n-examples 1e6", lambda t: ["decodability", "--n-examples", "0,1000000", "--out", str(t / "o")],
     r"--n-examples=1000000 is beyond the limit 1024"),
]


@pytest.mark.parametrize("case", LIMITS, ids=[c[0] for c in LIMITS])
def test_unbounded_work_is_refused_up_front_with_a_limit_error(case, tmp_path, capsys, monkeypatch):
    import circuitry.cli_common

    # the memory limit derives from the memory available; fix it at 2 GiB so the test means the same everywhere
    monkeypatch.setattr(circuitry.cli_common, "memory_budget", lambda: 2 * 2**30)
    _, argv, pattern = case
    t0 = time.process_time()
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and re.search(pattern, err), err
    assert not (tmp_path / "o").exists() and not (tmp_path / ".o.partial").exists()
    assert time.process_time() - t0 < 60  # refused, not attempted (CPU time: a loaded machine does not matter)


def test_limit_error_is_an_input_error_in_python(zoo, tmp_path):
    from circuitry.prompts import make_task

    with pytest.raises(LimitError, match=r"big.jsonl' has 1000000 lines, beyond the limit"):
        make_task(str(_big_task(tmp_path)), zoo)
    assert issubclass(LimitError, InputError)


# --- type confusion in files: InputError naming file:line and the field, before any model runs ----------------

def _task(t, lines, name="t.jsonl"):
    (t / name).write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return str(t / name)


def _make(t, z, lines):
    from circuitry.prompts import make_task

    return make_task(_task(t, lines), z)


def _graph_json(t, data):
    from circuitry.graph import read_node_link_json

    (t / "g.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return read_node_link_json(t / "g.json")


def _gexf(t, description):
    from circuitry.graph import read_gexf

    (t / "g.gexf").write_text('<?xml version="1.0"?><gexf xmlns="http://www.gexf.net/1.2draft" version="1.2"><meta>'
                              f'<creator>x</creator><description>{description}</description></meta><graph '
                              'defaultedgetype="directed"><nodes/><edges/></graph></gexf>')
    return read_gexf(t / "g.gexf")


def _dec_file(t, z, raw: bytes):
    from circuitry.decodability.tasks import read_task_file

    (t / "d.jsonl").write_bytes(raw)
    return read_task_file(t / "d.jsonl", z, max_examples=1)


def _report(t, config):
    from circuitry.analysis.reproduce import load_report

    (t / "r.json").write_text(json.dumps({"config": config, "provenance": {}, "findings": []}))
    return load_report(t / "r.json")


TEXT = {"clean": "a b", "corrupted": "a c"}
TYPES = [
    ("answers is a string, not a list", lambda t, z: _make(t, z, [{**TEXT, "answers": "Mary"}] * 2),
     r"t.jsonl:1: field 'answers': Input should be a valid list, got 'Mary'"),
    ("token-id answers is a string", lambda t, z: _make(t, z, [{**IDS, "answers": "Mary"}] * 2),
     r"t.jsonl:1: field 'answers': Input should be a valid list, got 'Mary'"),
    ("positions hold text", lambda t, z: _make(t, z, [{**TEXT, "positions": ["x"]}] * 2),
     r"t.jsonl:1: field 'positions.0': Input should be a valid integer, got 'x'"),
    ("lone surrogate in text", lambda t, z: _make(t, z, ['{"clean": "a \\ud800", "corrupted": "a b"}'] * 2),
     r"t.jsonl:1: the text .* holds a lone surrogate"),
    ("header params is a string", lambda t, z: _make(t, z, [{"header": {"params": "abc"}}, IDS, IDS]),
     r"t.jsonl:1: field 'params': Input should be a valid dictionary, got 'abc'"),
    ("header seed is a string", lambda t, z: _make(t, z, [{"header": {"seed": "7"}}, IDS, IDS]),
     r"t.jsonl:1: field 'seed': Input should be a valid integer"),
    ("header metric unknown", lambda t, z: _make(t, z, [{"header": {"metric": "acc"}}, IDS, IDS]),
     r"t.jsonl:1: field 'metric'"),
    ("graph JSON nodes are numbers", lambda t, z: _graph_json(t, {"directed": True, "multigraph": False, "graph": {},
                                                                  "nodes": [1, 2], "edges": []}),
     r"g.json: field 'nodes.0': Input should be a valid dictionary"),
    ("graph JSON nested 1e5 deep", lambda t, z: _graph_json(t, '{"directed": true, "nodes": [], "edges": '
                                                            + "[" * 100000 + "]" * 100000 + "}"),
     r"nested at most 32 levels"),
    ("GEXF description not circuitry's", lambda t, z: _gexf(t, "circuitry graph attributes: [1, 2"),
     r"g.gexf.*<description> starts as circuitry's but does not hold a JSON object"),
    ("decodability task file in Latin-1", lambda t, z: _dec_file(
        t, z, json.dumps({"task": "a", "pairs": [[1, 2]], "query": 3, "answer": 4}).encode()[:-1] + b', "x": "\xe9"}\n'),
     r"d.jsonl:1: the file is not UTF-8"),
    ("decodability task file nested 1e5 deep", lambda t, z: _dec_file(t, z, b"[" * 100000 + b"]" * 100000),
     r"d.jsonl:1: JSON nested more than 32 levels"),
    ("decodability pairs hold objects", lambda t, z: _dec_file(
        t, z, json.dumps({"task": "a", "pairs": [[{"x": 1}, 2]], "query": 3, "answer": 4}).encode()),
     r"d.jsonl:1: field 'pairs.0.0"),
    ("report config is a list", lambda t, z: _report(t, [1, 2]),
     r"r.json': field /config: Input should be a valid dictionary"),
    ("report config has a bad field", lambda t, z: _report(t, {"model": 3}), r"r.json': field /config"),
]


@pytest.mark.parametrize("case", TYPES, ids=[c[0] for c in TYPES])
def test_a_file_field_of_the_wrong_type_is_an_input_error_naming_it(case, tmp_path, zoo):
    _, fn, pattern = case
    with pytest.raises(InputError, match=pattern) as info:
        fn(tmp_path, zoo)
    assert "Fix" in str(info.value) or "expected" in str(info.value)


# --- partial work: every option and file checked before any work, nothing written -----------------------------

PARTIAL = [
    ("decodability --tasks mapping nope", lambda t: ["decodability", "--tasks", "mapping", "nope", "--out",
                                                     str(t / "o")], r"--tasks='nope' is invalid.*'nope' is none"),
    ("discover --stability-splits -1", lambda t: ["discover", "--stability-splits", "-1", "--out", str(t / "o")],
     r"--stability-splits=-1 is invalid"),
    ("discover --acdc-splits 1000", lambda t: ["discover", "--method", "acdc", "--acdc-splits", "1000", "--out",
                                               str(t / "o")], r"--acdc-splits=1000 is beyond the limit 100"),
    ("discover --faithfulness-alpha 2", lambda t: ["discover", "--faithfulness-alpha", "2", "--out", str(t / "o")],
     r"--faithfulness-alpha=2.0 is invalid"),
    ("discover on 2 prompts", lambda t: ["discover", "--n-prompts", "2", "--out", str(t / "o")],
     r"--n-prompts=2 is invalid: expected at least 4 prompt pairs"),
    ("scores --alpha 0", lambda t: ["scores", "--model", "zoo:attn-only-2l", "--alpha", "0", "--out", str(t / "o")],
     r"--alpha=0.0 is invalid"),
    ("dynamics --heldout of floats", lambda t: ["dynamics", "--heldout", str(_floats(t)), "--out", str(t / "o")],
     r"holds a float64 array of shape \(2, 3\); expected integer token ids"),
]


def _floats(t):
    import numpy as np

    np.save(t / "h.npy", np.zeros((2, 3)))
    return t / "h.npy"


@pytest.mark.parametrize("case", PARTIAL, ids=[c[0] for c in PARTIAL])
def test_options_and_files_are_checked_before_any_work(case, tmp_path, capsys):
    _, argv, pattern = case
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and re.search(pattern, err), err
    assert not (tmp_path / "o").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


CLAIM = ("version: 1\nmodel: zoo:attn-only-2l\ntask: induction\nn_prompts: 8\nn_resamples: 200\nclaims:\n  - id: x\n"
         "    type: ablation_effect\n    statement: s\n    heads: [L1H6]\n    ablation: mean\n    metric: loss\n"
         "    min_effect: 0.01\n")


def test_validate_several_files_with_a_blocked_output_writes_all_or_nothing(tmp_path, capsys):
    """Before: ``validate a.yaml b.yaml`` with ``OUT/b`` blocked (a file) wrote a's verdicts, then a traceback.
    Now both files' verdicts go to the staging folder, which replaces OUT whole."""
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(CLAIM)
    out = tmp_path / "out"
    out.mkdir()
    (out / "verdicts.json").write_text("{}")  # an earlier result
    (out / "b").write_text("blocks b's folder")
    assert main(["validate", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--out", str(out), "--quiet"]) in (0, 1)
    assert "Traceback" not in capsys.readouterr().err
    assert (out / "a" / "verdicts.json").is_file() and (out / "b" / "verdicts.json").is_file()
    assert not (tmp_path / ".out.partial").exists() and not (tmp_path / ".out.old").exists()


# --- full disk: OutputError, exit 1, no traceback, the old report intact -------------------------------------

_ENOSPC = """
import errno, sys
import circuitry.io as cio
real, calls = cio.atomic_write_bytes, []
def failing(path, data):
    calls.append(path)
    if len(calls) >= {after}:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return real(path, data)
cio.atomic_write_bytes = failing
from circuitry.cli import main
sys.exit(main(sys.argv[1:]))
"""

PATCH = ["patch", "--n-prompts", "8", "--quiet", "--site", "attn_out"]


def _old_report(out: Path) -> dict[str, bytes]:
    assert main([*PATCH, "--out", str(out)]) in (0, 1)
    return {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("after", [1, 2, 3])
def test_a_full_disk_while_writing_is_a_clean_exit_1_and_keeps_the_old_report(tmp_path, after):
    """ENOSPC injected at the 1st, 2nd and 3rd file written (the atomic writer, in a subprocess)."""
    out = tmp_path / "out"
    old = _old_report(out)
    res = subprocess.run([sys.executable, "-c", _ENOSPC.format(after=after), *PATCH, "--site", "z", "--out", str(out)],
                         capture_output=True, text=True, env=_env())
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "OutputError" not in res.stderr
    assert "no space left on the disk" in res.stderr and "unchanged" in res.stderr
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == old  # the old report, byte for byte
    assert not (tmp_path / ".out.partial").exists() and not (tmp_path / ".out.lock").exists()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_a_really_full_filesystem_keeps_the_old_report(tmp_path):
    """A real small filesystem (tmpfs; needs root), filled until the re-run cannot write its figure."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "8m"):
        pytest.skip("cannot mount a tmpfs here (not root, or no permission)")
    try:
        out = disk / "out"
        old = _old_report(out)
        used = sum(len(b) for b in old.values())
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        with open(disk / "ballast", "wb") as fh:  # leave less room than one more report needs
            fh.write(b"\0" * max(0, free - used // 2))
        res = subprocess.run([sys.executable, "-m", "circuitry.cli", *PATCH, "--out", str(out)], capture_output=True,
                             text=True, env=_env())
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr and "no space left on the disk" in res.stderr
        assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == old
        assert not (disk / ".out.partial").exists()
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_output_error_in_python(tmp_path):
    from circuitry.io import StagedOutput

    with pytest.raises(OutputError, match="no space left on the disk.*unchanged"):
        with StagedOutput(tmp_path / "o", command="t") as stage:
            raise OSError(errno.ENOSPC, "No space left on device", str(stage / "x"))
    assert not (tmp_path / "o").exists() and not (tmp_path / ".o.partial").exists()


def test_a_rerun_replaces_its_previous_result_whole_and_keeps_everything_else(tmp_path):
    from circuitry.io import MARKER, StagedOutput

    out = tmp_path / "o"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")  # not circuitry's: never touched
    with StagedOutput(out, command="scores --out o", name="scores") as stage:
        (stage / "scores.json").write_text("s")
    with StagedOutput(out, command="patch --site z", name="patch") as stage:
        (stage / "patching.json").write_text("1")
        (stage / "figures").mkdir()
        (stage / "figures" / "z.png").write_text("1")
    with pytest.raises(KeyError):
        with StagedOutput(out, command="patch --site v", name="patch") as stage:
            (stage / "patching.json").write_text("2")
            raise KeyError("a failure mid-run")
    assert (out / "patching.json").read_text() == "1" and (out / "figures" / "z.png").exists()
    with StagedOutput(out, command="patch --site q", name="patch") as stage:
        (stage / "patching.json").write_text("3")  # this run draws no figure: the old one goes with its run
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "patching.json", "scores.json", "thesis.tex"]
    assert (out / "patching.json").read_text() == "3" and (out / "scores.json").read_text() == "s"
    assert not (tmp_path / ".o.partial").exists() and not (tmp_path / ".o.old").exists()


# --- concurrent runs: the second refuses (BusyError, exit 2) and names the first; a stale lock is taken over ---

_HOLD = """
import sys, time
from circuitry.io import OutputLock
OutputLock(sys.argv[1], command="circuitry patch --site z --out " + sys.argv[1], options={{"site": "z"}}).acquire()
print("locked", flush=True)
time.sleep(10**6)
"""


def test_a_second_run_on_the_same_out_refuses_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "o"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD.format(), str(out)], stdout=subprocess.PIPE, text=True,
                              env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main([*PATCH, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"being written by another run: pid {holder.pid}, `circuitry patch --site z --out {out}`" in err, err
        assert "started 20" in err and "with different options" in err and "Traceback" not in err
        assert not out.exists()
        with pytest.raises(BusyError, match=f"pid {holder.pid}"):
            from circuitry.io import OutputLock

            OutputLock(out, command="x").acquire()
    finally:
        holder.kill()  # SIGKILL: its lock stays behind, stale
        holder.wait()
    assert (tmp_path / ".o.lock").exists()
    assert main([*PATCH, "--out", str(out)]) in (0, 1)  # the dead run's lock is taken over
    assert (out / "patching.json").is_file() and not (tmp_path / ".o.lock").exists()


# --- interrupts and orphans under --executor processes ---------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pids) -> list[int]:
    import psutil

    out = []
    for p in pids:
        try:
            if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _wait_for_workers(proc, n: int) -> list[int]:
    """The pids of ``proc``'s pool workers once ``n`` of them run (polls; ends when ``proc`` ends)."""
    while proc.poll() is None:
        kids = _descendants(proc.pid)
        if len(kids) >= n + 1:  # the workers and multiprocessing's resource tracker
            time.sleep(1.0)  # let them start their tasks
            return _descendants(proc.pid)
        time.sleep(0.1)
    raise AssertionError(f"the run ended before it started its workers: {proc.communicate()}")


def _gone_eventually(pids, seconds: float = 300) -> list[int]:
    """Poll until ``pids`` have exited (the bound only ends a failing test; a passing one waits ~1 s)."""
    end = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < end:
        time.sleep(0.2)
    return _alive(pids)


RANDOM_CLAIM = ("version: 1\nmodel: zoo:attn-only-2l\ntask: induction\nn_prompts: 8\nclaims:\n  - id: x\n"
                "    type: ablation_vs_random\n    statement: s\n    heads: [L0H0, L0H1, L0H2, L0H4, L1H0, L1H1, L1H2, L1H3]\n"
                "    metric: loss\n"
                "    draws: 1000000\n    match: all\n")


def _default_sigint() -> None:
    """A child's SIGINT as in a terminal. A job started in the background of a non-interactive shell (``cmd &``,
    as some CI runners do) inherits SIGINT *ignored*, and Python then installs no KeyboardInterrupt handler: a
    Ctrl-C test would test nothing there."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_under_processes_prints_one_message_exits_130_and_stops_every_worker(tmp_path):
    (tmp_path / "c.yaml").write_text(RANDOM_CLAIM)
    proc = subprocess.Popen([sys.executable, "-m", "circuitry.cli", "validate", str(tmp_path / "c.yaml"), "--out",
                             str(tmp_path / "o"), "--executor", "processes", "--workers", "2", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True, preexec_fn=_default_sigint)
    workers = []
    try:
        workers = _wait_for_workers(proc, 2)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in _alive(workers):
            os.kill(p, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.count("interrupted") == 1, err
    assert _gone_eventually(workers) == []
    assert not (tmp_path / "o").exists() and not (tmp_path / ".o.lock").exists()


_SUBMIT_INTERRUPT = """
import os, signal, sys
from concurrent.futures import Future
import circuitry.executors as ex

class Pool:  # a Ctrl-C arrives while the workers start, as pool.submit spawns them
    def submit(self, fn, *args):
        os.kill(os.getpid(), signal.SIGINT)
        f = Future()
        f.set_result(None)
        return f

try:
    ex._submit(Pool(), None, [1, 2], [0, 0])
except KeyboardInterrupt:
    print("interrupted")
else:
    print("lost")
"""


def test_ctrl_c_while_workers_start_is_not_lost():
    """SIGINT is blocked, not ignored, while tasks are submitted (workers start then and inherit the mask): a
    Ctrl-C in that window interrupts the run once submission ends (an ignored one was lost, and a 23-second run
    went on to its end)."""
    res = subprocess.run([sys.executable, "-c", _SUBMIT_INTERRUPT], capture_output=True, text=True, env=_env(),
                         preexec_fn=_default_sigint)
    assert res.stdout.strip() == "interrupted", res.stdout + res.stderr


_POOL = """
import sys, time
sys.path.insert(0, sys.argv[1])
from circuitry.executors import run_tasks
import tasks_mod
print("start", flush=True)
run_tasks(getattr(tasks_mod, sys.argv[2]), list(range(4)), seed=0, executor="processes", max_workers=2)
"""

_TASKS = """
import time
def sleepy(task, rng):
    time.sleep(10**6)
def failing(task, rng):
    if task == 0:
        raise ValueError("task 0 fails")
    time.sleep(10**6)
"""


def _pool_run(tmp_path, fn: str):
    (tmp_path / "tasks_mod.py").write_text(_TASKS)
    return subprocess.Popen([sys.executable, "-c", _POOL, str(tmp_path), fn], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    proc = _pool_run(tmp_path, "sleepy")
    workers = _wait_for_workers(proc, 2)
    try:
        os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up: the workers must notice by themselves
        proc.wait()
        assert _gone_eventually(workers) == []
    finally:
        for p in _alive(workers):
            os.kill(p, signal.SIGKILL)


def test_a_failing_task_stops_the_pool_at_once(tmp_path):
    """Before: the other workers kept running their (hour-long) tasks after one failed."""
    proc = _pool_run(tmp_path, "failing")
    try:
        _, err = proc.communicate()
        assert proc.returncode == 1 and "ValueError: task 0 fails" in err
        assert _descendants(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()


# --- --bos where the messages say to pass it -----------------------------------------------------------------

@pytest.mark.parametrize("command", [["scores", "--model", "zoo:attn-only-2l"], ["dynamics"]])
def test_scores_and_dynamics_take_bos(command, tmp_path, capsys):
    assert main([*command, "--bos", "999", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bos=999 is invalid" in err and "Traceback" not in err


# --- no subprocess in the tests has a fixed wall-clock timeout --------------------------------------------------

def test_no_subprocess_has_a_wall_clock_timeout():
    found = set()
    for f in (ROOT / "tests").rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        if "subprocess" in text and re.search(r"\btimeout=", text):
            found.add(str(f.relative_to(ROOT)))
    assert not found, sorted(found)


def test_a_resumable_run_resumes_only_with_the_same_options(tmp_path):
    from circuitry.io import StagedOutput

    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        with StagedOutput(out, command="analyze", options={"seed": 0}, resume=True) as stage:
            (stage / "stages").mkdir()
            (stage / "stages" / "scores.json").write_text("{}")
            raise KeyboardInterrupt
    assert not out.exists() and (tmp_path / ".o.partial" / "stages" / "scores.json").exists()
    with pytest.raises(KeyboardInterrupt):
        with StagedOutput(out, command="analyze", options={"seed": 0}, resume=True) as stage:
            assert (stage / "stages" / "scores.json").exists()  # the same options: resumed
            raise KeyboardInterrupt
    with StagedOutput(out, command="analyze", options={"seed": 1}, resume=True) as stage:
        assert not (stage / "stages").exists()  # other options: a fresh start
        (stage / "report.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == [".circuitry-output.json", "report.json"]
