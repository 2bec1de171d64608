"""Atomic file writes: results are written to a temporary name in the same folder, then renamed.

A crash mid-write therefore never leaves a truncated result behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write a JSON-serializable object (or a pydantic model) to ``path`` atomically."""
    if hasattr(obj, "model_dump_json"):
        text = obj.model_dump_json(indent=2)
    else:
        text = json.dumps(obj, indent=2, sort_keys=True)
    return atomic_write_text(path, text + "\n")


def check_out_dir(path: str | os.PathLike, *, param: str = "--out") -> Path:
    """Make sure ``path`` is (or can become) a writable folder, *before* any compute, so a long run never
    fails at its end on its output folder. Creates the folder; raises :class:`~circuitry.errors.InputError`
    naming ``param`` when it is a file, cannot be created, or is not writable."""
    from circuitry.errors import InputError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{param}={str(p)!r} is a file; expected a folder. Fix: {param} another path")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".circuitry-write-check.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{param}={str(p)!r} is not a writable folder ({exc.strerror}). Fix: {param} a folder "
                         "you can write to") from None
    return p


# --- whole-folder outputs: a lock on the folder, a staging sibling, one swap at the end -------------------

#: errno values that mean "the output cannot be written here" (full disk, quota, read-only, file too large)
_WRITE_ERRNOS = {28, 122, 30, 27, 5}  # ENOSPC, EDQUOT, EROFS, EFBIG, EIO


def _siblings(out: Path) -> tuple[Path, Path, Path]:
    """``(staging, old, lock)``: the hidden siblings of ``out`` a command uses while it writes ``out``."""
    return (out.parent / f".{out.name}.partial", out.parent / f".{out.name}.old", out.parent / f".{out.name}.lock")


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(info: dict) -> bool:
    """Whether the process a lock names still runs (same pid *and* same start time where the OS says)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    started = _proc_start(pid)
    return started is None or info.get("proc_start") in (None, started)


#: the file in an output folder that records, per command, which entries its last completed run wrote
MARKER = ".circuitry-output.json"
#: the file in a resumable staging folder that records the options of the run that started it: a run with
#: other options starts afresh instead of resuming from it
PARTIAL = ".circuitry-partial.json"


def _check_target(out: Path, param: str) -> None:
    """``out`` is a folder or absent, and its parent can hold the staging sibling: checked before any work."""
    from circuitry.errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError(f"{param}={str(out)!r} is a file; expected a folder. Fix: {param} another path")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".circuitry-write-check.", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{param}={str(out)!r} is not a writable folder ({exc.strerror}). Fix: {param} a folder "
                         "you can write to") from None


class OutputLock:
    """An exclusive lock on an output folder: the file ``.NAME.lock`` beside it holding the pid, command, options
    and start time of the run that writes it. A lock whose process is gone (killed) is stale and taken over.

    Raises :class:`~circuitry.errors.BusyError` when a live run holds the lock."""

    def __init__(self, out: str | os.PathLike, *, command: str, options: dict | None = None, param: str = "--out"):
        self.out, self.command, self.param = Path(out), command, param
        self.options = json.dumps(options or {}, sort_keys=True, default=str)
        self.path = _siblings(self.out)[2]
        self.held = False

    def acquire(self) -> "OutputLock":
        import datetime

        from circuitry.errors import BusyError, OutputError

        info = {"pid": os.getpid(), "proc_start": _proc_start(os.getpid()), "command": self.command,
                "options": self.options, "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = self._read()
                if other is None or _alive(other):
                    if other is None:  # being written this instant by its owner
                        import time

                        time.sleep(0.2)
                        other = self._read()
                        if other is None:
                            self.path.unlink(missing_ok=True)  # empty and not filled in: a run killed mid-write
                            continue
                    if _alive(other):
                        same = other.get("options") == self.options
                        raise BusyError(
                            f"{self.param}={str(self.out)!r} is being written by another run: pid {other.get('pid')}, "
                            f"`{other.get('command')}`, started {other.get('started')}"
                            f"{' with the same options' if same else ' with different options'}. Fix: wait for it to "
                            f"finish{' (it will write the same result)' if same else ''}, stop it, or {self.param} "
                            "another folder")
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            except OSError as exc:
                raise OutputError(f"cannot create the lock {str(self.path)!r} ({exc.strerror}). Fix: {self.param} a "
                                  "folder on a writable disk with free space") from None
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump(info, fh)
            except OSError as exc:
                self.path.unlink(missing_ok=True)
                raise OutputError(f"cannot write the lock {str(self.path)!r} ({exc.strerror}). Fix: free space on "
                                  f"the disk of {self.param}, or choose another folder") from None
            self.held = True
            return self
        raise BusyError(f"{self.param}={str(self.out)!r}: could not take its lock {str(self.path)!r}; another run "
                        "keeps replacing it. Fix: retry, or another folder")

    def _read(self) -> dict | None:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return info if isinstance(info, dict) else None

    def release(self) -> None:
        if self.held:
            mine = self._read()
            if mine and mine.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _recover(out: Path) -> None:
    """Undo a swap that a killed run left half done: every entry still in ``.NAME.old`` that ``out`` lacks goes
    back (the window is a few renames long; a completed swap leaves no ``.NAME.old``)."""
    import shutil

    _, old, _ = _siblings(out)
    if old.is_dir():
        out.mkdir(exist_ok=True)
        for entry in old.iterdir():
            if not (out / entry.name).exists():
                os.replace(entry, out / entry.name)
        shutil.rmtree(old, ignore_errors=True)


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` by hard links where the filesystem allows (no space used), else by copying."""
    import shutil

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)


