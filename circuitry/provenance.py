"""Provenance and the base class of every result.

Every result circuitry writes records where it came from: the schema version, the model id and a
sha256 of its weights, a sha256 of the dataset, the seed, and the versions of circuitry and torch.
Results are frozen pydantic models that round-trip through JSON (``model_dump_json`` /
``model_validate_json``).
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from circuitry._version import __version__

SCHEMA_VERSION = 1


class Frozen(BaseModel):
    """Base for immutable, JSON round-trippable values."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False)


class Provenance(Frozen):
    """Where a result came from.

    ``threads`` is the number of torch intra-op threads: training and sums are bit-reproducible only
    on one thread (``torch.set_num_threads(1)``).
    """

    schema_version: int = SCHEMA_VERSION
    library_version: str = __version__
    torch_version: str = ""
    model_id: str = ""
    weights_sha256: str = ""
    dataset_sha256: str = ""
    seed: int | None = None
    device: str = "cpu"
    threads: int = 1
    python: str = Field(default_factory=platform.python_version)
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    extra: dict[str, Any] = Field(default_factory=dict)


def make_provenance(model: Any = None, *, dataset: Any = None, seed: int | None = None, **extra: Any) -> Provenance:
    """Build a :class:`Provenance` from a loaded model (anything with ``model_id``, ``weights_sha256``,
    ``device``), a dataset (anything with ``sha256()``, or a string hash) and a seed."""
    import torch

    ds = ""
    if dataset is not None:
        ds = dataset if isinstance(dataset, str) else dataset.sha256()
    return Provenance(
        torch_version=torch.__version__,
        model_id=getattr(model, "model_id", "") if model is not None else "",
        weights_sha256=getattr(model, "weights_sha256", "") if model is not None else "",
        dataset_sha256=ds,
        seed=seed,
        device=str(getattr(model, "device", "cpu")) if model is not None else "cpu",
        threads=torch.get_num_threads(),
        extra=extra,
    )


def sha256_json(obj: Any) -> str:
    """sha256 of the canonical JSON form of ``obj`` (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class NamedArray(Frozen):
    """A dense array with named axes, e.g. ``axes=("layer", "head")``, JSON-serializable.

    ``coords`` optionally labels the entries of an axis (e.g. ``{"head": ["L0H0", ...]}``).
    """

    axes: tuple[str, ...]
    shape: tuple[int, ...]
    values: list[Any]
    coords: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "NamedArray":
        if len(self.axes) != len(self.shape):
            raise ValueError(f"axes {self.axes} and shape {self.shape} differ in length")
        return self

    @classmethod
    def from_array(cls, array: Any, axes: Sequence[str], coords: dict[str, list[Any]] | None = None) -> "NamedArray":
        arr = np.asarray(array.detach().cpu() if hasattr(array, "detach") else array, dtype=float)
        if arr.ndim != len(axes):
            raise ValueError(f"array has {arr.ndim} dims but axes {tuple(axes)} name {len(axes)}")
        vals = [None if not np.isfinite(v) else float(v) for v in arr.reshape(-1)]
        return cls(axes=tuple(axes), shape=tuple(arr.shape), values=vals, coords=coords or {})

    def numpy(self) -> np.ndarray:
        """The values as a float array (missing values as NaN)."""
        return np.array([np.nan if v is None else v for v in self.values], dtype=float).reshape(self.shape)
