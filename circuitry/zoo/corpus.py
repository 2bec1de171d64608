"""The zoo's deterministic token corpus.

The vocabulary is the BOS token (id ``0``) plus ``n_symbols`` symbols (ids ``1..n_symbols``). Every
training sequence starts with BOS and is ``seq_len`` tokens long. A sequence is one of two kinds:

* **repeat** (share ``p_repeat``): ``[BOS] + A + A + A ...`` truncated to ``seq_len``, where ``A`` is
  a block of ``block_min..block_max`` uniform random symbols. Only an induction mechanism predicts the
  second and later copies of ``A``; this is where induction heads form.
* **text** (the rest): structured next-token text over the same symbols. Each next symbol comes,
  with probability ``p_topic``, uniformly from a per-sequence *topic* of ``topic_size`` symbols (a
  head that looks back over the whole context can learn the topic) and otherwise from a fixed
  Zipfian *bigram* chain (each symbol's successors ranked by a random permutation, weight
  ``rank**-zipf_exponent``). With probability ``p_span`` a span of ``span_min..span_max`` earlier
  tokens is copied later into the text (repeated spans inside natural-looking text). Finally
  ``n_rules`` fixed *skip-trigram* rules ``(a, b) -> c`` (Elhage et al.'s skip-trigrams): if the
  current symbol is ``b`` and ``a`` occurred anywhere earlier in the sequence, the next symbol is
  ``c`` with probability ``p_rule``. A head that attends from ``b`` back to ``a`` learns them: a job
  for attention heads that is not induction. And with probability ``p_skip2`` a symbol is a fixed
  function (a random permutation) of the symbol *two* positions back: a job for a head that attends
  to position ``i - 1`` of the query's own position (a "previous-previous token" lookup).
``skip_distance`` sets how far back that symbol is (default 2), and ``skip_trigger_frac`` restricts
the lookup to positions whose previous symbol lies in a fixed *trigger* set of that share of the
symbols (default 1.0: every symbol triggers). A trigger set below 1 makes the heads that serve the
lookup attend to the previous token only after trigger symbols, so they do not duplicate the
unconditional previous-token head that induction builds on.

The bigram chain is fixed by ``language_seed``; the sequences of training step ``step`` are fixed by
``(seed, step)`` through numpy's ``SeedSequence``. The generator uses numpy only, so the corpus is the
same for every torch version. :func:`corpus_sha256` hashes the recipe and the generator's version:
two corpora with the same hash are the same token streams.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from pydantic import model_validator

from circuitry.provenance import Frozen, sha256_json

#: Bumped whenever the generator's algorithm changes (it enters :func:`corpus_sha256`).
GENERATOR_VERSION = "zoo-corpus-v1"
BOS_TOKEN_ID = 0

# SeedSequence stream keys: training batches and held-out evaluation never share random numbers.
_TRAIN_STREAM = 0
_EVAL_STREAM = 1


class CorpusSpec(Frozen):
    """Recipe of the zoo corpus (see the module docstring for what each knob does)."""

    n_symbols: int = 64
    seq_len: int = 64
    p_repeat: float = 0.5
    block_min: int = 8
    block_max: int = 24
    zipf_exponent: float = 1.2
    topic_size: int = 8
    p_topic: float = 0.3
    p_span: float = 0.5
    span_min: int = 6
    span_max: int = 16
    n_rules: int = 24
    p_rule: float = 0.9
    p_skip2: float = 0.0
    skip_distance: int = 2
    skip_trigger_frac: float = 1.0
    language_seed: int = 1234

    @model_validator(mode="after")
    def _check(self) -> "CorpusSpec":
        if self.n_symbols < 2 or self.seq_len < 4:
            raise ValueError(f"n_symbols={self.n_symbols} and seq_len={self.seq_len} must be >= 2 and >= 4")
        if not 1 <= self.block_min <= self.block_max:
            raise ValueError(f"need 1 <= block_min <= block_max, got {self.block_min}, {self.block_max}")
        if not 1 <= self.span_min <= self.span_max < self.seq_len // 2:
            raise ValueError(f"need 1 <= span_min <= span_max < seq_len/2, got {self.span_min}, {self.span_max}")
        if not 2 <= self.skip_distance < self.seq_len - 1:
            raise ValueError(f"skip_distance={self.skip_distance} must lie in 2..seq_len-2")
        if not 1 <= self.topic_size <= self.n_symbols:
            raise ValueError(f"topic_size={self.topic_size} must lie in 1..n_symbols={self.n_symbols}")
        if not 0 <= self.n_rules <= self.n_symbols:
            raise ValueError(f"n_rules={self.n_rules} must lie in 0..n_symbols={self.n_symbols}")
        for name in ("p_repeat", "p_topic", "p_span", "p_rule", "p_skip2", "skip_trigger_frac"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must lie in [0, 1]")
        return self

    @property
    def d_vocab(self) -> int:
        """Vocabulary size: BOS plus the symbols."""
        return self.n_symbols + 1


def corpus_sha256(spec: CorpusSpec) -> str:
    """sha256 of the corpus recipe and the generator version (a dataset hash for provenance)."""
    dump = spec.model_dump()
    for key, default in (("skip_distance", 2), ("skip_trigger_frac", 1.0)):
        if dump[key] == default:  # added later; defaults keep the hashes of earlier recipes
            del dump[key]
    return sha256_json({"generator": GENERATOR_VERSION, "spec": dump})


def bigram_cdf(spec: CorpusSpec) -> np.ndarray:
    """Cumulative successor distribution of the bigram chain, ``[n_symbols, n_symbols]`` (row = current).

    Row ``s`` ranks the successors of symbol ``s`` by a random permutation and weights rank ``r``
    (from 1) by ``r ** -zipf_exponent``. Indices are symbol offsets (token id minus 1).
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.language_seed, 7])))
    n = spec.n_symbols
    weights = np.arange(1, n + 1, dtype=np.float64) ** -spec.zipf_exponent
    probs = np.zeros((n, n))
    for s in range(n):
        probs[s, rng.permutation(n)] = weights
    probs /= probs.sum(axis=1, keepdims=True)
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    return cdf


