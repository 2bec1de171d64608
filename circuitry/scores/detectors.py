"""Head detectors: score every head of a model for one behaviour.

A :class:`Detector` maps ``(adapter, tokens [n, pos]) -> scores [n, layer, head]`` (one value per
sampled sequence, so :func:`circuitry.scores.score_heads` can report a mean and a bootstrap interval).
Two ways to make one:

* :func:`pattern_detector` from an **expected attention pattern**: a function of the token sequence
  giving target weights ``T [n, q, k]``. A head's score on one sequence is the attention mass it puts
  on the target, averaged over the query rows that have a target:
  ``mean_{q : sum_k T[q,k] > 0}  sum_k A[q,k] T[q,k]`` (with 0/1 targets: the share of attention on the
  target keys).
* :func:`function_detector` from **any function** ``fn(adapter, tokens) -> [n, layer, head]``.

The three Olsson et al. (2022, appendix "head evaluators"; see ``docs/api/scores.md``) pattern
detectors are defined here by their targets on token ids, so they work on any sequence:

* ``previous_token``: ``T[i, i-1] = 1`` for ``i >= 1`` (mean attention from ``i`` to ``i-1``).
* ``induction`` (prefix matching): ``T[q, j+1] = 1`` for every earlier occurrence ``j < q`` of the
  current token (``tokens[j] == tokens[q]``): attention to the token that *followed* earlier
  occurrences of the current token.
* ``duplicate_token``: ``T[q, k] = 1`` for every earlier occurrence ``k < q`` of the current token.

On the default sequences (a block of random tokens repeated, BOS first, BOS never drawn inside the
block) the rows with a target are the tokens of the later repeats, as in the paper, plus the rare
chance repeats inside a block (for which the targets are equally well defined).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np
import torch

from circuitry.errors import InputError, bad_value
from circuitry.provenance import Frozen

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter

ScoreFn = Callable[["ModelAdapter", torch.Tensor], "np.ndarray | torch.Tensor"]
TargetFn = Callable[[torch.Tensor], torch.Tensor]
NullFn = Callable[["ModelAdapter", torch.Tensor, np.ndarray], "np.ndarray | float"]
"""``null(adapter, tokens [n, pos], scores [n, layer, head]) -> expected score under the null``, broadcastable
to ``[n, layer, head]`` (a constant, ``[n, 1, 1]`` or ``[n, layer, head]``); see
:mod:`circuitry.scores.significance`."""


class SequenceRecipe(Frozen):
    """Repeated random tokens (Olsson et al. 2022: 25 tokens repeated 4 times, BOS first, 10 samples).

    Attributes
    ----------
    block_len, repeats, n_samples
        Block length, copies of the block, number of sequences.
    bos
        Token prepended to each sequence: ``"model"`` (the model's ``bos_token_id``, 0 if it has none),
        an id, or ``None`` for no BOS.
    exclude
        Token ids never drawn (the paper excludes the most and least frequent tokens of the training
        corpus; pass them here).
    seed
        Seed of the token generator (:func:`circuitry.prompts.repeated_tokens`).
    """

    block_len: int = 25
    repeats: int = 4
    n_samples: int = 10
    bos: int | None | Literal["model"] = "model"
    exclude: tuple[int, ...] = ()
    seed: int = 0

    def bos_id(self, model: "ModelAdapter") -> int | None:
        if self.bos == "model":
            b = model.info.bos_token_id
            return 0 if b is None else int(b)
        return self.bos

    def validate_for(self, model: "ModelAdapter") -> None:
        for name in ("block_len", "repeats", "n_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad_value(name, v, "a positive integer")
        bos = self.bos_id(model)
        if bos is not None and not 0 <= bos < model.info.d_vocab:
            raise bad_value("bos", bos, f"'model', None or a token id in [0, {model.info.d_vocab})")
        length = (bos is not None) + self.block_len * self.repeats
        if length > model.info.n_ctx:
            raise bad_value("block_len", self.block_len,
                            f"block_len * repeats (+1 for BOS) <= n_ctx={model.info.n_ctx} (got {length} tokens)",
                            "use a shorter block or fewer repeats")

    def tokens(self, model: "ModelAdapter", *, repeats: int | None = None, block_len: int | None = None) -> torch.Tensor:
        """``[n_samples, pos]`` token ids; ``repeats=1`` gives plain random tokens."""
        from circuitry.prompts import repeated_tokens

        return repeated_tokens(self.n_samples, block_len=block_len or self.block_len,
                               repeats=repeats or self.repeats, vocab_size=model.info.d_vocab,
                               bos=self.bos_id(model), exclude=self.exclude, seed=self.seed)


@dataclass(frozen=True)
class Detector:
    """A head detector (see the module docstring).

    Attributes
    ----------
    name, description
        Registry name and what a high score means.
    score
        ``fn(adapter, tokens [n, pos]) -> [n, layer, head]``.
    target
        For pattern detectors, the target function ``tokens [n, pos] -> T [n, q, k]`` (pattern detectors
        on the same tokens share one forward pass).
    sequences
        Default sequences when the caller passes none: ``fn(adapter, recipe) -> tokens``; ``None``
        means the recipe's repeated random tokens.
    null, null_description
        The score a head gets under the null hypothesis "the head does not do this"
        (:data:`NullFn`), and how it is obtained. Pattern detectors get it automatically (the attention
        mass on the same number of key positions placed at random). ``None``: the detector reports scores
        but labels no head (no significance test).
    min_effect
        The smallest excess over the null that counts as the behaviour: the test's null hypothesis is
        ``mean(score - null) <= min_effect`` (:func:`circuitry.scores.significance.head_significance`).
    """

    name: str
    description: str
    score: ScoreFn
    target: TargetFn | None = None
    sequences: Callable[["ModelAdapter", SequenceRecipe], torch.Tensor] | None = field(default=None)
    null: NullFn | None = None
    null_description: str = ""
    min_effect: float = 0.1

    def default_tokens(self, model: "ModelAdapter", recipe: SequenceRecipe) -> torch.Tensor:
        return recipe.tokens(model) if self.sequences is None else self.sequences(model, recipe)


def check_tokens(model: "ModelAdapter", tokens) -> torch.Tensor:
    """Validate user tokens: ``[n, pos]`` integer ids within the vocabulary and the context."""
    t = torch.as_tensor(tokens)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.dtype.is_floating_point or t.dtype == torch.bool:
        raise InputError(f"tokens has shape {tuple(t.shape)} and dtype {t.dtype}; expected integer ids "
                         "[n_sequences, pos]. Fix: pass a LongTensor of token ids")
    if t.numel() == 0 or t.shape[1] < 2:
        raise bad_value("tokens", tuple(t.shape), "at least one sequence of at least 2 tokens")
    if int(t.min()) < 0 or int(t.max()) >= model.info.d_vocab:
        raise InputError(f"tokens contain id {int(t.max()) if int(t.max()) >= model.info.d_vocab else int(t.min())}; "
                         f"expected ids in [0, {model.info.d_vocab}) for this model")
    if t.shape[1] > model.info.n_ctx:
        raise bad_value("tokens", f"{t.shape[1]} positions", f"at most n_ctx={model.info.n_ctx} positions",
                        "truncate the sequences")
    return t.long()


# ----------------------------------------------------------------- pattern targets
def previous_token_target(tokens: torch.Tensor) -> torch.Tensor:
    """``T[n, i, i-1] = 1`` for ``i >= 1``."""
    n, p = tokens.shape
    return torch.diag_embed(torch.ones(n, p - 1), offset=-1)


def duplicate_token_target(tokens: torch.Tensor) -> torch.Tensor:
    """``T[n, q, k] = 1`` where ``k < q`` and ``tokens[k] == tokens[q]``."""
    p = tokens.shape[1]
    same = tokens[:, :, None] == tokens[:, None, :]
    return (same & torch.ones(p, p, dtype=torch.bool).tril(-1)).float()


def induction_target(tokens: torch.Tensor) -> torch.Tensor:
    """``T[n, q, j+1] = 1`` where ``j < q`` and ``tokens[j] == tokens[q]`` (prefix matching)."""
    dup = duplicate_token_target(tokens)  # [n, q, j]
    out = torch.zeros_like(dup)
    out[:, :, 1:] = dup[:, :, :-1]
    return out


def pattern_scores(model: "ModelAdapter", tokens: torch.Tensor, targets: Sequence[TargetFn], *,
                   batch_size: int = 16) -> list[np.ndarray]:
    """Score every head against several targets with one forward pass per batch.

    Returns one ``[n, layer, head]`` array per target:
    ``mean_{q: sum_k T[q,k] > 0} sum_k A[q,k] T[q,k]`` for each sequence and head; NaN for a sequence
    without any target row (such sequences are left out of the mean and the interval).
    """
    tokens = check_tokens(model, tokens)
    n, L, H = tokens.shape[0], model.info.n_layers, model.info.n_heads
    Ts = [t(tokens).to(torch.float64) for t in targets]
    for fn, T in zip(targets, Ts):
        if T.shape != (n, tokens.shape[1], tokens.shape[1]):
            raise InputError(f"target {getattr(fn, '__name__', fn)} returned shape {tuple(T.shape)}; "
                             f"expected [n, q, k] = {(n, tokens.shape[1], tokens.shape[1])}")
        empty = (T.sum(-1) > 0).sum(-1) == 0
        if bool(empty.all()):
            raise InputError(f"target {getattr(fn, '__name__', fn)} selects no query position in any of the "
                             f"{n} sequences; at least one needs a row with a target "
                             "(e.g. induction needs a repeated token)")
    outs = [np.empty((n, L, H)) for _ in targets]
    reads = [("pattern", layer) for layer in range(L)]
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        res = model.run(tokens[sl], reads=reads, logits=False)
        for layer in range(L):
            A = res[("pattern", layer)].detach().to(torch.float64).cpu()  # [b, h, q, k]
            for out, T in zip(outs, Ts):
                t = T[sl]
                rows = (t.sum(-1) > 0).to(torch.float64)  # [b, q]
                mass = torch.einsum("bhqk,bqk->bhq", A, t)
                n_rows = rows.sum(-1)[:, None]
                val = (mass * rows[:, None]).sum(-1) / n_rows.clamp_min(1)
                out[sl, layer] = torch.where(n_rows > 0, val, torch.nan).numpy()
    return outs


def placebo_null(target: TargetFn) -> NullFn:
    """Null of a pattern detector: the expected score if the same targets sat at random key positions.

    For a query row ``q`` with targets ``T[q, :]`` among the causal keys ``0..q``, placing them by a
    random permutation of those keys gives an expected attention mass ``sum_k T[q, k] / (q + 1)`` whatever
    the head's pattern (its row sums to 1); the null of a sequence is the mean over its target rows.
    A head that attends uniformly, or to positions unrelated to the target, scores this on average.
    """

    def null(model: "ModelAdapter", tokens: torch.Tensor, scores: np.ndarray) -> np.ndarray:
        T = target(tokens).to(torch.float64)
        p = T.shape[1]
        Tc = T * torch.ones(p, p, dtype=torch.float64).tril()
        rows = (T.sum(-1) > 0).to(torch.float64)
        per_row = Tc.sum(-1) / torch.arange(1, p + 1, dtype=torch.float64)
        val = (per_row * rows).sum(-1) / rows.sum(-1).clamp_min(1)
        return torch.where(rows.sum(-1) > 0, val, torch.nan).numpy()[:, None, None]

    return null


PLACEBO = ("attention mass on the same number of key positions placed uniformly at random among the causal "
           "keys 0..q (exact expectation; a uniform or unrelated head scores it)")


def pattern_detector(name: str, target: TargetFn, *, description: str,
                     sequences: Callable[["ModelAdapter", SequenceRecipe], torch.Tensor] | None = None,
                     min_effect: float = 0.1) -> Detector:
    """A detector from an expected attention pattern; its null is :func:`placebo_null` of the target.

    Parameters
    ----------
    name
        Registry name.
    target
        ``tokens [n, pos] -> T [n, q, k]`` non-negative target weights (0/1 for "attends there").
    description
        What a high score means.
    sequences
        Default sequences (``fn(adapter, recipe) -> tokens``); ``None``: repeated random tokens.
    min_effect
        Smallest excess attention share over the null that labels a head (default 0.1).

    Examples
    --------
    A "BOS head" detector (attention to position 0 from every query):

    >>> import torch
    >>> def to_bos(tokens):
    ...     T = torch.zeros(tokens.shape[0], tokens.shape[1], tokens.shape[1])
    ...     T[:, :, 0] = 1.0
    ...     return T
    >>> det = pattern_detector("bos", to_bos, description="attention to the first token")
    >>> det.name
    'bos'
    """
    if not callable(target):
        raise bad_value("target", target, "a function tokens [n, pos] -> [n, q, k]")

    def score(model: "ModelAdapter", tokens: torch.Tensor) -> np.ndarray:
        return pattern_scores(model, tokens, [target])[0]

    return Detector(name=name, description=description, score=score, target=target, sequences=sequences,
                    null=placebo_null(target), null_description=PLACEBO, min_effect=min_effect)


def function_detector(name: str, fn: ScoreFn, *, description: str,
                      sequences: Callable[["ModelAdapter", SequenceRecipe], torch.Tensor] | None = None,
                      null: NullFn | None = None, null_description: str = "", min_effect: float = 0.1) -> Detector:
    """A detector from any function ``fn(adapter, tokens [n, pos]) -> [n, layer, head]`` (numpy or torch).

    Give ``null`` (the expected score under "the head does not do this", see :data:`NullFn`) and
    ``null_description`` so that ``score_heads`` can test each head and label the significant ones;
    without it the scores are reported unlabelled.

    Examples
    --------
    >>> import numpy as np
    >>> def q_norm(model, tokens):  # mean query norm per head, per sequence
    ...     res = model.run(tokens, reads=[("q", l) for l in range(model.info.n_layers)], logits=False)
    ...     return np.stack([res[("q", l)].norm(dim=-1).mean(1).numpy() for l in range(model.info.n_layers)], 1)
    >>> det = function_detector("q_norm", q_norm, description="mean query norm")
    >>> det.target is None
    True
    """
    if not callable(fn):
        raise bad_value("fn", fn, "a function (adapter, tokens) -> [n, layer, head]")
    if null is not None and not callable(null):
        raise bad_value("null", null, "a function (adapter, tokens, scores) -> expected null score, or None")
    return Detector(name=name, description=description, score=fn, sequences=sequences, null=null,
                    null_description=null_description, min_effect=min_effect)


PREVIOUS_TOKEN = pattern_detector(
    "previous_token", previous_token_target,
    description="mean attention from position i to i-1 (Olsson et al. 2022, previous-token evaluator)")
INDUCTION = pattern_detector(
    "induction", induction_target,
    description="mean attention from a repeated token to the token that followed its earlier occurrences "
                "(Olsson et al. 2022, prefix-matching evaluator); clean induction heads score near 1")
DUPLICATE_TOKEN = pattern_detector(
    "duplicate_token", duplicate_token_target,
    description="mean attention from a repeated token to its earlier occurrences (Olsson et al. 2022)")
