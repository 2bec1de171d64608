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


def check_device(device: str | torch.device, dtype: torch.dtype | None = None) -> torch.device:
    """The device, after checking that this torch build has it (and that ``dtype`` computes there).

    Raises :class:`InputError` before any weights load: CUDA asked of a CPU-only build, an unknown device
    name, or float16 on a CPU (half-precision matmuls there are slow or unsupported and lose the precision
    patching needs; use float32 or bfloat16)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device={device!r} is not a torch device ({exc}). Fix: use 'cpu' or 'cuda:0'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise InputError(f"device={device!r} is unavailable: {why} (torch {torch.__version__}). Fix: --device cpu, or "
                         "install a CUDA build of torch on a machine with a GPU")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s). Fix: --device cuda:0")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"device={device!r} is unavailable on this machine. Fix: --device cpu")
    if dev.type == "cpu" and dtype == torch.float16:
        raise InputError("dtype='float16' on a CPU: half-precision matmuls are slow or unsupported there and lose "
                         "the precision patching needs. Fix: --dtype float32 (or bfloat16)")
    return dev


def check_finite(module: torch.nn.Module, model_id: str) -> None:
    """Refuse weights holding NaN or inf: every effect would be NaN and a run would 'succeed' on nothing."""
    for pname, p in module.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p).all()):
            raise ModelLoadError(f"model={model_id!r}: parameter {pname!r} holds NaN or inf values, so every "
                                 "measurement would be NaN. Fix: check the checkpoint (a diverged run, a bad "
                                 "conversion); circuitry needs finite weights")


def _bos(bos: int | str | None, info, model_id: str) -> int | None:
    """Resolve ``bos`` (``"model"``, ``"none"``/``None`` or an id) against the model's vocabulary."""
    if bos in (None, "none"):
        return None
    if bos == "model":
        b = info.bos_token_id
        if b is not None and not 0 <= b < info.d_vocab:
            raise InputError(f"{model_id}: its config's bos_token_id={b} lies outside its vocabulary of {info.d_vocab} "
                             "tokens (common for models built from a default config). Fix: --bos none (no BOS token) "
                             f"or --bos ID with 0 <= ID < {info.d_vocab}")
        return b
    if isinstance(bos, str) and bos.isdigit():
        bos = int(bos)
    if isinstance(bos, bool) or not isinstance(bos, int) or not 0 <= bos < info.d_vocab:
        raise InputError(f"bos={bos!r} is invalid: expected 'model', 'none' or a token id in [0, {info.d_vocab}). "
                         "Fix: --bos model")
    return bos


def load_model(name: str | torch.nn.Module, *, device: str | torch.device = "cpu",
               dtype: str | torch.dtype | None = None, remote: bool = False,
               device_map: str | dict[str, Any] | None = None, bos: int | str | None = "model",
               download: bool = False, tensor_parallel: int | None = None) -> ModelAdapter:
    """Load a model and wrap it in the adapter (see :func:`_load` for the parameters); ``bos`` sets the token
    prepended to generated and text prompts: ``"model"`` (the config's ``bos_token_id``), ``"none"`` or an id.
    ``download`` lets a hub id that is not cached be fetched (default: fail at once, offline)."""
    adapter = _load(name, device=device, dtype=dtype, remote=remote, device_map=device_map, download=download,
                    tensor_parallel=tensor_parallel)
    b = _bos(bos, adapter.info, adapter.model_id)
    adapter.info = adapter.info.model_copy(update={"bos_token_id": b})
    return adapter