def as_output_error(exc: OSError, out: Path):
    """An :class:`OutputError` for an ``OSError`` met while writing ``out`` (``None`` when it is not a write
    error: a missing input file stays what it is)."""
    from circuitry.errors import OutputError

    where = str(getattr(exc, "filename", "") or "")
    staging = str(_siblings(out)[0])
    if exc.errno not in _WRITE_ERRNOS and not where.startswith((staging, str(out))):
        return None
    what = {28: "no space left on the disk", 122: "the disk quota is exceeded", 30: "the disk is read-only",
            27: "a file grew too large for the disk"}.get(exc.errno, exc.strerror or str(exc))
    return OutputError(f"could not write the results to {str(out)!r}: {what} ({where or 'while writing'}). The previous "
                       f"contents of {str(out)!r} are unchanged; nothing was replaced. Fix: free space on that disk "
                       f"(df -h {str(out.parent)!r}) or choose another --out, then run the command again")


class StagedOutput:
    """Write a command's whole output, or nothing: the command writes into the hidden sibling ``.NAME.partial``
    (under an :class:`OutputLock`), whose entries replace those of the previous run of the same command (``name``)
    in ``out`` only when the command completes (:meth:`_swap`; other commands' results and files of your own in
    ``out`` are kept).

    So an old complete result stays in ``out`` until a new complete one replaces it; a full disk, an error or
    an interrupt leaves it untouched. With ``resume=True`` (``analyze``) the staging folder outlives a failed
    or killed run, so the next run with the same options picks up its finished stages; ``carry`` names
    sub-folders of the previous ``out`` (``stages``) copied into a fresh staging folder, so a re-run reuses
    them (hard links: no extra space)."""

    def __init__(self, out: str | os.PathLike, *, command: str, options: dict | None = None, resume: bool = False,
                 carry: tuple[str, ...] = (), param: str = "--out", name: str | None = None):
        self.out = Path(out)
        self.name = name or command.split()[0]
        self.staging, self.old, _ = _siblings(self.out)
        self.resume, self.carry, self.param = resume, carry, param
        self.lock = OutputLock(self.out, command=command, options=options, param=param)
        self.command, self.options = command, options

    def __enter__(self) -> Path:
        import shutil

        _check_target(self.out, self.param)
        self.lock.acquire()
        try:
            _recover(self.out)
            if self.staging.exists() and (not self.resume or self._partial_options() != self._options_text()):
                shutil.rmtree(self.staging)  # not resumable, or a killed run's with other options
            self.staging.mkdir(exist_ok=True)
            if self.resume:
                atomic_write_text(self.staging / PARTIAL, self._options_text())
            for sub in self.carry:
                if (self.out / sub).is_dir():
                    _copy_tree(self.out / sub, self.staging / sub)
        except OSError as exc:
            self.lock.release()
            raise (as_output_error(exc, self.out) or exc) from None
        except BaseException:
            self.lock.release()
            raise
        return self.staging

    def __exit__(self, kind, exc, tb) -> bool:
        import shutil

        try:
            if kind is None:
                try:
                    self._swap()
                except OSError as err:
                    if not self.resume:
                        shutil.rmtree(self.staging, ignore_errors=True)
                    raise (as_output_error(err, self.out) or err) from None
                return False
            if not self.resume or not any(p.name != PARTIAL for p in self.staging.rglob("*.json")):
                shutil.rmtree(self.staging, ignore_errors=True)
            if isinstance(exc, OSError):
                mapped = as_output_error(exc, self.out)
                if mapped is not None:
                    raise mapped from None
            return False
        finally:
            self.lock.release()

    def _options_text(self) -> str:
        return json.dumps(self.options or {}, sort_keys=True, default=str)

    def _partial_options(self) -> str | None:
        try:
            return (self.staging / PARTIAL).read_text(encoding="utf-8")
        except OSError:
            return None

    def _swap(self) -> None:
        """Move every entry of the staging folder into ``out``, replacing the entries of the same name and those
        the previous completed run of this command wrote that this one did not (recorded in :data:`MARKER`);
        anything else in ``out`` (another command's results, your files) is left alone. Only renames: a full disk
        cannot stop it half-way."""
        import datetime
        import shutil

        (self.staging / PARTIAL).unlink(missing_ok=True)
        new = sorted(e.name for e in self.staging.iterdir() if e.name != MARKER)
        record = _read_marker(self.out)
        mine = record.get(self.name, {})
        record[self.name] = {"entries": new, "command": self.command, "options": json.loads(json.dumps(
            self.options or {}, default=str)), "finished": datetime.datetime.now().astimezone().isoformat(
            timespec="seconds")}
        atomic_write_json(self.staging / MARKER, record)  # the one write: before anything in out is touched
        if not self.out.exists():
            os.replace(self.staging, self.out)
            return
        shutil.rmtree(self.old, ignore_errors=True)
        self.old.mkdir()
        stale = set(mine.get("entries", [])) - set(new) if isinstance(mine, dict) else set()
        for name in sorted(stale | set(new) | {MARKER}):
            if (self.out / name).exists() or (self.out / name).is_symlink():
                os.replace(self.out / name, self.old / name)
        for name in [*new, MARKER]:
            os.replace(self.staging / name, self.out / name)
        shutil.rmtree(self.old, ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)


