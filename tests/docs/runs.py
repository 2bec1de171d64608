"""Run a documented command once per test session, the way a reader would, and keep what it printed.

A command is the exact line a doc shows (``circuitry analyze --out circuitry-results``, ``python
examples/own_task.py out``). It runs as a subprocess in its own temporary folder, in which ``examples`` and
``docs`` link to the repository's, so repository-relative paths work as they do from a checkout. No
wall-clock timeout: the suite must pass on a slow, loaded machine. Results are cached per process (a
module-level cache, so ``tests/test_examples.py`` and ``tests/docs/`` share a run of the same command) and
their folders removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINKED = ("examples", "docs")
CLI = [sys.executable, "-c", "import sys; from circuitry.cli import main; sys.exit(main())"]


@dataclass(frozen=True)
class Run:
    command: str
    cwd: Path
    returncode: int
    stdout: str
    stderr: str

    def text(self, file: str | None) -> str:
        """The run's stdout, or the text of ``file`` (relative to the run's folder) it wrote."""
        return self.stdout if file is None else (self.cwd / file).read_text()


def argv(command: str, cwd: Path) -> list[str]:
    """``command`` as a subprocess argument list: ``circuitry`` -> this interpreter's CLI, ``python`` -> it;
    a word with ``*`` expands to the sorted paths it matches in ``cwd``, as a shell would."""
    words = []
    for word in shlex.split(command):
        matches = sorted(str(p.relative_to(cwd)) for p in cwd.glob(word)) if "*" in word else []
        words += matches or [word]
    if words[0] == "circuitry":
        return CLI + words[1:]
    if words[0] in ("python", "python3"):
        return [sys.executable] + words[1:]
    raise ValueError(f"documented command {command!r} must start with 'circuitry' or 'python'")


def run(command: str) -> Run:
    """Run ``command`` once per process in a fresh folder; the same command (words equal up to a trailing
    ``/``: ``--out out/`` is ``--out out``) returns the cached run."""
    return _run(" ".join(shlex.quote(w.rstrip("/") or w) for w in shlex.split(command)))


@functools.cache
def _run(command: str) -> Run:
    cwd = Path(tempfile.mkdtemp(prefix="circuitry-docs-"))
    atexit.register(shutil.rmtree, cwd, ignore_errors=True)
    for name in LINKED:
        (cwd / name).symlink_to(REPO / name, target_is_directory=True)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path}
    res = subprocess.run(argv(command, cwd), check=False, cwd=cwd, capture_output=True, text=True, env=env)
    return Run(command, cwd, res.returncode, res.stdout, res.stderr)
