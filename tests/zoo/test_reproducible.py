"""Training is bit-reproducible on one thread: re-training the recipe's prefix gives the shipped bytes."""

import pytest
import torch

from circuitry.zoo import zoo_manifest
from circuitry.zoo.train import train


@pytest.mark.slow
def test_first_intermediate_checkpoint_is_bit_reproducible(tmp_path):
    m = zoo_manifest("attn-only-2l")
    if torch.__version__ != m.torch_version:
        pytest.skip(f"shipped with torch {m.torch_version}, running {torch.__version__}: bytes may differ")
    first = m.checkpoints[0]
    new = train(m.recipe, tmp_path, stop_step=first.step, progress=False)
    assert new.steps == first.step
    assert new.weights_sha256 == first.sha256
    # The probes at that step match the shipped curve exactly, too.
    shipped = next(c.probes for c in m.curve if c.step == first.step)
    assert new.final_probes == shipped
