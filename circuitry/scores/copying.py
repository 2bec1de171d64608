"""Copying scores: does a head raise the logit of the token it attends to?

Two views (the definitions in ``docs/api/scores.md``):

* :func:`copying_per_sample` / the ``copying`` detector, Olsson et al. (2022)'s activation-based
  copying evaluator, implemented as follows. On sequences of uniform random tokens (BOS first), for
  every head and every query position ``q >= 1``:

  1. the head's **direct-path** contribution to the logits, ``d = LN(head_out[q]) @ W_U``, where
     ``head_out[q] = z[q] @ W_O`` is the head's write to the residual stream (no bias), ``LN`` is the
     final norm's linear part (centering for LayerNorm; its scale ``gamma`` is folded into ``W_U``;
     the division by the per-position norm is left out because the share below does not depend on a
     positive per-position factor);
  2. subtract the mean over the vocabulary and apply ReLU: ``r = relu(d - mean(d))``;
  3. the share of that raise that goes to the **attended token**, the token at the key position the
     head attends to most (``argmax_k A[q, k]``): ``r[tokens[k*]] / sum(r)`` (0 if ``sum(r) == 0``).

  A sequence's score is the mean share over its query positions. A perfect copying head scores 1, a
  head that raises the vocabulary uniformly ``1 / d_vocab`` or less.

* :func:`ov_eigenvalue_positivity`: the weight-based view of Elhage et al. (2021): eigenvalues
  ``lambda`` of the full OV circuit ``W_E W_OV W_U`` (row convention; the column-convention
  ``W_U W_OV W_E`` is its transpose, same eigenvalues), ``sum(lambda) / sum(|lambda|)`` in ``[-1, 1]``.
  Computed **without** the ``d_vocab x d_vocab`` matrix: the non-zero eigenvalues of ``A B`` and
  ``B A`` coincide, so we take the eigenvalues of the ``d_model x d_model`` product
  ``W_OV (W_U W_E)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from circuitry.provenance import NamedArray, make_provenance
from circuitry.scores.detectors import SequenceRecipe, check_tokens, function_detector
from circuitry.scores.results import HeadScores

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter


def copying_per_sample(model: "ModelAdapter", tokens: torch.Tensor, *, sign: int = 1) -> np.ndarray:
    """Olsson copying score of every head on every sequence: ``[n, layer, head]`` (module docstring).

    ``sign=-1`` scores *negative* copying instead (McDougall et al. 2023, copy suppression): the share of
    the head's direct-path logit *decrease* ``relu(mean(d) - d)`` that falls on the attended token.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import repeated_tokens
    >>> m = load_model("zoo:attn-only-2l")
    >>> toks = repeated_tokens(2, block_len=40, repeats=1, vocab_size=m.info.d_vocab, bos=0, seed=0)
    >>> copying_per_sample(m, toks).shape == (2, m.info.n_layers, m.info.n_heads)
    True
    """
    tokens = check_tokens(model, tokens)
    info = model.info
    W_U = model.weights(fold_ln=True).W_U.to(torch.float64)  # [d, V]
    reads = [(s, layer) for layer in range(info.n_layers) for s in ("head_out", "pattern")]
    out = np.empty((tokens.shape[0], info.n_layers, info.n_heads))
    for i in range(tokens.shape[0]):
        seq = tokens[i: i + 1]
        res = model.run(seq, reads=reads, logits=False)
        for layer in range(info.n_layers):
            ho = res[("head_out", layer)][0, 1:].detach().to(torch.float64).cpu()  # [q, h, d]
            if info.normalization == "layernorm":
                ho = ho - ho.mean(-1, keepdim=True)
            A = res[("pattern", layer)][0, :, 1:].detach().cpu()  # [h, q, k]
            attended = seq[0][A.argmax(-1)]  # [h, q] token ids
            d = sign * (ho @ W_U)  # [q, h, V]
            r = torch.relu(d - d.mean(-1, keepdim=True))
            total = r.sum(-1)  # [q, h]
            hit = r.gather(-1, attended.T[..., None]).squeeze(-1)  # [q, h]
            share = torch.where(total > 0, hit / total.clamp_min(1e-300), torch.zeros_like(total))
            out[i, layer] = share.mean(0).numpy()
    return out


def _random_tokens(model: "ModelAdapter", recipe: SequenceRecipe) -> torch.Tensor:
    return recipe.tokens(model, repeats=1, block_len=recipe.block_len * recipe.repeats)


def _uniform_share(model: "ModelAdapter", tokens: torch.Tensor, scores: np.ndarray) -> float:
    return 1.0 / model.info.d_vocab


UNIFORM_SHARE = ("1 / d_vocab: the mean share over all tokens, i.e. what the attended token gets when the head's "
                 "logit change is unrelated to it")

COPYING = function_detector(
    "copying", copying_per_sample, sequences=_random_tokens, null=_uniform_share, null_description=UNIFORM_SHARE,
    description="share of the head's direct-path logit raise (mean-subtracted, ReLU) that goes to the "
                "token it attends to most, on random tokens (Olsson et al. 2022 copying evaluator)")
NEGATIVE_COPYING = function_detector(
    "negative_copying", lambda model, tokens: copying_per_sample(model, tokens, sign=-1), sequences=_random_tokens,
    null=_uniform_share, null_description=UNIFORM_SHARE,
    description="share of the head's direct-path logit decrease (ReLU of mean minus logit) that falls on the token "
                "it attends to most, on random tokens: a negative / copy-suppression head (McDougall et al. 2023)")


@torch.no_grad()
def ov_eigenvalue_positivity(model: "ModelAdapter") -> HeadScores:
    """OV-circuit eigenvalue positivity ``sum(lambda) / sum(|lambda|)`` of every head.

    Elhage et al. (2021) call a head *copying* when this is close to 1 (10 of 12 heads of their
    1-layer model). ``lambda`` are the eigenvalues of ``W_E W_OV W_U`` (``W_OV = W_V W_O``, LN scales
    folded in, biases ignored), obtained from the ``d_model x d_model`` matrix ``W_OV (W_U W_E)`` in
    float64; zero eigenvalues do not change the ratio.

    Returns
    -------
    HeadScores
        ``values [layer, head]`` in ``[-1, 1]``; weight-based, so no samples and no interval.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> pos = ov_eigenvalue_positivity(load_model("zoo:attn-only-2l"))
    >>> bool(((pos.numpy() >= -1) & (pos.numpy() <= 1)).all())
    True
    """
    w = model.weights(fold_ln=True)
    UE = w.W_U.to(torch.float64) @ w.W_E.to(torch.float64)  # [d, d]
    M = w.W_OV.to(torch.float64) @ UE  # [L, H, d, d]
    lam = torch.linalg.eigvals(M)  # complex [L, H, d]
    vals = (lam.sum(-1).real / lam.abs().sum(-1).clamp_min(1e-300)).numpy()
    return HeadScores(
        name="ov_positivity",
        description="sum(lambda)/sum(|lambda|) of the OV circuit W_E W_OV W_U (Elhage et al. 2021); "
                    "near 1 = copying, near -1 = anti-copying",
        values=NamedArray.from_array(vals, ("layer", "head")),
        recipe={"method": "eigenvalues of W_OV (W_U W_E), d_model x d_model, float64", "fold_ln": True},
        provenance=make_provenance(model, seed=None))
