"""nnsight's remote path without a server: ``remote="local"`` serializes every trace exactly as a request to
NDIF would be, deserializes it with circuitry's own modules hidden (as on a server) and runs it. A sweep run
that way must give the local numbers."""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.interventions import activation_patch, path_patch
from circuitry.models import load_model
from circuitry.prompts import induction_pairs


@pytest.fixture(scope="module")
def data():
    return induction_pairs(6, block_len=6, vocab_size=50, bos=0, seed=2)


def test_remote_local_patching_sweep_equals_local(data):
    local = activation_patch(load_model("zoo:attn-only-2l"), data, site="z", direction="noising", progress=False)
    remote = load_model("zoo:attn-only-2l", remote="local")
    assert type(remote._nn).__name__ == "Remotable"  # the trace really goes through the remote backend
    shipped = activation_patch(remote, data, site="z", direction="noising", progress=False)
    np.testing.assert_allclose(shipped.per_prompt.numpy(), local.per_prompt.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(shipped.clean, local.clean, atol=1e-5, rtol=0)
    assert np.ptp(local.metric_mean.numpy()) > 0.5  # the heads differ: the comparison is not vacuous


def test_remote_local_path_patching_equals_local(data):
    kw = dict(senders=["embed", "L0H1"], receivers=[("L1H6", "k"), ("L1H6", "q")], progress=False)
    local = path_patch(load_model("zoo:attn-only-2l"), data, **kw)
    shipped = path_patch(load_model("zoo:attn-only-2l", remote="local"), data, **kw)
    np.testing.assert_allclose(shipped.per_prompt.numpy(), local.per_prompt.numpy(), atol=1e-5, rtol=0)


def test_remote_local_serializes_the_trace(data, capsys):
    """The round trip happens: nnsight's local backend reports the serialized payload of each trace."""
    import torch

    m = load_model("zoo:attn-only-2l", remote="local")
    with m._nn.trace(data.clean_ids(), remote="local", verbose=True):
        m._nn.unembed.output.save()
    assert "[local] payload:" in capsys.readouterr().out
    with pytest.raises(Exception):
        load_model("zoo:attn-only-2l", remote="ndif")
    assert torch.is_tensor(m.run(data.clean_ids()).logits)
