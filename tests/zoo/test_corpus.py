"""The zoo corpus is deterministic, well-formed, and has the structure the docs promise."""

import numpy as np
import pytest

from circuitry.zoo.corpus import (
    BOS_TOKEN_ID, CorpusSpec, corpus_sha256, iter_batches, make_batch, repeated_random_tokens,
    skip_trigram_rules,
)


def test_batches_are_deterministic_and_resumable():
    spec = CorpusSpec()
    a = make_batch(spec, seed=3, step=17, batch_size=32)
    b = make_batch(spec, seed=3, step=17, batch_size=32)
    it = iter_batches(spec, seed=3, batch_size=32, start=17)
    assert np.array_equal(a, b)
    assert np.array_equal(a, next(it))
    assert not np.array_equal(a, make_batch(spec, seed=3, step=18, batch_size=32))
    assert not np.array_equal(a, make_batch(spec, seed=4, step=17, batch_size=32))


def test_batch_shape_and_vocabulary():
    spec = CorpusSpec()
    batch = make_batch(spec, seed=0, step=0, batch_size=64)
    assert batch.shape == (64, spec.seq_len) and batch.dtype == np.int64
    assert (batch[:, 0] == BOS_TOKEN_ID).all()
    assert batch[:, 1:].min() >= 1 and batch[:, 1:].max() <= spec.n_symbols


def test_mixture_of_repeats_and_text():
    spec = CorpusSpec()
    batch = make_batch(spec, seed=0, step=5, batch_size=256)
    # A repeat row is periodic from position 1 with some period 8..24.
    periodic = [any(np.array_equal(r[1 + p:], r[1:-p]) for p in range(spec.block_min, spec.block_max + 1))
                for r in batch]
    share = float(np.mean(periodic))
    assert abs(share - spec.p_repeat) < 0.1, share


def test_skip_trigram_rules_fire_in_text():
    spec = CorpusSpec(p_repeat=0.0, p_span=0.0)
    rules = skip_trigram_rules(spec)
    assert len(set(rules[:, 1])) == spec.n_rules and (rules[:, 0] != rules[:, 1]).all()
    batch = make_batch(spec, seed=1, step=0, batch_size=256)[:, 1:] - 1
    hits = total = 0
    for a, b, c in rules:
        for row in batch:
            first_a = np.flatnonzero(row == a)
            if not len(first_a):
                continue
            pos = np.flatnonzero(row[:-1] == b)
            pos = pos[pos > first_a[0]]
            total += len(pos)
            hits += int((row[pos + 1] == c).sum())
    assert total > 100 and hits / total > 0.8 * spec.p_rule


def test_corpus_hash_tracks_the_recipe():
    assert corpus_sha256(CorpusSpec()) == corpus_sha256(CorpusSpec())
    assert corpus_sha256(CorpusSpec()) != corpus_sha256(CorpusSpec(p_repeat=0.4))


def test_held_out_probe_tokens_repeat_exactly():
    toks = repeated_random_tokens(n_symbols=64, block_len=20, n_repeats=3, n_samples=4, seed=5)
    assert toks.shape == (4, 61) and (toks[:, 0] == BOS_TOKEN_ID).all()
    assert np.array_equal(toks[:, 1:21], toks[:, 21:41]) and np.array_equal(toks[:, 1:21], toks[:, 41:61])


def test_bad_spec_is_rejected():
    with pytest.raises(ValueError, match="block_min"):
        CorpusSpec(block_min=30, block_max=10)
