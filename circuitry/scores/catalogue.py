"""Head types from the attention-head survey literature, each with a null for significance labels.

Zheng et al. (2024), "Attention Heads of Large Language Models: A Survey", catalogue heads by function;
circuitry scores the following beyond Olsson et al.'s evaluators (``docs/api/scores.md``):

* ``attention_sink``: mean attention from every query ``q >= 1`` to the first position (the BOS /
  sink token; Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks").
* ``streaming``: mean attention on the sink plus the ``RECENT`` most recent keys ``q-3..q``, on
  repeated random tokens (the default sequences), where a head that can look far back does. DuoAttention
  (Xiao et al. 2024) splits heads into *streaming* heads, which keep only the sink and recent tokens,
  and *retrieval* heads, which need the full context; a head labelled ``streaming`` is a candidate for a
  streaming KV cache.
* ``ngram_induction`` (statistical / n-gram induction; Akyurek et al. 2024, "In-Context Language
  Learning: Architectures and Algorithms"): attention to the token that followed earlier occurrences
  of the last two tokens (a 3-gram match), on sequences over a small alphabet where single-token matches
  are common. Its null is model-based: the head's attention mass on the tokens that followed earlier
  occurrences of the *current token* (ordinary induction targets), shared out in proportion to how many
  of them also match the bigram; a plain induction head scores at the null, a 3-gram head above it.
* ``successor`` (Gould et al. 2024, "Successor Heads"): the share of tokens ``x`` of an ordered list
  (``order``; default: the token ids in increasing order, BOS left out, at most ``MAX_ORDER``) for which
  the head's OV circuit applied to ``x``'s effective embedding raises ``succ(x)`` most among the tokens of
  the list. Effective embedding: the residual stream after layer 0's MLP on the one-token input ``x``
  (the embedding itself for attention-only models; Gould et al. use ``MLP0(W_E)``). Null: ``1 / m`` for
  ``m`` candidate tokens.
* ``copy_suppression`` (McDougall et al. 2023, "Copy Suppression"): the share of tokens ``x`` whose own
  logit is the one the head's OV circuit lowers most among the candidates (negative OV copying; the
  paper: the token is among the 10 most suppressed of 50k for 85% of tokens in GPT-2's L10H7). Null:
  ``1 / m``. Its activation-based companion is ``negative_copying``
  (:func:`circuitry.scores.copying.copying_per_sample` with ``sign=-1``); the ablation effect of a
  candidate head is ``ablation_loss`` below.
* ``ablation_loss``: the rise of the next-token loss on repeated random tokens when the head's output is
  mean-ablated (null 0, floor 0.05 nats): which heads the model relies on, to pair with the OV views.

The OV detectors take sequences of ``(x, succ(x))`` pairs (``[m, 2]``): each pair is one sample.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from circuitry.errors import bad_value
from circuitry.scores.detectors import (SequenceRecipe, check_tokens, function_detector, induction_target,
                                        pattern_detector)

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter

RECENT = 4
"""Recent keys (the query and the three before it) in the ``streaming`` target."""
MAX_ORDER = 512
"""Longest default token order for the OV detectors (the first token ids after BOS)."""
NGRAM_ALPHABET = 6
"""Symbols per sequence in the default ``ngram_induction`` sequences."""


# ----------------------------------------------------------------- attention sinks and streaming heads
def sink_target(tokens: torch.Tensor) -> torch.Tensor:
    """``T[n, q, 0] = 1`` for ``q >= 1``."""
    n, p = tokens.shape
    T = torch.zeros(n, p, p)
    T[:, 1:, 0] = 1.0
    return T


def streaming_target(tokens: torch.Tensor) -> torch.Tensor:
    """``T[n, q, k] = 1`` for ``k = 0`` or ``q - RECENT < k <= q``, on queries ``q >= RECENT``."""
    n, p = tokens.shape
    q, k = torch.arange(p)[:, None], torch.arange(p)[None, :]
    T = ((k == 0) | ((k <= q) & (k > q - RECENT))) & (q >= RECENT)
    return T.float().expand(n, p, p).clone()


def _random_tokens(model: "ModelAdapter", recipe: SequenceRecipe) -> torch.Tensor:
    return recipe.tokens(model, repeats=1, block_len=recipe.block_len * recipe.repeats)


ATTENTION_SINK = pattern_detector(
    "attention_sink", sink_target, sequences=_random_tokens,
    description="mean attention from every query q >= 1 to the first token (attention sink; Xiao et al. 2023)")
STREAMING = pattern_detector(
    "streaming", streaming_target,
    description=f"mean attention on the first token plus the {RECENT} most recent keys, on repeated random tokens "
                "(where looking back pays): a streaming head in DuoAttention's split (Xiao et al. 2024); the "
                "others are retrieval heads")


# ----------------------------------------------------------------- n-gram (statistical) induction
def ngram_target(tokens: torch.Tensor, n: int = 3) -> torch.Tensor:
    """``T[b, q, j+1] = 1`` where the ``n-1`` tokens ending at ``j < q`` equal those ending at ``q``."""
    match = (tokens[:, :, None] == tokens[:, None, :]) & torch.ones(tokens.shape[1], tokens.shape[1],
                                                                    dtype=torch.bool).tril(-1)
    for back in range(1, n - 1):  # also the tokens `back` positions earlier match
        shifted = torch.zeros_like(match)
        shifted[:, back:, back:] = match[:, :-back, :-back]
        match = match & shifted
    out = torch.zeros(match.shape)
    out[:, :, 1:] = match[:, :, :-1].float()
    return out


def _ngram_masses(model: "ModelAdapter", tokens: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    tokens = check_tokens(model, tokens)
    T, U = ngram_target(tokens).double(), induction_target(tokens).double()
    rows = (T.sum(-1) > 0).double()  # [b, q]
    n_rows = rows.sum(-1)
    ratio = T.sum(-1) / U.sum(-1).clamp_min(1)  # [b, q]
    L = model.info.n_layers
    res = model.run(tokens, reads=[("pattern", layer) for layer in range(L)], logits=False)
    score, null = np.empty((tokens.shape[0], L, model.info.n_heads)), np.empty((tokens.shape[0], L, model.info.n_heads))
    for layer in range(L):
        A = res[("pattern", layer)].detach().double().cpu()
        mt, mu = torch.einsum("bhqk,bqk->bhq", A, T), torch.einsum("bhqk,bqk->bhq", A, U)
        avg = lambda m: ((m * rows[:, None]).sum(-1) / n_rows.clamp_min(1)[:, None])  # noqa: E731
        ok = (n_rows > 0)[:, None]
        score[:, layer] = torch.where(ok, avg(mt), torch.nan).numpy()
        null[:, layer] = torch.where(ok, avg(mu * ratio[:, None]), torch.nan).numpy()
    return score, null


def small_alphabet_tokens(model: "ModelAdapter", recipe: SequenceRecipe) -> torch.Tensor:
    """``[n, 1 + block_len * repeats]``: BOS, then tokens drawn uniformly from ``NGRAM_ALPHABET`` symbols
    chosen per sequence (so single-token and bigram repeats both occur by chance)."""
    bos = recipe.bos_id(model)
    pool = torch.tensor([t for t in range(model.info.d_vocab) if t != bos and t not in recipe.exclude])
    g = torch.Generator().manual_seed(recipe.seed)
    length = recipe.block_len * recipe.repeats
    rows = []
    for _ in range(recipe.n_samples):
        alpha = pool[torch.randperm(len(pool), generator=g)[:NGRAM_ALPHABET]]
        rows.append(alpha[torch.randint(len(alpha), (length,), generator=g)])
    out = torch.stack(rows)
    return out if bos is None else torch.cat([torch.full((len(rows), 1), bos), out], 1)


NGRAM_INDUCTION = function_detector(
    "ngram_induction", lambda m, t: _ngram_masses(m, t)[0], sequences=small_alphabet_tokens,
    null=lambda m, t, s: _ngram_masses(m, t)[1],
    null_description="the head's attention on ordinary induction targets (tokens after earlier occurrences of "
                     "the current token), shared out in proportion to how many of them also match the bigram",
    description="mean attention to tokens that followed earlier occurrences of the last two tokens (3-gram "
                "statistical induction; Akyurek et al. 2024), on small-alphabet sequences")


# ----------------------------------------------------------------- OV detectors: successor, copy suppression
def order_pairs(order: Sequence[int]) -> torch.Tensor:
    """``[m - 1, 2]`` pairs ``(order[i], order[i + 1])``: the samples of the OV detectors."""
    o = torch.as_tensor(list(order), dtype=torch.long)
    if o.ndim != 1 or len(o) < 3 or len(set(o.tolist())) != len(o):
        raise bad_value("order", list(order)[:8], "at least 3 distinct token ids")
    return torch.stack([o[:-1], o[1:]], 1)


def default_order(model: "ModelAdapter", recipe: SequenceRecipe | None = None) -> torch.Tensor:
    """Token ids in increasing order, BOS and excluded tokens left out, at most :data:`MAX_ORDER`."""
    skip = {recipe.bos_id(model) if recipe else model.info.bos_token_id, *(recipe.exclude if recipe else ())}
    return order_pairs([t for t in range(model.info.d_vocab) if t not in skip][:MAX_ORDER])


def ov_logits(model: "ModelAdapter", tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [m, layer, head, c], candidates [c])``: every head's direct OV-circuit logits, restricted to
    the candidate tokens (those in ``tokens``), for the effective embedding of each ``tokens[:, 0]``."""
    tokens = torch.as_tensor(tokens).long()
    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise bad_value("tokens", tuple(tokens.shape), "[m, 2] pairs (x, successor of x); see order_pairs()")
    tokens = check_tokens(model, tokens[:, :2])
    cand = torch.unique(tokens)
    x = tokens[:, :1]
    reads = [("resid_pre", 0)] + ([("mlp_out", 0)] if model.info.has_mlp else [])
    res = model.run(x, reads=reads, logits=False)
    e = res[("resid_pre", 0)][:, 0].detach().double().cpu()
    if model.info.has_mlp:
        e = e + res[("mlp_out", 0)][:, 0].detach().double().cpu()
    w = model.weights(fold_ln=True)
    W_U = w.W_U.double()[:, cand]
    out = torch.einsum("md,lhde,lhef,fc->mlhc", e, w.W_V.double(), w.W_O.double(), W_U)
    return out, cand


