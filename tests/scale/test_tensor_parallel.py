"""nnsight 0.8 tensor parallelism, tested for real: ``torchrun --nproc-per-node 2`` with the gloo backend on
the CPU shards a tiny Llama (built from a config) over two processes; its activation-patching sweep and its
path-patching run must equal the single-process numbers on both ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("tp_worker.py")


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with grouped-query attention (4 query heads, 2 key/value heads), weights ~ N(0, 0.5)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=64, max_position_embeddings=64, bos_token_id=0,
                      eos_token_id=0, pad_token_id=0)
    m = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)
    d = tmp_path_factory.mktemp("llama")
    m.save_pretrained(d)
    return d


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


@pytest.mark.slow
def test_two_process_tensor_parallel_equals_single_process(llama_dir, tmp_path):
    out = tmp_path / "out"
    single = subprocess.run([sys.executable, str(WORKER), str(llama_dir), str(out), "--single"], env=_env(),
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-3000:]
    tp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                         "29517", str(WORKER), str(llama_dir), str(out)], env=_env(), capture_output=True, text=True)
    assert tp.returncode == 0, tp.stderr[-3000:]
    ref = json.loads((out / "rank0-single.json").read_text())
    assert ref["world"] == 1 and ref["sharded_params"] == 0
    for rank in (0, 1):
        got = json.loads((out / f"rank{rank}.json").read_text())
        # the weights really were split: at least the 7 projections (q, k, v, o, gate, up, down) of both layers
        # are DTensor shards
        assert got["world"] == 2 and got["sharded_params"] >= 2 * 7
        assert got["weights_sha256"] == ref["weights_sha256"]  # the same whole weights, hashed from the shards
        assert got["paths"] == ref["paths"]
        np.testing.assert_allclose(got["patch"], ref["patch"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(got["path_values"], ref["path_values"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(got["patch_clean"], ref["patch_clean"], atol=1e-4, rtol=0)
    # not vacuous: patching and path patching move the metric far more than the tolerance
    assert np.ptp(ref["patch"]) > 0.5 and np.ptp(ref["path_values"]) > 0.5


def test_tensor_parallel_refuses_a_mismatched_launch():
    from circuitry.errors import InputError
    from circuitry.models import load_model

    with pytest.raises(InputError, match="WORLD_SIZE=1"):
        load_model("zoo:attn-only-2l", tensor_parallel=2)
    with pytest.raises(InputError, match="tensor_parallel=0"):
        load_model("zoo:attn-only-2l", tensor_parallel=0)
