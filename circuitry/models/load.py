"""Load a model by name into a :class:`~circuitry.models.adapter.ModelAdapter`.

Names:

* ``zoo:NAME`` (optionally ``zoo:NAME@STEP`` for an intermediate checkpoint): a model circuitry trained
  and ships (``circuitry zoo list``); always offline.
* a local directory holding a Hugging Face causal LM (``config.json`` + weights).
* a hub id (``EleutherAI/pythia-70m``): works when the Hugging Face cache already has it (this
  machine has no hub access; set ``HF_HUB_OFFLINE=1`` to fail fast).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from circuitry.errors import InputError, ModelLoadError
from circuitry.models.adapter import ModelAdapter

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise InputError(f"dtype={dtype!r} is not supported; expected one of {sorted(_DTYPES)}")
    return _DTYPES[dtype]


def load_model(name: str | torch.nn.Module, *, device: str | torch.device = "cpu",
               dtype: str | torch.dtype | None = None, remote: bool = False,
               device_map: str | dict[str, Any] | None = None) -> ModelAdapter:
    """Load a model and wrap it in the adapter.

    Parameters
    ----------
    name
        ``"zoo:attn-only-2l"``, a local Hugging Face directory, a cached hub id, or an already-built
        ``torch.nn.Module`` (a zoo model or a Hugging Face causal LM).
    device, dtype
        Where and in what precision to hold the weights (``dtype`` as a string like ``"float32"``).
    remote
        Run traces on NDIF through nnsight (``trace(remote=True)``); needs an nnsight API key.
    device_map
        Passed to Hugging Face ``from_pretrained`` for models larger than one device.

    Raises
    ------
    ModelLoadError
        Unknown zoo name, missing directory, or a hub id that is not cached.
    """
    torch_dtype = _dtype(dtype)
    if isinstance(name, torch.nn.Module):
        module = name.to(device=device, dtype=torch_dtype) if torch_dtype else name.to(device)
        return ModelAdapter(module, model_id=type(name).__name__, remote=remote)
    if not isinstance(name, str) or not name:
        raise InputError(f"model={name!r} is invalid: expected 'zoo:NAME', a directory or a hub id")
    if name.startswith("zoo:"):
        from circuitry.zoo.registry import load_zoo

        zname, _, step = name[4:].partition("@")
        if step and not step.isdigit():
            raise InputError(f"model={name!r}: the step after '@' must be a whole number, e.g. 'zoo:{zname}@550'")
        module, manifest = load_zoo(zname, step=int(step) if step else None, device=device, dtype=torch_dtype)
        sha = manifest.weights_sha256
        if step and int(step) != manifest.steps:
            sha = next(c.sha256 for c in manifest.checkpoints if c.step == int(step))
        return ModelAdapter(module, model_id=name, remote=remote, manifest=manifest,
                            weights_sha256=None if torch_dtype else sha)
    from circuitry.zoo import list_zoo

    if name in list_zoo() and not os.path.isdir(name):
        raise ModelLoadError(f"model={name!r} is the name of a zoo model; name it 'zoo:{name}' "
                             f"(zoo models: {', '.join('zoo:' + z for z in list_zoo())})")
    return _load_hf(name, device=device, dtype=torch_dtype, remote=remote, device_map=device_map)


def _load_hf(name: str, *, device, dtype, remote: bool, device_map) -> ModelAdapter:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw: dict[str, Any] = {"attn_implementation": "eager"}
    if dtype is not None:
        kw["dtype"] = dtype
    if device_map is not None:
        kw["device_map"] = device_map
    is_dir = os.path.isdir(name)
    if not is_dir and (name.startswith((".", "/")) or os.sep in name and os.path.exists(os.path.dirname(name))):
        raise ModelLoadError(f"model={name!r}: no such directory. Fix: give a directory with config.json, "
                             "a cached hub id, or 'zoo:NAME' (see `circuitry zoo list`)")
    try:
        module = AutoModelForCausalLM.from_pretrained(name, **kw)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"model={name!r} could not be loaded ({exc.__class__.__name__}: {str(exc).splitlines()[0]}). "
            "Fix: use 'zoo:NAME' (offline, `circuitry zoo list`), a local directory, or a hub id that is "
            "already in your Hugging Face cache"
        ) from exc
    if device_map is None:
        module = module.to(device)
    try:
        tok = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError):
        tok = None
    return ModelAdapter(module, model_id=name, remote=remote, tokenizer=tok)
