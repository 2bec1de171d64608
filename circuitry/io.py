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