def successor_per_sample(model: "ModelAdapter", tokens: torch.Tensor) -> np.ndarray:
    """``[m, layer, head]``: 1 where the head's OV circuit raises ``tokens[i, 1]`` most among the candidates."""
    logits, cand = ov_logits(model, tokens)
    top = cand[logits.argmax(-1)]  # [m, L, H]
    return (top == torch.as_tensor(tokens)[:, 1, None, None]).double().numpy()


def copy_suppression_per_sample(model: "ModelAdapter", tokens: torch.Tensor) -> np.ndarray:
    """``[m, layer, head]``: 1 where the head's OV circuit lowers ``tokens[i, 0]`` itself most among the candidates."""
    logits, cand = ov_logits(model, tokens)
    low = cand[logits.argmin(-1)]
    return (low == torch.as_tensor(tokens)[:, 0, None, None]).double().numpy()


def _one_in_m(model: "ModelAdapter", tokens: torch.Tensor, scores: np.ndarray) -> float:
    return 1.0 / len(torch.unique(torch.as_tensor(tokens)[:, :2]))


SUCCESSOR = function_detector(
    "successor", successor_per_sample, sequences=default_order, null=_one_in_m,
    null_description="1 / m: the chance that the top of m candidate tokens is the successor",
    description="share of tokens x of the order whose successor is the token the head's OV circuit raises most "
                "among the order's tokens, from x's effective embedding (succession score; Gould et al. 2024)")
