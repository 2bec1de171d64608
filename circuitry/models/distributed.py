"""Beyond one process: tensor parallelism, and the nnsight envoy the adapter wraps a module in (plain, remote or
sharded); what circuitry needs beyond passing options on.

A model loaded with ``load_model(DIR, tensor_parallel=N)`` inside a ``torchrun --nproc-per-node N`` launch
has its linear layers sharded across the N ranks by transformers (``DistributedConfig(tp_size=N)``; the
``gloo`` backend on CPUs, ``nccl`` on GPUs); nnsight's tensor-parallel interleaver (``TPFragments``) hands
every read and edit of circuitry's adapter the whole activation and re-splits it afterwards, so every
analysis runs unchanged on every rank and gives the single-process numbers (``tests/scale``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from circuitry.errors import InputError, UnsupportedError

if TYPE_CHECKING:
    import torch


def transformers_compat() -> None:
    """Make nnsight 0.8.1's tensor-parallel code find transformers' plan matcher where it now lives.

    nnsight 0.8.1 (``nnsight/modeling/tp/fragments.py``, ``TPFragments._style_of``) does
    ``from transformers.distributed.tensor_parallel import _get_parameter_plan``; transformers 5.25 moved that
    function to ``transformers.distributed.parallel_utils``, so without this every tensor-parallel trace fails
    with ``ImportError: cannot import name '_get_parameter_plan'``. This re-exports the same function under
    the old name; it does nothing when the old name exists (older transformers, or a fixed nnsight). It is
    called only when a tensor-parallel model is wrapped, never at import."""
    import transformers.distributed.tensor_parallel as tp

    if hasattr(tp, "_get_parameter_plan"):
        return
    from transformers.distributed.parallel_utils import _get_parameter_plan

    tp._get_parameter_plan = _get_parameter_plan


def check_tensor_parallel(tensor_parallel: int | None) -> int | None:
    """Validate the degree against the launch: ``None`` or 1 means unsharded; N needs ``WORLD_SIZE == N``
    (set by ``torchrun --nproc-per-node N``)."""
    if tensor_parallel is None or tensor_parallel == 1:
        return None
    if isinstance(tensor_parallel, bool) or not isinstance(tensor_parallel, int) or tensor_parallel < 1:
        raise InputError(f"tensor_parallel={tensor_parallel!r} is invalid: expected a whole number of processes >= 1. "
                         "Fix: tensor_parallel=2 under `torchrun --nproc-per-node 2`")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != tensor_parallel:
        raise InputError(f"tensor_parallel={tensor_parallel} but this process was launched with WORLD_SIZE={world}. "
                         f"Fix: launch with `torchrun --nproc-per-node {tensor_parallel} SCRIPT` (every rank runs "
                         "the same script), or drop tensor_parallel")
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise InputError(f"tensor_parallel={tensor_parallel} needs the 'accelerate' package (transformers shards "
                         "weights through it), which is not installed. Fix: pip install 'circuitry-lab[scale]'")
    return tensor_parallel


def check_remote(remote) -> None:
    """Raise unless ``remote`` is ``False`` or ``"local"`` (``True``, NDIF, is refused for now: see below)."""
    if remote not in (False, True, "local"):
        raise InputError(f"remote={remote!r}; expected False or 'local' (nnsight's in-process round trip)")
    if remote is True:
        raise UnsupportedError(
            "remote=True (NDIF) does not work yet: NDIF names a model by its Hugging Face repo id, and the adapter "
            "wraps a loaded module in nnsight's generic Remotable envoy, which has no model key to send (nnsight's "
            "Remotable._remoteable_model_key is left for subclasses). Fix: remote='local' checks that circuitry's "
            "traces ship (docs/scale.md); for a large model use device_map='auto' or tensor_parallel=N")


def nnsight_envoy(module: "torch.nn.Module", *, remote: bool | str, tensor_parallel: bool):
    """The nnsight envoy over ``module``: plain ``NNsight``; a ``Remotable`` one when ``remote`` is set
    (only those accept ``trace(remote=...)``); with nnsight's tensor-parallel interleaver when sharded."""
    from nnsight import NNsight

    kwargs = {}
    if tensor_parallel:
        from nnsight.intervention.interleaver import Interleaver
        from nnsight.modeling.tp import TPFragments

        transformers_compat()
        kwargs["interleaver"] = Interleaver(fragments=TPFragments())
    check_remote(remote)
    if remote:
        from nnsight.modeling.mixins.remotable import Remotable

        return Remotable(module, **kwargs)
    return NNsight(module, **kwargs)
