"""The induction task: repeated blocks of random tokens.

Olsson et al. (2022) evaluate induction heads on blocks of random tokens repeated several times, with
BOS first; circuitry's generators take the recipe as parameters. The clean/corrupted pairs of the
induction task are ``[BOS] + A + A`` (clean) and ``[BOS] + A + B`` (corrupted) with ``A``, ``B``
independent uniform random blocks: same length and same token statistics, but the repeat is broken,
so nothing in the second half can be predicted by induction.
"""

from __future__ import annotations

from typing import Sequence

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


def induction_pairs(n: int, *, block_len: int, vocab_size: int, bos: int | None = 0, exclude: Sequence[int] = (),
                    seed: int = 0) -> PairDataset:
    """Clean ``[BOS] + A + A`` / corrupted ``[BOS] + A + B`` pairs.

    Metric targets: every position of the second half whose next token induction can predict, i.e.
    positions ``o + block_len + j`` for ``j = 0 .. block_len - 2`` (``o = 1`` with BOS), answer the
    clean next token, foil the corrupted next token at the same position.
    """
    if block_len < 2:
        raise bad_value("block_len", block_len, "at least 2 (one induction target needs two repeated tokens)")
    pool = _token_pool(vocab_size, list(exclude) + ([bos] if bos is not None else []))
    g = torch.Generator().manual_seed(seed)
    A = pool[torch.randint(len(pool), (n, block_len), generator=g)]
    B = pool[torch.randint(len(pool), (n, block_len), generator=g)]
    # B must differ from A at every target token so that answer != foil
    same = B == A
    while same.any():
        B[same] = pool[torch.randint(len(pool), (int(same.sum()),), generator=g)]
        same = B == A
    o = 0 if bos is None else 1
    head = [] if bos is None else [bos]
    positions = tuple(o + block_len + j for j in range(block_len - 1))
    pairs = []
    for a, b in zip(A.tolist(), B.tolist()):
        clean, corrupted = head + a + a, head + a + b
        pairs.append(PromptPair(clean=tuple(clean), corrupted=tuple(corrupted), positions=positions,
                                answers=tuple(clean[p + 1] for p in positions),
                                foils=tuple(corrupted[p + 1] for p in positions)))
    params = {"block_len": block_len, "vocab_size": vocab_size, "bos": bos, "exclude": list(exclude)}
    return PairDataset(task="induction", pairs=tuple(pairs), params=params, seed=seed)