def _read_marker(out: Path) -> dict:
    """The per-command record of ``out``'s :data:`MARKER` (empty when absent or unreadable)."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


# --- reading JSONL input files: streamed, bounded, with file:line in every error ----------------------------

#: the largest line of an input JSONL file (one prompt or pair; a million characters is far beyond any context)
MAX_LINE_BYTES = 1_000_000
#: how deeply JSON values may nest in an input line (circuitry's files nest 3 deep)
MAX_DEPTH = 32


def _depth(raw: bytes) -> int:
    """The deepest bracket nesting of a JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    in_str = esc = False
    for ch in raw.decode("latin-1"):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def iter_jsonl(path: str | os.PathLike, *, what: str, max_records: int, fix: str):
    """Yield ``(where, record)`` for every non-blank line of a JSONL file, ``where`` being ``"path:line"``,
    reading one line at a time (a file of any size costs one line of memory).

    Raises :class:`~circuitry.errors.InputError` naming ``path:line`` for a line that is not UTF-8, longer than
    :data:`MAX_LINE_BYTES`, nested deeper than :data:`MAX_DEPTH`, or not JSON, and
    :class:`~circuitry.errors.LimitError` at record ``max_records + 1`` (``what`` names the records, ``fix``
    says how to repair the file)."""
    from circuitry.errors import InputError, LimitError

    path = Path(path)
    n_records = 0
    with open(path, "rb") as fh:
        n = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            n += 1
            where = f"{path}:{n}"
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise InputError(f"{where}: the line is longer than {MAX_LINE_BYTES} bytes; one {what} per line. Fix: "
                                 f"{fix}")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{where}: the file is not UTF-8 text ({exc.reason} at byte {exc.start} of the line)."
                                 " Fix: save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
            if not line.strip():
                continue
            if _depth(raw) > MAX_DEPTH:
                raise InputError(f"{where}: JSON nested more than {MAX_DEPTH} levels deep; a {what} is a flat object "
                                 f"of lists. Fix: {fix}")
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise InputError(f"{where}: not valid JSON ({str(exc)[:120]}). Fix: {fix}") from None
            bad = _surrogate(rec)
            if bad is not None:
                raise InputError(f"{where}: the text {bad!r} holds a lone surrogate escape (\\ud800-\\udfff), "
                                 "which is not a character and cannot be tokenized or written out. Fix: write the "
                                 "character itself, or a valid surrogate pair")
            n_records += 1
            if n_records > max_records:
                raise LimitError(f"{where}: {str(path)!r} holds more than {max_records} {what}s, beyond the limit "
                                 f"{max_records} (memory and time: every {what} is held in memory and run through "
                                 f"the model). Fix: split the file, or keep its first {max_records} {what}s")
            yield where, rec


def _surrogate(value):
    """The first string inside a parsed JSON value that is not valid Unicode text (``None`` if all are)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return v[:40]
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return None
