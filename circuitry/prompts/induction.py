"""The induction task: repeated blocks of random tokens.

Olsson et al. (2022) evaluate induction heads on blocks of random tokens repeated several times, with
BOS first; circuitry's generators take the recipe as parameters. The clean/corrupted pairs of the
induction task are ``[BOS] + A + A`` (clean) and, by default, ``[BOS] + B + C`` (corrupted) with ``A``,
``B``, ``C`` independent uniform random blocks: same length and same token statistics, but there is
no repeat, so nothing in the second half can be predicted by induction.

Which half is corrupted decides which paths patching can see (``corrupt=``):

* ``"both"`` (default): every input of the induction heads differs between the runs: their keys
  (the previous-token information at the first copy), their queries and their values. This is the
  corruption under which path patching recovers the whole reference circuit (previous-token head ->
  K, embeddings -> Q and V).
* ``"second"``: ``[BOS] + A + B``. The first half is identical in both runs, and by causality so is
  everything computed at its positions, where the induction heads' keys live: K-paths show no effect.
* ``"first"``: ``[BOS] + B + A``. The second half is identical: Q-paths from the current token show
  (almost) no effect, K- and V-paths do.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from circuitry.errors import bad_value
from circuitry.prompts.pairs import PairDataset, PromptPair


def _token_pool(vocab_size: int, exclude: Sequence[int]) -> torch.Tensor:
    pool = torch.ones(vocab_size, dtype=torch.bool)
    ex = [t for t in exclude if 0 <= t < vocab_size]
    pool[ex] = False
    ids = pool.nonzero().squeeze(1)
    if len(ids) < 2:
        raise bad_value("exclude", list(exclude), f"to leave at least 2 of {vocab_size} tokens to draw from")
    return ids


def repeated_tokens(n: int, *, block_len: int, repeats: int, vocab_size: int, bos: int | None = 0,
                    exclude: Sequence[int] = (), seed: int = 0) -> torch.Tensor:
    """``n`` sequences of a random block of ``block_len`` tokens repeated ``repeats`` times.

    Parameters
    ----------
    n, block_len, repeats
        Number of sequences, block length, number of copies (Olsson et al.: 25 tokens, 4 repeats).
    vocab_size, exclude
        Tokens are drawn uniformly from ``range(vocab_size)`` minus ``exclude`` (and minus ``bos``).
    bos
        Token prepended to every sequence (``None``: none).
    seed
        Seed of a private ``torch.Generator``; the same arguments give the same tokens.

    Returns
    -------
    torch.Tensor
        ``[n, (bos is not None) + block_len * repeats]`` int64 token ids.
    """
    for name, v in (("n", n), ("block_len", block_len), ("repeats", repeats)):
        if v < 1:
            raise bad_value(name, v, "a positive integer")
    pool = _token_pool(vocab_size, list(exclude) + ([bos] if bos is not None else []))
    g = torch.Generator().manual_seed(seed)
    block = pool[torch.randint(len(pool), (n, block_len), generator=g)]
    seq = block.repeat(1, repeats)
    if bos is not None:
        seq = torch.cat([torch.full((n, 1), bos, dtype=torch.long), seq], dim=1)
    return seq


def _foil(corrupted: list[int], p: int, block_len: int, answer: int) -> int:
    """The corrupted run's next token, or (when that equals the answer, ``corrupt="first"``) the token
    after the aligned position of the corrupted first half."""
    return corrupted[p + 1] if corrupted[p + 1] != answer else corrupted[p + 1 - block_len]


def induction_pairs(n: int, *, block_len: int, vocab_size: int, bos: int | None = 0, exclude: Sequence[int] = (),
                    seed: int = 0, corrupt: Literal["both", "first", "second"] = "both") -> PairDataset:
    """Clean ``[BOS] + A + A`` / corrupted ``[BOS] + B + C`` pairs (``corrupt="both"``; see the module
    docstring for ``"first"`` and ``"second"``).

    Metric targets: every position of the second half whose next token induction can predict, i.e.
    positions ``o + block_len + j`` for ``j = 0 .. block_len - 2`` (``o = 1`` with BOS), answer the
    clean next token, foil the corrupted next token at the same position (with ``corrupt="first"``,
    where those agree: the token after the aligned position of the corrupted first half).
    """
    if block_len < 2:
        raise bad_value("block_len", block_len, "at least 2 (one induction target needs two repeated tokens)")
    pool = _token_pool(vocab_size, list(exclude) + ([bos] if bos is not None else []))
    g = torch.Generator().manual_seed(seed)
    A = pool[torch.randint(len(pool), (n, block_len), generator=g)]
    if corrupt not in ("both", "first", "second"):
        raise bad_value("corrupt", corrupt, "'both', 'first' or 'second'")

    def fresh(*avoid: torch.Tensor) -> torch.Tensor:  # a block that differs from each of ``avoid`` everywhere
        b = pool[torch.randint(len(pool), (n, block_len), generator=g)]
        same = torch.stack([b == a for a in avoid]).any(0)
        while same.any():
            b[same] = pool[torch.randint(len(pool), (int(same.sum()),), generator=g)]
            same = torch.stack([b == a for a in avoid]).any(0)
        return b

    B = fresh(A)
    C = fresh(A, B) if corrupt == "both" else A
    o = 0 if bos is None else 1
    head = [] if bos is None else [bos]
    positions = tuple(o + block_len + j for j in range(block_len - 1))
    pairs = []
    for a, b, c in zip(A.tolist(), B.tolist(), C.tolist()):
        clean = head + a + a
        corrupted = {"both": head + b + c, "second": head + a + b, "first": head + b + a}[corrupt]
        pairs.append(PromptPair(clean=tuple(clean), corrupted=tuple(corrupted), positions=positions,
                                answers=tuple(clean[p + 1] for p in positions),
                                foils=tuple(_foil(corrupted, p, block_len, clean[p + 1]) for p in positions)))
    params = {"block_len": block_len, "vocab_size": vocab_size, "bos": bos, "exclude": list(exclude),
              "corrupt": corrupt}
    return PairDataset(task="induction", pairs=tuple(pairs), params=params, seed=seed)
