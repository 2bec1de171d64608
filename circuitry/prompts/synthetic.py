"""Built-in tasks beyond induction, generated in token space for any vocabulary.

* :func:`ioi_pairs`, an indirect-object-identification-style name-mover task (Wang et al. 2023, "Interpretability
  in the Wild"): a fixed template of filler tokens with two "names" ``A`` and ``B``, one repeated as the subject
  ``S``; the model should predict the other one, the indirect object ``IO``. The corruption is Wang et al.'s ABC
  distribution: the repeated name is replaced by a third name ``C``, so no name is repeated and the IO is
  undetermined. Metric: ``logit_diff`` of IO against S.
* :func:`successor_pairs`, a successor / greater-than-style task (Gould et al. 2024, "Successor Heads"; Hanna et
  al. 2023, "How does GPT-2 compute greater-than?"): a run of consecutive tokens in a named order (token-id
  order by default); at each position after the second the answer is the next token in the order. The
  corruption draws tokens that are not consecutive; the foil at each position is the successor of the
  corrupted token. Metric: ``logit_diff`` of the clean successor against the corrupted one.

Both are reproducible from their seed and exclude the BOS token (and any ``exclude`` ids) from their token pools.
"""

from __future__ import annotations

from typing import Sequence

import torch

from circuitry.errors import bad_value
from circuitry.prompts.induction import _token_pool
from circuitry.prompts.pairs import PairDataset, PromptPair


def ioi_pairs(n: int, *, vocab_size: int, bos: int | None = 0, n_names: int | None = None, template_len: int = 6,
              exclude: Sequence[int] = (), seed: int = 0) -> PairDataset:
    """IOI-style clean/corrupted pairs in token space (see the module docstring).

    The template is ``[BOS] w0 N1 w1 N2 w2 .. S w_last`` with ``template_len`` filler tokens ``w`` drawn once per
    dataset (a fixed template, as in Wang et al.), names ``N1, N2`` = ``A, B`` or ``B, A`` (the ABBA and BABA
    orders, half each) from a pool of ``n_names`` tokens, and ``S`` = ``B`` in the clean prompt, a third name
    ``C`` in the corrupted one. The metric reads the last position: answer ``A`` (the IO), foil ``B`` (the S).
    """
    if template_len < 4:
        raise bad_value("template_len", template_len, "at least 4 filler tokens")
    pool = _token_pool(vocab_size, list(exclude) + ([bos] if bos is not None else []))
    n_names = n_names or max(3, min(16, len(pool) // 4))
    if len(pool) < n_names + template_len:
        raise bad_value("n_names", n_names, f"with template_len={template_len}, at most {len(pool) - template_len} "
                        f"for a vocabulary of {vocab_size} tokens")
    if n_names < 3:
        raise bad_value("n_names", n_names, "at least 3 (A, B and the corrupting C)")
    g = torch.Generator().manual_seed(seed)
    perm = pool[torch.randperm(len(pool), generator=g)]
    filler, names = perm[:template_len].tolist(), perm[template_len:template_len + n_names]
    head = [] if bos is None else [bos]
    pairs = []
    for _ in range(n):
        a, b, c = names[torch.randperm(n_names, generator=g)[:3]].tolist()
        first, second = (a, b) if torch.rand((), generator=g) < 0.5 else (b, a)
        body = [filler[0], first, filler[1], second, *filler[2:-1]]
        clean = head + body + [b, filler[-1]]
        corrupted = head + body + [c, filler[-1]]
        pairs.append(PromptPair(clean=tuple(clean), corrupted=tuple(corrupted), positions=(len(clean) - 1,),
                                answers=(a,), foils=(b,), meta={"order": "ABBA" if first == a else "BABA"}))
    params = {"vocab_size": vocab_size, "bos": bos, "n_names": n_names, "template_len": template_len,
              "exclude": list(exclude)}
    return PairDataset(task="ioi", pairs=tuple(pairs), params=params, seed=seed, metric="logit_diff")


def successor_pairs(n: int, *, vocab_size: int, bos: int | None = 0, run_len: int = 6,
                    order: Sequence[int] | None = None, exclude: Sequence[int] = (), seed: int = 0) -> PairDataset:
    """Successor-style clean/corrupted pairs (see the module docstring).

    Clean: ``[BOS] o[i] o[i+1] .. o[i+run_len-1]`` for a random start ``i`` in ``order`` (default: the token ids
    in increasing order, BOS and ``exclude`` left out). Corrupted: tokens of ``order`` drawn at random, each
    differing from the clean token at its position and never continuing the previous one. Targets: positions
    of the 2nd to the last run token; answer ``o[j + 1]`` after ``o[j]``, foil the successor of the corrupted
    token at that position.
    """
    if run_len < 3:
        raise bad_value("run_len", run_len, "at least 3 (targets start after two consecutive tokens)")
    skip = set(exclude) | ({bos} if bos is not None else set())
    seq = [int(t) for t in (order if order is not None else range(vocab_size)) if int(t) not in skip]
    if any(not 0 <= t < vocab_size for t in seq):
        raise bad_value("order", list(order or [])[:5], f"token ids in [0, {vocab_size})")
    if len(set(seq)) != len(seq):
        raise bad_value("order", "a list with repeated ids", "each token id once")
    if len(seq) < run_len + 3:
        raise bad_value("run_len", run_len, f"at most {len(seq) - 3} for an order of {len(seq)} tokens")
    nxt = {t: seq[i + 1] for i, t in enumerate(seq[:-1])}
    g = torch.Generator().manual_seed(seed)
    head = [] if bos is None else [bos]
    o = len(head)
    positions = tuple(o + j for j in range(1, run_len))
    pairs = []
    for _ in range(n):
        start = int(torch.randint(len(seq) - run_len, (), generator=g))
        run = seq[start:start + run_len + 1]
        corr: list[int] = []
        for j in range(run_len):
            while True:
                t = seq[int(torch.randint(len(seq) - 1, (), generator=g))]  # never the last: it has a successor
                if t != run[j] and nxt[t] != run[j + 1] and (not corr or nxt[corr[-1]] != t):
                    break
            corr.append(t)
        clean, corrupted = head + run[:run_len], head + corr
        pairs.append(PromptPair(clean=tuple(clean), corrupted=tuple(corrupted), positions=positions,
                                answers=tuple(run[j + 1] for j in range(1, run_len)),
                                foils=tuple(nxt[corr[j]] for j in range(1, run_len))))
    params = {"vocab_size": vocab_size, "bos": bos, "run_len": run_len, "order": None if order is None else seq,
              "exclude": list(exclude)}
    return PairDataset(task="successor", pairs=tuple(pairs), params=params, seed=seed, metric="logit_diff")
