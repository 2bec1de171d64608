"""Q-, K- and V-composition scores between heads, with a simulated random-matrix baseline.

Elhage et al. (2021), "A Mathematical Framework for Transformer Circuits" (see ``docs/api/scores.md``,
"Composition scores"). The paper writes column vectors: ``W_QK = W_Q^T W_K``, ``W_OV = W_O W_V`` and

* Q: ``||W_QK(h2)^T W_OV(h1)||_F / (||W_QK(h2)^T||_F ||W_OV(h1)||_F)``
* K: ``||W_QK(h2)   W_OV(h1)||_F / (||W_QK(h2)||_F   ||W_OV(h1)||_F)``
* V: ``||W_OV(h2)   W_OV(h1)||_F / (||W_OV(h2)||_F   ||W_OV(h1)||_F)``

for ``h1`` in an earlier layer than ``h2``. **circuitry uses row vectors** (``x @ W``;
:mod:`circuitry.models.weights`): ``W_QK = W_Q W_K^T`` (``score = x_q W_QK x_k^T``) and
``W_OV = W_V W_O`` (a head writes ``x W_OV``). Derivation in the row convention, with ``y`` the
residual row that ``h1`` reads and ``y W_OV(h1)`` what it writes:

* K: ``h2``'s key input is ``x_k = y W_OV(h1)``, so ``score = x_q W_QK(h2) W_OV(h1)^T y^T``: the
  matrix is ``W_QK(h2) W_OV(h1)^T``;
* Q: the query input is ``x_q = y W_OV(h1)``, ``score = y W_OV(h1) W_QK(h2) x_k^T``: ``W_OV(h1) W_QK(h2)``;
* V: ``h2`` writes ``y W_OV(h1) W_OV(h2)``: ``W_OV(h1) W_OV(h2)``.

These are the transposes of the paper's matrices (Frobenius norms unchanged), and they agree with
TransformerLens's ``all_composition_scores`` (``OV @ QK`` for Q, ``OV @ QK^T`` for K). Swapping the
convention would silently exchange Q and K; ``tests/scores/test_composition.py`` guards it with a
hand-built model whose layer-0 head is read only as keys.

Weights: LayerNorm scales folded in (``fold_ln=True``), biases ignored, the norm's division treated as
a per-token scalar (as the paper). Positional schemes: with ``shortformer`` positions (added to query
and key inputs only) and ``absolute`` positions the QK circuit is a fixed bilinear form, so the scores
mean what the paper says; for **rotary** models circuitry uses the unrotated ``W_Q``/``W_K``, i.e. the
QK circuit at relative position 0.

Baseline: the paper subtracts the expected score of random matrices of the same shapes. circuitry
simulates it: ``n_draws`` pairs of heads whose factors ``W_Q, W_K, W_V: [d_model, d_head]`` and
``W_O: [d_head, d_model]`` are i.i.d. standard Gaussian (the score is invariant to each factor's
scale), scored with the same formula; it reports the mean (subtracted) and the standard deviation.
For isotropic factors the mean is close to ``1/sqrt(d_model)``.

Norms are computed from ``d_head x d_head`` Gram matrices in float64 (``||A C B^T||_F^2 =
tr(C^T A^T A C B^T B)``), never forming a ``d_model x d_model`` product per pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from circuitry.errors import bad_value
from circuitry.provenance import NamedArray, make_provenance
from circuitry.scores.results import CompositionKind, CompositionScores

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter

KINDS: tuple[CompositionKind, ...] = ("Q", "K", "V")
CONVENTIONS = {
    "Q": "||W_OV(h1) W_QK(h2)||_F / (||W_OV(h1)||_F ||W_QK(h2)||_F), row vectors: W_OV = W_V W_O, W_QK = W_Q W_K^T",
    "K": "||W_QK(h2) W_OV(h1)^T||_F / (||W_QK(h2)||_F ||W_OV(h1)||_F), row vectors: W_OV = W_V W_O, W_QK = W_Q W_K^T",
    "V": "||W_OV(h1) W_OV(h2)||_F / (||W_OV(h1)||_F ||W_OV(h2)||_F), row vectors: W_OV = W_V W_O",
}
BASELINE_DISTRIBUTION = ("i.i.d. standard Gaussian factors W_Q, W_K, W_V [d_model, d_head] and W_O "
                         "[d_head, d_model] for both heads of each simulated pair")


def _gram(A: torch.Tensor) -> torch.Tensor:
    """``A^T A`` over the ``d_model`` axis: ``[..., d_model, d_head] -> [..., d_head, d_head]``."""
    return A.transpose(-1, -2) @ A


def _frob(GA: torch.Tensor, C: torch.Tensor, GB: torch.Tensor) -> torch.Tensor:
    """``||A C B^T||_F`` from ``GA = A^T A``, ``GB = B^T B``: ``sqrt(sum((GA C) * (C GB)))``."""
    return ((GA @ C) * (C @ GB)).sum((-1, -2)).clamp_min(0).sqrt()


def _scores(kind: str, Q1, K1, V1, O1, Q2, K2, V2, O2) -> torch.Tensor:
    """Composition of writer heads (``*1``) into reader heads (``*2``); inputs broadcast.

    ``Q, K, V: [..., d_model, d_head]``, ``O: [..., d_head, d_model]``.
    """
    Ot1, Ot2 = O1.transpose(-1, -2), O2.transpose(-1, -2)  # [.., d_model, d_head]
    gQ2, gK2, gV1, gO1, gV2, gO2 = (_gram(t) for t in (Q2, K2, V1, Ot1, V2, Ot2))
    eye = torch.eye(Q2.shape[-1], dtype=Q2.dtype)
    ov1 = _frob(gV1, eye, gO1)  # ||W_V1 W_O1||
    if kind == "V":
        num = _frob(gV1, O1 @ V2, gO2)  # ||W_V1 (W_O1 W_V2) W_O2||
        den = ov1 * _frob(gV2, eye, gO2)
    else:
        qk2 = _frob(gQ2, eye, gK2)  # ||W_Q2 W_K2^T||
        if kind == "K":  # ||W_Q2 (W_K2^T W_O1^T) W_V1^T||
            num = _frob(gQ2, K2.transpose(-1, -2) @ Ot1, gV1)
        else:  # Q: ||W_V1 (W_O1 W_Q2) W_K2^T||
            num = _frob(gV1, O1 @ Q2, gK2)
        den = ov1 * qk2
    return num / den


def random_baseline(d_model: int, d_head: int, *, kind: CompositionKind, n_draws: int = 1000,
                    seed: int = 0) -> tuple[float, float, np.ndarray]:
    """Simulated composition score of random heads of the given shapes.

    Returns ``(mean, std, draws)`` over ``n_draws`` pairs with i.i.d. standard Gaussian factors.

    Examples
    --------
    >>> mean, std, _ = random_baseline(64, 16, kind="K", n_draws=500)
    >>> 0.10 < mean < 0.15   # about 1/sqrt(64)
    True
    """
    if kind not in KINDS:
        raise bad_value("kind", kind, "one of 'Q', 'K', 'V'")
    if n_draws < 2:
        raise bad_value("n_baseline", n_draws, "an integer >= 2")
    g = torch.Generator().manual_seed(seed)
    draws = []
    for start in range(0, n_draws, 256):
        b = min(256, n_draws - start)
        f = [torch.randn(b, d_model, d_head, generator=g, dtype=torch.float64) for _ in range(6)]
        o = [torch.randn(b, d_head, d_model, generator=g, dtype=torch.float64) for _ in range(2)]
        draws.append(_scores(kind, f[0], f[1], f[2], o[0], f[3], f[4], f[5], o[1]))
    arr = torch.cat(draws).numpy()
    return float(arr.mean()), float(arr.std(ddof=1)), arr


def composition_scores(model: "ModelAdapter", *, kind: CompositionKind, n_baseline: int = 1000,
                       seed: int = 0) -> CompositionScores:
    """``kind``-composition scores for every pair (earlier head -> later head) of ``model``.

    Parameters
    ----------
    model
        A loaded model; its per-head weights come from ``model.weights(fold_ln=True)``.
    kind
        ``"Q"``, ``"K"`` or ``"V"``: which input of the later head reads the earlier head's output.
    n_baseline
        Number of simulated random head pairs for the baseline.
    seed
        Seed of the baseline simulation.

    Returns
    -------
    CompositionScores
        ``raw[src_layer, src_head, dst_layer, dst_head]`` (missing where ``src_layer >= dst_layer``),
        ``baseline_mean``/``baseline_std`` and ``subtracted = raw - baseline_mean``.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> m = load_model("zoo:attn-only-2l")
    >>> k = composition_scores(m, kind="K", n_baseline=200)
    >>> src, dst, raw, above = k.pairs(1)[0]
    >>> src.startswith("L0") and dst.startswith("L1") and raw > k.baseline_mean
    True
    """
    if kind not in KINDS:
        raise bad_value("kind", kind, "one of 'Q', 'K', 'V'")
    if isinstance(n_baseline, bool) or not isinstance(n_baseline, int) or n_baseline < 2:
        raise bad_value("n_baseline", n_baseline, "an integer >= 2")
    w = model.weights(fold_ln=True)
    Q, K, V, O = (t.detach().to(torch.float64).cpu() for t in (w.W_Q, w.W_K, w.W_V, w.W_O))
    L, H = Q.shape[:2]
    raw = torch.full((L, H, L, H), float("nan"), dtype=torch.float64)
    for l1 in range(L - 1):
        for l2 in range(l1 + 1, L):
            s = [t[l1][:, None] for t in (Q, K, V, O)] + [t[l2][None, :] for t in (Q, K, V, O)]
            raw[l1, :, l2, :] = _scores(kind, *s)  # [H1, H2]
    mean, std, _ = random_baseline(model.info.d_model, model.info.d_head, kind=kind, n_draws=n_baseline, seed=seed)
    axes = ("src_layer", "src_head", "dst_layer", "dst_head")
    return CompositionScores(
        kind=kind, raw=NamedArray.from_array(raw, axes), subtracted=NamedArray.from_array(raw - mean, axes),
        baseline_mean=mean, baseline_std=std, baseline_n_draws=n_baseline,
        baseline_distribution=BASELINE_DISTRIBUTION, convention=CONVENTIONS[kind],
        provenance=make_provenance(model, seed=seed, kind=kind, fold_ln=True))


def all_composition_scores(model: "ModelAdapter", *, n_baseline: int = 1000,
                           seed: int = 0) -> dict[str, CompositionScores]:
    """Q, K and V composition scores (:func:`composition_scores`), keyed ``"Q"``, ``"K"``, ``"V"``."""
    return {k: composition_scores(model, kind=k, n_baseline=n_baseline, seed=seed) for k in KINDS}