COPY_SUPPRESSION = function_detector(
    "copy_suppression", copy_suppression_per_sample, sequences=default_order, null=_one_in_m,
    null_description="1 / m: the chance that the most-lowered of m candidate tokens is x itself",
    description="share of tokens x whose own logit is the one the head's OV circuit lowers most among the "
                "candidates (negative OV copying, copy suppression; McDougall et al. 2023)")


def successor_detector(order: Sequence[int], *, name: str = "successor") -> "dataclasses.Any":
    """A ``successor`` detector on your token order (e.g. the ids of ``" Monday", " Tuesday", ...``).

    Examples
    --------
    >>> det = successor_detector([3, 4, 5, 6, 7], name="days")
    >>> det.default_tokens(None, None).tolist()[0]
    [3, 4]
    """
    pairs = order_pairs(order)
    return dataclasses.replace(SUCCESSOR, name=name, sequences=lambda model, recipe: pairs)


# ----------------------------------------------------------------- the ablation effect
def _sequence_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    logp = logits.detach().double().cpu().log_softmax(-1)
    return -logp[:, :-1].gather(-1, tokens[:, 1:, None]).squeeze(-1).mean(-1)


def ablation_per_sample(model: "ModelAdapter", tokens: torch.Tensor) -> np.ndarray:
    """``[n, layer, head]``: rise of each sequence's mean next-token loss (nats) when the head's output ``z`` is
    replaced by its mean over all sequences and positions (mean ablation), one head at a time."""
    from circuitry.models.edits import Edit

    tokens = check_tokens(model, tokens)
    n, p = tokens.shape
    L, H = model.info.n_layers, model.info.n_heads
    res = model.run(tokens, reads=[("z", layer) for layer in range(L)])
    base = _sequence_loss(res.logits, tokens)
    out = np.empty((n, L, H))
    for layer in range(L):
        mean = res[("z", layer)].detach().mean((0, 1))  # [head, d_head]
        for h in range(H):
            edit = Edit("z", layer, mean, mask=model.mask("z", batch=n, seq=p, heads=[h]))
            out[:, layer, h] = (_sequence_loss(model.run(tokens, edits=[edit]).logits, tokens) - base).numpy()
    return out