def skip_trigram_rules(spec: CorpusSpec) -> np.ndarray:
    """The skip-trigram rules ``[n_rules, 3]`` of symbol offsets ``(a, b, c)``: distinct ``b``, ``a != b``."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.language_seed, 11])))
    b = rng.permutation(spec.n_symbols)[: spec.n_rules]
    a = (b + rng.integers(1, spec.n_symbols, size=spec.n_rules)) % spec.n_symbols
    c = rng.integers(0, spec.n_symbols, size=spec.n_rules)
    return np.stack([a, b, c], axis=1).astype(np.int64)


def _rng(seed: int, stream: int, step: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, step])))


def _repeat_rows(spec: CorpusSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty((n, spec.seq_len), dtype=np.int64)
    out[:, 0] = BOS_TOKEN_ID
    lengths = rng.integers(spec.block_min, spec.block_max + 1, size=n)
    blocks = rng.integers(1, spec.n_symbols + 1, size=(n, spec.block_max))
    body = spec.seq_len - 1
    for i in range(n):
        reps = -(-body // lengths[i])
        out[i, 1:] = np.tile(blocks[i, : lengths[i]], reps)[:body]
    return out


def _text_rows(spec: CorpusSpec, rng: np.random.Generator, n: int, cdf: np.ndarray) -> np.ndarray:
    body = spec.seq_len - 1
    sym = np.empty((n, body), dtype=np.int64)  # symbol offsets 0..n_symbols-1
    topics = np.argsort(rng.random((n, spec.n_symbols)), axis=1)[:, : spec.topic_size]
    use_topic = rng.random((n, body)) < spec.p_topic
    topic_pick = topics[np.arange(n)[:, None], rng.integers(0, spec.topic_size, size=(n, body))]
    u = rng.random((n, body))
    follow = rng.random((n, body)) < spec.p_rule
    use_skip2 = rng.random((n, body)) < spec.p_skip2
    skip2 = np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.language_seed, 13]))).permutation(
        spec.n_symbols)
    n_trig = int(round(spec.skip_trigger_frac * spec.n_symbols))
    trigger = np.zeros(spec.n_symbols, dtype=bool)
    trigger[np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.language_seed, 17]))).permutation(
        spec.n_symbols)[:n_trig]] = True
    rules = skip_trigram_rules(spec)
    rule_a = np.full(spec.n_symbols, -1)
    rule_c = np.zeros(spec.n_symbols, dtype=np.int64)
    rule_a[rules[:, 1]], rule_c[rules[:, 1]] = rules[:, 0], rules[:, 2]
    seen = np.zeros((n, spec.n_symbols), dtype=bool)
    rows = np.arange(n)
    sym[:, 0] = rng.integers(0, spec.n_symbols, size=n)
    for t in range(1, body):
        prev = sym[:, t - 1]
        seen[rows, prev] = True
        chain = (cdf[prev] < u[:, t : t + 1]).sum(axis=1)
        nxt = np.where(use_topic[:, t], topic_pick[:, t], np.minimum(chain, spec.n_symbols - 1))
        a = rule_a[prev]
        fires = (a >= 0) & seen[rows, np.maximum(a, 0)] & follow[:, t]
        nxt = np.where(fires, rule_c[prev], nxt)
        d = spec.skip_distance
        sym[:, t] = np.where(use_skip2[:, t] & trigger[prev] & (t >= d), skip2[sym[:, max(t - d, 0)]], nxt)
    # Embedded repeated spans: copy sym[src:src+L] to sym[dst:dst+L] with dst >= src + L.
    has_span = rng.random(n) < spec.p_span
    span_len = rng.integers(spec.span_min, spec.span_max + 1, size=n)
    r_src, r_dst = rng.random(n), rng.random(n)
    for i in np.flatnonzero(has_span):
        length = int(span_len[i])
        src = int(r_src[i] * (body - 2 * length + 1))
        dst = src + length + int(r_dst[i] * (body - src - 2 * length + 1))
        sym[i, dst : dst + length] = sym[i, src : src + length]
    out = np.empty((n, spec.seq_len), dtype=np.int64)
    out[:, 0] = BOS_TOKEN_ID
    out[:, 1:] = sym + 1
    return out


def _batch(spec: CorpusSpec, rng: np.random.Generator, batch_size: int, cdf: np.ndarray) -> np.ndarray:
    kinds = rng.random(batch_size) < spec.p_repeat
    n_rep = int(kinds.sum())
    out = np.empty((batch_size, spec.seq_len), dtype=np.int64)
    out[kinds] = _repeat_rows(spec, rng, n_rep)
    out[~kinds] = _text_rows(spec, rng, batch_size - n_rep, cdf)
    return out


def make_batch(spec: CorpusSpec, *, seed: int, step: int, batch_size: int) -> np.ndarray:
    """The training batch of ``step``: int64 token ids ``[batch_size, seq_len]``, BOS first.

    The same ``(spec, seed, step, batch_size)`` always gives the same array.
    """
    return _batch(spec, _rng(seed, _TRAIN_STREAM, step), batch_size, bigram_cdf(spec))


def iter_batches(spec: CorpusSpec, *, seed: int, batch_size: int, start: int = 0) -> Iterator[np.ndarray]:
    """Yield :func:`make_batch` for steps ``start, start + 1, ...`` (resumable at any step)."""
    cdf = bigram_cdf(spec)
    step = start
    while True:
        yield _batch(spec, _rng(seed, _TRAIN_STREAM, step), batch_size, cdf)
        step += 1


def repeated_random_tokens(
    *, n_symbols: int, block_len: int, n_repeats: int, n_samples: int, seed: int
) -> np.ndarray:
    """Held-out probe sequences ``[BOS] + B * n_repeats`` with ``B`` uniform random symbols.

    Drawn from a random stream that training never uses. Returns int64 ``[n_samples,
    1 + block_len * n_repeats]``.
    """
    rng = _rng(seed, _EVAL_STREAM, 0)
    blocks = rng.integers(1, n_symbols + 1, size=(n_samples, block_len))
    bos = np.full((n_samples, 1), BOS_TOKEN_ID, dtype=np.int64)
    return np.concatenate([bos, np.tile(blocks, (1, n_repeats))], axis=1).astype(np.int64)