def _load(name: str | torch.nn.Module, *, device: str | torch.device = "cpu",
          dtype: str | torch.dtype | None = None, remote: bool | str = False,
          device_map: str | dict[str, Any] | None = None, download: bool = False,
          tensor_parallel: int | None = None) -> ModelAdapter:
    """Load a model and wrap it in the adapter.

    Parameters
    ----------
    name
        ``"zoo:attn-only-2l"``, a local Hugging Face directory, a cached hub id, or an already-built
        ``torch.nn.Module`` (a zoo model or a Hugging Face causal LM).
    device, dtype
        Where and in what precision to hold the weights (``dtype`` as a string like ``"float32"``).
    remote
        ``"local"``: every trace goes through nnsight's in-process serialize/execute round trip (a dry run
        of NDIF execution). ``True`` (NDIF itself) is refused for now (``docs/scale.md`` says why).
    device_map
        Passed to Hugging Face ``from_pretrained`` for models larger than one device.
    tensor_parallel
        Shard a Hugging Face model's weights over this many processes (nnsight 0.8 / transformers tensor
        parallelism); launch the script with ``torchrun --nproc-per-node N`` (``docs/scale.md``).

    Raises
    ------
    ModelLoadError
        Unknown zoo name, missing directory, or a hub id that is not cached.
    """
    torch_dtype = _dtype(dtype)
    from circuitry.models.distributed import check_tensor_parallel

    tensor_parallel = check_tensor_parallel(tensor_parallel)
    if tensor_parallel and (isinstance(name, torch.nn.Module) or str(name).startswith("zoo:") or device_map):
        raise InputError(f"tensor_parallel={tensor_parallel} with model={name!r}{' and device_map' if device_map else ''}: "
                         "tensor parallelism shards a Hugging Face model while it loads. Fix: give a Hugging Face "
                         "directory or hub id (model.save_pretrained(DIR) first), without device_map")
    from circuitry.models.distributed import check_remote

    check_remote(remote)  # before any weights load
    if device_map is None:
        check_device(device, torch_dtype)
    if isinstance(name, torch.nn.Module):
        module = name.to(device=device, dtype=torch_dtype) if torch_dtype else name.to(device)
        return ModelAdapter(module, model_id=type(name).__name__, remote=remote)
    if not isinstance(name, str) or not name:
        raise InputError(f"model={name!r} is invalid: expected 'zoo:NAME', a directory or a hub id")
    if name.startswith("zoo:"):
        from circuitry.zoo.registry import load_zoo
        from circuitry.zoo.text_corpus import zoo_tokenizer

        zname, _, step = name[4:].partition("@")
        if step and not step.isdigit():
            raise InputError(f"model={name!r}: the step after '@' must be a whole number, e.g. 'zoo:{zname}@550'")
        module, manifest = load_zoo(zname, step=int(step) if step else None, device=device, dtype=torch_dtype)
        sha = manifest.weights_sha256
        if step and int(step) != manifest.steps:
            sha = next(c.sha256 for c in manifest.checkpoints if c.step == int(step))
        return ModelAdapter(module, model_id=name, remote=remote, manifest=manifest,
                            weights_sha256=None if torch_dtype else sha, tokenizer=zoo_tokenizer(manifest))
    from circuitry.zoo import list_zoo

    if name in list_zoo() and not os.path.isdir(name):
        raise ModelLoadError(f"model={name!r} is the name of a zoo model; name it 'zoo:{name}' "
                             f"(zoo models: {', '.join('zoo:' + z for z in list_zoo())})")
    return _load_hf(name, device=device, dtype=torch_dtype, remote=remote, device_map=device_map, download=download,
                    tensor_parallel=tensor_parallel)


def _check_architecture(name: str, *, download: bool) -> None:
    """Fail before any weights load: a directory (or cached hub id) whose ``model_type`` has no adapter row,
    or a hub id that is not in the local cache (unless ``download``)."""
    import json

    from circuitry.models.families import HF_MODEL_TYPES

    if os.path.isdir(name):
        cfg_path = os.path.join(name, "config.json")
        if not os.path.isfile(cfg_path):
            raise ModelLoadError(f"model={name!r}: the directory has no config.json, so it is not a Hugging Face "
                                 "model directory. Fix: save the model with save_pretrained(DIR)")
    else:
        from huggingface_hub import try_to_load_from_cache

        cfg_path = try_to_load_from_cache(name, "config.json")
        if not isinstance(cfg_path, str):
            if download:
                return
            raise ModelLoadError(f"model={name!r} is not a local directory and not in the Hugging Face cache, and "
                                 "circuitry does not download by default. Fix: pass --download (Python: "
                                 "download=True) on a machine with hub access, give a local directory, or use "
                                 "'zoo:NAME' (offline, `circuitry zoo list`)")
    try:
        with open(cfg_path, encoding="utf-8") as fh:
            model_type = json.load(fh).get("model_type")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model={name!r}: config.json cannot be read ({exc})") from None
    if model_type not in HF_MODEL_TYPES:
        raise ModelLoadError(f"model={name!r} has model_type={model_type!r}, which circuitry's adapter does not "
                             f"support; supported: {sorted(HF_MODEL_TYPES)}. Fix: add a FamilySpec row for it "
                             "(docs/adapter.md, 'Adding an architecture')")


