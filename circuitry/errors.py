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
