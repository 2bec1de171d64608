"""A retrieval-head detector: attention to, and copying of, a needle token from far back.

After Wu et al. (2024), "Retrieval Head Mechanistically Explains Long-Context Factuality": a head
*retrieves* at a step when the model's top prediction is a token from far back in the context and the
head's strongest attention sits on exactly that token. circuitry's version, on any token sequences:

* retrieval steps: query positions ``q`` with at least one earlier occurrence ``j`` of the current
  token whose successor ``j + 1`` lies at least ``min_distance`` positions back (``j + 1 <= q -
  min_distance``): the successor is the needle token to copy;
* a head scores a hit at ``q`` when its most-attended key ``k* = argmax_k A[q, k]`` is one of those
  successors **and** the model's top-1 prediction at ``q`` is ``tokens[k*]``;
* a sequence's score is hits / retrieval steps.

Default sequences (:func:`needle_tokens`): ``[BOS] + needle + haystack + needle`` with a random
needle of ``needle_len`` tokens and a random haystack filling the context (at most 512 tokens), so
the second needle's tokens are retrieved from ``needle_len + haystack_len`` positions back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from circuitry.errors import InputError, bad_value
from circuitry.stats._common import procedure_seed
from circuitry.scores.detectors import SequenceRecipe, check_tokens, function_detector, induction_target

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter

MIN_DISTANCE = 32
"""Default ``min_distance``: how far back a retrieved token must be."""


def needle_tokens(model: "ModelAdapter", *, n: int, needle_len: int = 10, haystack_len: int | None = None,
                  bos: int | None = 0, exclude=(), seed: int = 0) -> torch.Tensor:
    """``[n, 1 + 2 * needle_len + haystack_len]`` sequences ``[BOS] + needle + haystack + needle``.

    ``haystack_len`` defaults to the rest of the context (``min(n_ctx, 512)``). Built from
    :func:`circuitry.prompts.repeated_tokens` (the needle is a block repeated once more after the
    haystack).
    """
    from circuitry.prompts import repeated_tokens

    ctx = min(model.info.n_ctx, 512)
    if haystack_len is None:
        haystack_len = ctx - 1 - 2 * needle_len
    if needle_len < 2:
        raise bad_value("needle_len", needle_len, "at least 2")
    if haystack_len < MIN_DISTANCE:
        raise bad_value("haystack_len", haystack_len, f"at least {MIN_DISTANCE} (the retrieval distance)",
                        "use a shorter needle or a model with a longer context")
    if 1 + 2 * needle_len + haystack_len > model.info.n_ctx:
        raise bad_value("haystack_len", haystack_len, f"a total length <= n_ctx={model.info.n_ctx}")
    needle = repeated_tokens(n, block_len=needle_len, repeats=1, vocab_size=model.info.d_vocab, bos=bos,
                             exclude=exclude, seed=seed)
    hay = repeated_tokens(n, block_len=haystack_len, repeats=1, vocab_size=model.info.d_vocab, bos=None,
                          exclude=list(exclude) + ([bos] if bos is not None else []),
                          seed=procedure_seed(seed, "retrieval/distractors"))
    return torch.cat([needle, hay, needle[:, (bos is not None):]], dim=1)


def retrieval_per_sample(model: "ModelAdapter", tokens: torch.Tensor, *,
                         min_distance: int = MIN_DISTANCE) -> np.ndarray:
    """Retrieval score of every head on every sequence, ``[n, layer, head]`` (module docstring).

    Raises
    ------
    InputError
        A sequence has no retrieval step (no token repeated from at least ``min_distance`` back).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> m = load_model("zoo:attn-only-2l")
    >>> toks = needle_tokens(m, n=2, needle_len=8, haystack_len=40)
    >>> retrieval_per_sample(m, toks).shape == (2, m.info.n_layers, m.info.n_heads)
    True
    """
    tokens = check_tokens(model, tokens)
    n, p = tokens.shape
    T = induction_target(tokens).bool()  # [n, q, k]: k follows an earlier occurrence of tokens[q]
    far = torch.ones(p, p, dtype=torch.bool).tril(-min_distance)  # k <= q - min_distance
    T &= far
    steps = T.any(-1)  # [n, q]
    missing = (~steps.any(-1)).nonzero()
    if len(missing):
        raise InputError(f"sequence {int(missing[0])} has no token repeated from >= {min_distance} positions "
                         "back, so it has no retrieval step. Fix: use needle_tokens(...) or longer repeats")
    L = model.info.n_layers
    res = model.run(tokens, reads=[("pattern", layer) for layer in range(L)])
    pred = res.logits.argmax(-1).cpu()  # [n, q]
    out = np.empty((n, L, model.info.n_heads))
    for layer in range(L):
        kstar = res[("pattern", layer)].detach().cpu().argmax(-1)  # [n, h, q]
        on_target = T.gather(-1, kstar.permute(0, 2, 1)).permute(0, 2, 1)  # [n, h, q]: T[n, q, kstar]
        copied = tokens.gather(1, kstar.reshape(n, -1)).reshape(kstar.shape) == pred[:, None, :]
        hit = (on_target & copied & steps[:, None, :]).sum(-1).double()
        out[:, layer] = (hit / steps.sum(-1, keepdim=True).double()).numpy()
    return out


def _needles(model: "ModelAdapter", recipe: SequenceRecipe) -> torch.Tensor:
    return needle_tokens(model, n=recipe.n_samples, bos=recipe.bos_id(model), exclude=recipe.exclude,
                         seed=recipe.seed)


RETRIEVAL = function_detector(
    "retrieval", retrieval_per_sample, sequences=_needles,
    description="share of retrieval steps (a token repeated from >= 32 positions back) at which the head's "
                "top attention is on the needle token and the model predicts that token (after Wu et al. 2024)")
