"""nnsight's remote path without a server: ``remote="local"`` serializes every trace exactly as a request to
NDIF would be, deserializes it with the user's modules hidden (as on a server) and runs it. A sweep run that
way must give the local numbers. (Run in a subprocess: see ``remote_local_worker.py``.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from circuitry.errors import InputError, UnsupportedError
from circuitry.models import load_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    p = subprocess.run([sys.executable, str(Path(__file__).with_name("remote_local_worker.py"))], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_remote_local_patching_sweep_equals_local(runs):
    local, shipped = runs["local"], runs["remote_local"]
    assert local["envoy"] == "NNsight" and shipped["envoy"] == "Remotable"  # it really took the remote backend
    np.testing.assert_allclose(shipped["patch"], local["patch"], atol=1e-5, rtol=0)
    assert np.ptp(np.mean(local["patch"], -1)) > 0.5  # the heads differ: the comparison is not vacuous


def test_remote_local_path_patching_equals_local(runs):
    np.testing.assert_allclose(runs["remote_local"]["paths"], runs["local"]["paths"], atol=1e-5, rtol=0)


def test_remote_local_serializes_the_trace(runs):
    """The round trip happens: nnsight's local backend reports the serialized payload and the hidden modules."""
    assert "[local] payload:" in runs["verbose"] and "[local] hid" in runs["verbose"]


def test_remote_values_checked_before_loading():
    with pytest.raises(InputError, match="remote='ndif'"):
        load_model("zoo:attn-only-2l", remote="ndif")
    with pytest.raises(UnsupportedError, match="NDIF"):  # refused up front, not at the first trace
        load_model("zoo:attn-only-2l", remote=True)
