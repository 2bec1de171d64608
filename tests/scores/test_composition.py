"""Composition scores: plain-torch reference, the Q/K convention, random baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from circuitry.errors import InputError
from circuitry.models import load_model
from circuitry.scores import CompositionScores, composition_scores, random_baseline
from circuitry.zoo.arch import ZooConfig, ZooTransformer


def _reference(module: ZooTransformer, kind: str) -> np.ndarray:
    """Independent computation from the raw nn.Linear weights with explicit d_model x d_model products."""
    cfg = module.cfg
    H, dh = cfg.n_heads, cfg.d_head
    heads = []
    for block in module.blocks:
        g = block.ln1.weight.detach().double()[:, None]  # fold the ln1 scale into the readers
        a = block.attn
        WQ, WK, WV = (g * m.weight.detach().double().T for m in (a.q_proj, a.k_proj, a.v_proj))
        # LayerNorm's centering is linear: readers ignore the all-ones direction of the residual stream
        WQ, WK, WV = (w - w.mean(0, keepdim=True) for w in (WQ, WK, WV))
        WO = a.o_proj.weight.detach().double().T  # [H*dh, d]
        heads.append([(WQ[:, i * dh:(i + 1) * dh] @ WK[:, i * dh:(i + 1) * dh].T,
                       WV[:, i * dh:(i + 1) * dh] @ WO[i * dh:(i + 1) * dh]) for i in range(H)])
    L = cfg.n_layers
    out = np.full((L, H, L, H), np.nan)
    fro = torch.linalg.matrix_norm
    for l1 in range(L):
        for l2 in range(l1 + 1, L):
            for h1 in range(H):
                for h2 in range(H):
                    _, ov1 = heads[l1][h1]
                    qk2, ov2 = heads[l2][h2]
                    if kind == "Q":  # query input of h2 = x W_OV(h1): x W_OV1 W_QK2 x_k^T
                        num, den = fro(ov1 @ qk2), fro(ov1) * fro(qk2)
                    elif kind == "K":  # key input: x_q W_QK2 (x W_OV1)^T
                        num, den = fro(qk2 @ ov1.T), fro(qk2) * fro(ov1)
                    else:
                        num, den = fro(ov1 @ ov2), fro(ov1) * fro(ov2)
                    out[l1, h1, l2, h2] = float(num / den)
    return out


@pytest.mark.parametrize("kind", ["Q", "K", "V"])
def test_matches_plain_torch_reference(kind, make_zoo):
    module = make_zoo(3, n_layers=3, n_heads=4, d_model=32, d_head=8)
    with torch.no_grad():  # non-trivial LayerNorm scales, so folding matters
        for block in module.blocks:
            block.ln1.weight.uniform_(0.5, 1.5)
    got = composition_scores(load_model(module), kind=kind, n_baseline=50).numpy()
    ref = _reference(module, kind)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.nanmax(np.abs(got - ref)) < 1e-5
    assert np.isnan(got[1, :, 0, :]).all() and np.isnan(got[1, :, 1, :]).all()  # only earlier -> later


def _key_reader_model() -> ZooTransformer:
    """L0H0 copies subspace A (dims 0-3) into subspace B (dims 4-7); L1H0 reads B only as keys,
    A as queries, and its values from dims 8-11. So K-composition is large, Q and V are exactly 0."""
    cfg = ZooConfig(n_layers=2, n_heads=1, d_model=16, d_head=4, d_vocab=16, n_ctx=8, normalization="none")
    m = ZooTransformer(cfg)
    eye = torch.eye(4)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        a0, a1 = m.blocks[0].attn, m.blocks[1].attn
        # nn.Linear stores [out, in]; row convention W = weight.T
        a0.v_proj.weight[:, 0:4] = eye          # v = x[0:4]
        a0.o_proj.weight[4:8, :] = eye          # writes into dims 4-7
        a0.q_proj.weight[:, 0:4] = eye
        a0.k_proj.weight[:, 0:4] = eye
        a1.q_proj.weight[:, 0:4] = eye          # queries read A
        a1.k_proj.weight[:, 4:8] = eye          # keys read B (what L0H0 wrote)
        a1.v_proj.weight[:, 8:12] = eye
        a1.o_proj.weight[12:16, :] = eye
    return m


def test_k_and_q_are_not_swapped():
    model = load_model(_key_reader_model())
    k = composition_scores(model, kind="K", n_baseline=20).score("L0H0", "L1H0")
    q = composition_scores(model, kind="Q", n_baseline=20).score("L0H0", "L1H0")
    v = composition_scores(model, kind="V", n_baseline=20).score("L0H0", "L1H0")
    assert k == pytest.approx(0.5, abs=1e-9)  # ||I_4||_F / (||I_4||_F ||I_4||_F) = 2 / (2 * 2)
    assert q == 0.0 and v == 0.0


def test_random_init_model_sits_at_baseline(rand_model):
    for kind in "QKV":
        c = composition_scores(rand_model, kind=kind, n_baseline=400)
        raw = c.numpy()[np.isfinite(c.numpy())]
        assert raw.size == 64
        assert np.all(np.abs(raw - c.baseline_mean) < 5 * c.baseline_std)
        assert abs(raw.mean() - c.baseline_mean) < c.baseline_std
        assert c.baseline_mean == pytest.approx(1 / math.sqrt(64), abs=0.01)


@pytest.mark.parametrize("d_model,expected", [(64, 0.126), (128, 0.088), (256, 0.063), (512, 0.044)])
def test_baseline_matches_references(d_model, expected):
    mean, std, draws = random_baseline(d_model, 16, kind="K", n_draws=300, seed=1)
    assert mean == pytest.approx(expected, abs=0.004)
    assert 0 < std < mean / 4 and draws.shape == (300,)


def test_json_round_trip_and_validation(rand_model, tmp_path):
    c = composition_scores(rand_model, kind="V", n_baseline=50)
    back = CompositionScores.model_validate_json(c.model_dump_json())
    assert back == c
    assert json.loads(c.model_dump_json())["raw"]["values"][0] is None  # L0 -> L0 is not a pair
    np.testing.assert_allclose(np.nan_to_num(c.numpy(which="subtracted")), np.nan_to_num(c.numpy() - c.baseline_mean))
    assert c.heatmap(tmp_path / "v.png").stat().st_size > 1000
    with pytest.raises(InputError, match="kind='X'"):
        composition_scores(rand_model, kind="X")
    with pytest.raises(InputError, match="n_baseline"):
        composition_scores(rand_model, kind="K", n_baseline=1)


@pytest.mark.dev
def test_matches_transformer_lens(rand_model):
    """TransformerLens 4.x's own composition code (``utilities.matrix.composition_scores`` on
    ``FactoredMatrix`` es, built exactly as ``TransformerBridge.all_composition_scores`` builds them:
    left = OV, right = QK for Q, QK^T for K, OV for V) on the same weights."""
    pytest.importorskip("transformer_lens")
    from transformer_lens.FactoredMatrix import FactoredMatrix
    from transformer_lens.utilities.matrix import composition_scores as tl_scores

    w = rand_model.weights(fold_ln=True)
    Q, K, V, O = (t.double() for t in (w.W_Q, w.W_K, w.W_V, w.W_O))
    left = FactoredMatrix(V, O)
    rights = {"Q": FactoredMatrix(Q, K.transpose(-2, -1)), "K": FactoredMatrix(Q, K.transpose(-2, -1)).T,
              "V": FactoredMatrix(V, O)}
    for kind, right in rights.items():
        ref = tl_scores(left, right, broadcast_dims=True).numpy()  # [l1, h1, l2, h2]
        got = composition_scores(rand_model, kind=kind, n_baseline=10).numpy()
        mask = np.isfinite(got)
        assert mask.sum() == 64
        assert np.abs(got[mask] - ref[mask]).max() < 1e-5
