"""Loading a model fails fast, before any weights load, with the fix in the message."""

from __future__ import annotations

import json
import time

import pytest
import torch

from circuitry.cli import main
from circuitry.errors import InputError, ModelLoadError
from circuitry.models import load_model


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_on_a_cpu_build_is_a_clear_error(capsys):
    with pytest.raises(InputError, match=r"device='cuda' is unavailable.*Fix: --device cpu"):
        load_model("zoo:attn-only-2l", device="cuda")
    assert main(["patch", "--device", "cuda", "--out", "/nonexistent/x"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_float16_on_cpu_and_unknown_devices_are_refused():
    with pytest.raises(InputError, match=r"float16.*Fix: --dtype float32"):
        load_model("zoo:attn-only-2l", dtype="float16")
    with pytest.raises(InputError, match="device='gpu' is not a torch device"):
        load_model("zoo:attn-only-2l", device="gpu")


def test_uncached_hub_id_fails_at_once_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache
    t = time.time()
    with pytest.raises(ModelLoadError, match=r"not in the Hugging Face cache.*--download"):
        load_model("someone/some-model")
    assert time.time() - t < 5  # no network retries


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelLoadError, match=r"model_type='bert'.*supported: \[.*'gpt2'.*docs/adapter.md"):
        load_model(str(tmp_path))


def test_directory_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_model(str(tmp_path))


def test_default_config_bos_outside_vocabulary_gets_the_bos_option(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16)).save_pretrained(tmp_path)
    with pytest.raises(InputError, match=r"bos_token_id=50256 lies outside its vocabulary.*--bos none"):
        load_model(str(tmp_path))
    assert load_model(str(tmp_path), bos="none").info.bos_token_id is None
    assert load_model(str(tmp_path), bos=7).info.bos_token_id == 7