def _load_hf(name: str, *, device, dtype, remote: bool | str, device_map, download: bool = False,
             tensor_parallel: int | None = None) -> ModelAdapter:
    from transformers import AutoModelForCausalLM

    # safetensors only: never unpickle a file a user may have downloaded (a .bin-only directory is refused)
    kw: dict[str, Any] = {"attn_implementation": "eager", "use_safetensors": True}
    if dtype is not None:
        kw["dtype"] = dtype
    if device_map is not None:
        kw["device_map"] = device_map
    if tensor_parallel:
        from transformers.distributed import DistributedConfig

        kw["distributed_config"] = DistributedConfig(tp_size=tensor_parallel)
    is_dir = os.path.isdir(name)
    if not is_dir and (name.startswith((".", "/")) or os.sep in name and os.path.exists(os.path.dirname(name))):
        raise ModelLoadError(f"model={name!r}: no such directory. Fix: give a directory with config.json, "
                             "a cached hub id, or 'zoo:NAME' (see `circuitry zoo list`)")
    _check_architecture(name, download=download)
    if not is_dir and not download:
        kw["local_files_only"] = True
    from safetensors import SafetensorError

    try:
        module = AutoModelForCausalLM.from_pretrained(name, **kw)
    except SafetensorError as exc:
        raise ModelLoadError(f"model={name!r}: its safetensors weights are corrupt or truncated ({exc}). Fix: "
                             "re-download or re-save the model (save_pretrained) and check the file's size") from None
    except (OSError, ValueError) as exc:
        if is_dir and not any(f.endswith(".safetensors") for f in os.listdir(name)):
            raise ModelLoadError(
                f"model={name!r} holds no .safetensors weights (only pickle files such as pytorch_model.bin?), and "
                "circuitry never unpickles weights. Fix: convert once in a trusted environment: "
                "AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)") from None
        raise ModelLoadError(
            f"model={name!r} could not be loaded ({exc.__class__.__name__}: {str(exc).splitlines()[0]}). "
            "Fix: use 'zoo:NAME' (offline, `circuitry zoo list`), a local directory, or a hub id that is "
            "already in your Hugging Face cache"
        ) from exc
    if device_map is None and not tensor_parallel:
        module = module.to(device)
    check_finite(module, name)
    return ModelAdapter(module, model_id=name, remote=remote, tokenizer=_tokenizer(name, download=download),
                        tensor_parallel=bool(tensor_parallel))


def _tokenizer(name: str, *, download: bool):
    """The model's tokenizer, or ``None`` when it has none. transformers 5 builds an *empty* tokenizer for a
    directory without tokenizer files (every text tokenizes to no tokens) instead of raising; that is no
    tokenizer, so a text task then fails with "this model has no tokenizer" (give token ids or add the
    tokenizer files) before any work, not with a message about empty prompts."""
    from transformers import AutoTokenizer

    if os.path.isdir(name) and not any(os.path.isfile(os.path.join(name, f)) for f in _TOKENIZER_FILES):
        return None
    try:
        tok = AutoTokenizer.from_pretrained(name, local_files_only=not download)
    except (OSError, ValueError, TypeError):
        return None
    try:  # a tokenizer that knows only its special tokens, or turns text into nothing, is none
        empty = len(tok) <= len(set(tok.all_special_ids)) or not tok("a b c", add_special_tokens=False)["input_ids"]
    except Exception:  # noqa: BLE001 - a tokenizer that cannot tokenize is no tokenizer
        empty = True
    return None if empty else tok


#: files any Hugging Face tokenizer is saved as (``save_pretrained`` writes at least one of them)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt",
                    "merges.txt", "spiece.model", "sentencepiece.bpe.model", "special_tokens_map.json")
