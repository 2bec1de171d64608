"""Listing, loading and sha256 verification of the shipped zoo checkpoints."""

import shutil

import pytest
import torch

from circuitry.errors import ChecksumError, InputError, ModelLoadError
from circuitry.zoo import CHECKPOINT_DIR, list_zoo, load_zoo, zoo_manifest
from circuitry.zoo.train import sha256_bytes, weights_bytes

SHIPPED = ["attn-only-1l", "attn-only-2l", "llama-2l-gqa"]


def test_list_zoo_has_the_shipped_models():
    assert set(SHIPPED) <= set(list_zoo())


@pytest.mark.parametrize("name", SHIPPED)
def test_manifest_hashes_match_the_shipped_files(name):
    m = zoo_manifest(name)
    assert sha256_bytes((CHECKPOINT_DIR / m.weights_file).read_bytes()) == m.weights_sha256
    assert m.checkpoints, "intermediate checkpoints are shipped for the phase-change analysis"
    for c in m.checkpoints:
        assert sha256_bytes((CHECKPOINT_DIR / c.file).read_bytes()) == c.sha256
    assert m.threads == 1 and m.train_seconds > 0 and m.curve[-1].step == m.steps


def test_unknown_name_lists_available_models():
    with pytest.raises(ModelLoadError, match="attn-only-2l"):
        load_zoo("attn-only-9l")


def test_tampered_checkpoint_is_refused(tmp_path):
    m = zoo_manifest("attn-only-1l")
    shutil.copy(CHECKPOINT_DIR / "attn-only-1l.json", tmp_path)
    data = bytearray((CHECKPOINT_DIR / m.weights_file).read_bytes())
    data[-5] ^= 0x01  # flip one bit in the last tensor's bytes: still a valid safetensors file
    (tmp_path / m.weights_file).write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="refused"):
        load_zoo("attn-only-1l", root=tmp_path)
    # The untouched copy loads from the same folder.
    shutil.copy(CHECKPOINT_DIR / m.weights_file, tmp_path)
    model, _ = load_zoo("attn-only-1l", root=tmp_path)
    assert not model.training


def test_round_trip_reproduces_the_file_bytes(zoo_2l):
    m = zoo_manifest("attn-only-2l")
    assert sha256_bytes(weights_bytes(zoo_2l)) == m.weights_sha256
    assert not zoo_2l.training


def test_intermediate_checkpoint_loads_and_differs():
    m = zoo_manifest("attn-only-2l")
    first = m.checkpoints[0]
    early, _ = load_zoo("attn-only-2l", step=first.step)
    assert sha256_bytes(weights_bytes(early)) == first.sha256 != m.weights_sha256
    with pytest.raises(InputError, match="step=7"):
        load_zoo("attn-only-2l", step=7)


def test_dtype_option():
    model, _ = load_zoo("attn-only-1l", dtype=torch.float64)
    assert next(model.parameters()).dtype == torch.float64


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipes_match_the_source_recipes(name):
    from circuitry.zoo.corpus import corpus_sha256
    from circuitry.zoo.registry import zoo_recipes

    m = zoo_manifest(name)
    assert m.recipe == zoo_recipes()[name]
    assert m.corpus_sha256 == corpus_sha256(m.recipe.corpus)
