"""Session-wide fixtures. Zoo fixtures load the shipped checkpoints once per test session."""

import pytest


@pytest.fixture(scope="session")
def zoo_2l():
    """The shipped ``attn-only-2l`` zoo model (a ``ZooTransformer`` in eval mode, sha256-verified)."""
    from circuitry.zoo import load_zoo

    model, _ = load_zoo("attn-only-2l")
    return model