ABLATION_LOSS = function_detector(
    "ablation_loss", ablation_per_sample, null=lambda m, t, s: 0.0, min_effect=0.05,
    null_description="0: mean-ablating a head the model does not use leaves the loss unchanged",
    description="rise of the next-token loss (nats) on repeated random tokens when the head is mean-ablated "
                "(the ablation effect McDougall et al. 2023 pair with negative copying; any head the model relies on)")


# ----------------------------------------------------------------- a null for the retrieval detector
def retrieval_null(model: "ModelAdapter", tokens: torch.Tensor, scores: np.ndarray) -> np.ndarray:
    """Expected retrieval score if the head's top key were uniform over ``0..q``: per retrieval step, the
    share of keys that are a far successor of an earlier occurrence *and* the model's prediction."""
    from circuitry.scores.retrieval import MIN_DISTANCE

    tokens = check_tokens(model, tokens)
    p = tokens.shape[1]
    T = induction_target(tokens).bool() & torch.ones(p, p, dtype=torch.bool).tril(-MIN_DISTANCE)
    steps = T.any(-1)
    pred = model.run(tokens).logits.argmax(-1).cpu()
    good = (T & (tokens[:, None, :] == pred[:, :, None])).sum(-1).double() / torch.arange(1, p + 1)
    return ((good * steps).sum(-1) / steps.sum(-1).clamp_min(1)).numpy()[:, None, None]


def with_retrieval_null(detector):
    """The ``retrieval`` detector with :func:`retrieval_null`."""
    return dataclasses.replace(detector, null=retrieval_null,
                               null_description="a uniformly random top key among 0..q (exact expectation)")
