"""The exception hierarchy of circuitry.

Every error circuitry raises on purpose derives from :class:`CircuitryError`, so a script can catch
them all at once. Messages name the parameter, the value that was given, what was expected and how to
fix it. Input is validated at the boundary, before any work starts.
"""

from __future__ import annotations


class CircuitryError(Exception):
    """Root of all errors raised by circuitry."""


class InputError(CircuitryError, ValueError):
    """A parameter or input file has a bad value (wrong shape, unknown name, out of range)."""


class ModelLoadError(CircuitryError):
    """A model could not be found or loaded (unknown zoo name, missing local directory, no cache)."""


class ChecksumError(CircuitryError):
    """A checkpoint's weights do not match the sha256 recorded in its manifest."""


class UnsupportedError(CircuitryError):
    """The requested operation is not available for this model family (e.g. writing a HF attention pattern)."""


def bad_value(param: str, value: object, expected: str, fix: str | None = None) -> InputError:
    """Build an :class:`InputError` with the house message format.

    >>> str(bad_value("n_prompts", -1, "a positive integer", "pass --n-prompts 32"))
    'n_prompts=-1 is invalid: expected a positive integer. Fix: pass --n-prompts 32'
    """
    msg = f"{param}={value!r} is invalid: expected {expected}."
    if fix:
        msg += f" Fix: {fix}"
    return InputError(msg)


def missing_task_file(path: object) -> InputError:
    """The error for a ``--task`` file that does not exist (raised by the early CLI check and by the reader)."""
    return InputError(f"task file {str(path)!r} does not exist. Fix: check the path, or use a built-in task "
                      "(circuitry analyze --help lists them)")


class LimitError(InputError):
    """A count, size or file is beyond what this machine can hold in memory or finish in reasonable time; the
    message names the limit, what it is derived from, and the largest accepted value."""


class BusyError(InputError):
    """Another run is writing the same output folder; the message names it (pid, command, start time)."""


class OutputError(CircuitryError):
    """An output could not be written (a full disk, a read-only or vanished folder). The previous result in
    the output folder is left as it was; the command line exits with code 1."""


def too_large(param: str, value: object, limit: object, why: str, fix: str | None = None) -> LimitError:
    """Build a :class:`LimitError` in the house format.

    >>> str(too_large("--steps", 10**6, 1000, "time: one forward and backward pass per step"))
    '--steps=1000000 is beyond the limit 1000 (time: one forward and backward pass per step).'
    """
    msg = f"{param}={value!r} is beyond the limit {limit} ({why})."
    if fix:
        msg += f" Fix: {fix}"
    return LimitError(msg)


def field_error(where: str, exc: Exception, fix: str) -> InputError:
    """A pydantic ``ValidationError`` met reading a file, as an :class:`InputError` naming ``where``
    (``file:line``), the field, what it expected, the value it got and ``fix``."""
    errs = exc.errors() if hasattr(exc, "errors") else []
    if not errs:
        return InputError(f"{where}: {exc}. Fix: {fix}")
    err = errs[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    got = err.get("input")
    got = repr(got) if len(repr(got)) <= 60 else repr(got)[:57] + "..."
    more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
    return InputError(f"{where}: field '{loc}': {msg}, got {got}{more}. Fix: {fix}")
