"""Cross-checks against TransformerLens (the ``dev`` extra) on the same weights.

One tiny random GPT-2 is built offline and handed, as deep copies, both to circuitry
(:func:`circuitry.models.load_model`) and to TransformerLens 4.3's ``TransformerBridge``. Every test
starts with ``pytest.importorskip("transformer_lens")`` so the module skips cleanly without the extra.

* Activation patching: circuitry's denoising sweep over heads (``z`` and ``head_out``, all positions)
  against ``transformer_lens.patching.get_act_patch_attn_head_out_all_pos`` on the bridge with raw HF
  numerics (no compatibility mode), metric = logit difference on the pairs' targets, written here
  independently of :mod:`circuitry.metrics`.
* Composition scores: circuitry's raw Q/K/V scores against ``TransformerBridge.all_composition_scores``
  after TransformerLens folds the LayerNorm scales (``process_weights(fold_ln=True)``, no centering of
  writing weights), so the checks cover the folding and which of Q and K is which. Both libraries'
  ``fold_ln`` also fold LayerNorm's (linear) centering into the reading weights; a generic-LayerNorm
  model checks that.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from circuitry.interventions import activation_patch
from circuitry.models import load_model
from circuitry.prompts import induction_pairs
from circuitry.scores import composition_scores

pytestmark = pytest.mark.dev

VOCAB = 50


@pytest.fixture(scope="module")
def gpt2() -> GPT2LMHeadModel:
    """A 2-layer, 4-head GPT-2 with all weights ~ N(0, 1): large logits, non-trivial LayerNorm scales."""
    torch.manual_seed(0)
    m = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=VOCAB, n_positions=32,
                                   bos_token_id=0, eos_token_id=0))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 1.0)
    return m.eval()


def _tokenizer(tmp_path):
    """An offline word-level tokenizer over ``t0 .. t49``, saved and reloaded from ``tmp_path``: the
    bridge re-creates the tokenizer from its ``name_or_path`` to switch on ``add_bos_token``."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(VOCAB)}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t1")),
                                  bos_token="t0", eos_token="t0", unk_token="t1", pad_token="t0")
    tok.save_pretrained(tmp_path)
    return PreTrainedTokenizerFast.from_pretrained(tmp_path)


def _bridge(hf_model, tmp_path):
    """A ``TransformerBridge`` over a deep copy of ``hf_model`` (raw HF weights and numerics)."""
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge.boot_transformers("gpt2", hf_model=copy.deepcopy(hf_model),
                                               tokenizer=_tokenizer(tmp_path), device="cpu")


def _tl_logit_diff(positions: torch.Tensor, answers: torch.Tensor, foils: torch.Tensor):
    """TransformerLens-style metric ``logits [n, pos, vocab] -> [n]``: mean over the target positions
    of ``logit[answer] - logit[foil]`` (circuitry's ``logit_diff``, re-derived by plain indexing)."""
    rows = torch.arange(positions.shape[0])[:, None]

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return (logits[rows, positions, answers] - logits[rows, positions, foils]).mean(-1)

    return metric


@pytest.mark.parametrize("site", ["z", "head_out"])
def test_denoising_head_patching_matches_transformer_lens(site, gpt2, tmp_path):
    pytest.importorskip("transformer_lens")
    from transformer_lens.patching import get_act_patch_attn_head_out_all_pos

    data = induction_pairs(6, block_len=6, vocab_size=VOCAB, bos=0, seed=3)
    ours = activation_patch(load_model(copy.deepcopy(gpt2)), data, site=site, direction="denoising",
                            metric="logit_diff", progress=False)

    bridge = _bridge(gpt2, tmp_path)
    clean_ids, corr_ids = data.clean_ids(), data.corrupted_ids()
    metric = _tl_logit_diff(*data.targets())
    with torch.no_grad():
        clean_logits, clean_cache = bridge.run_with_cache(clean_ids)
        theirs = get_act_patch_attn_head_out_all_pos(bridge, corr_ids, clean_cache, metric, reduce="none",
                                                     baseline=True)
        clean_metric = metric(clean_logits)
    tl_per_prompt = theirs.values.numpy()  # [layer, head, prompt]
    tl_mean = tl_per_prompt.mean(-1)

    # the two runs see the same model and the same metric: baselines agree
    np.testing.assert_allclose(ours.clean, clean_metric.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(ours.corrupted, theirs.baseline.numpy(), atol=1e-4, rtol=0)
    # the sweep agrees head by head, on the mean and on every prompt
    assert ours.metric_mean.axes == ("layer", "head") and tl_mean.shape == (2, 4)
    np.testing.assert_allclose(ours.metric_mean.numpy(), tl_mean, atol=1e-4, rtol=0)
    np.testing.assert_allclose(ours.per_prompt.numpy(), tl_per_prompt, atol=1e-4, rtol=0)
    # and the comparison is not vacuous: patching moves the metric by far more than the tolerance
    assert np.ptp(tl_mean) > 0.1
    assert abs(ours.clean_mean - ours.corrupted_mean) > 0.1


def _center_folded_readers(hf_model: GPT2LMHeadModel) -> GPT2LMHeadModel:
    """A copy of ``hf_model`` whose ln1-folded reading weights ``diag(gamma) W_Q/K/V`` have zero mean
    over ``d_model``, with the LayerNorm scales ``gamma`` left non-trivial.

    TransformerLens's ``fold_ln`` always centers the folded reading weights as well (the LayerNorm
    output is mean-zero, so the forward pass is unchanged); circuitry's ``fold_ln`` does not. On this
    model the centering is a no-op, so both libraries see the same folded weights."""
    m = copy.deepcopy(hf_model)
    with torch.no_grad():
        for block in m.transformer.h:
            g, W = block.ln_1.weight, block.attn.c_attn.weight  # Conv1D: [d_model, 3 * d_model]
            W -= torch.outer(g, g @ W) / (g @ g)  # now g @ W = 0: every column of diag(g) W sums to 0
    return m


def _tl_composition(bridge, kind: str) -> np.ndarray:
    """TransformerLens's ``kind``-composition scores ``[L1, H1, L2, H2]`` (zero unless ``L1 < L2``)."""
    with torch.no_grad():
        return bridge.all_composition_scores(kind).scores.double().numpy()  # [L1, H1, L2, H2]


def _earlier(L: int, H: int) -> np.ndarray:
    """Mask of the (src_layer, src_head, dst_layer, dst_head) pairs with src_layer < dst_layer."""
    lay = np.arange(L)
    return np.broadcast_to((lay[:, None] < lay[None, :])[:, None, :, None], (L, H, L, H))


@pytest.mark.parametrize("kind", ["Q", "K", "V"])
def test_composition_scores_match_transformer_lens(kind, gpt2, tmp_path):
    pytest.importorskip("transformer_lens")
    model = _center_folded_readers(gpt2)
    assert (model.transformer.h[0].ln_1.weight - 1).abs().max() > 0.5  # the scales fold non-trivially

    ours = composition_scores(load_model(copy.deepcopy(model)), kind=kind, n_baseline=10).raw.numpy()

    bridge = _bridge(model, tmp_path)
    # circuitry folds the ln1 scale into W_Q/W_K/W_V and does not center W_O: the same processing here
    bridge.process_weights(fold_ln=True, center_writing_weights=False, center_unembed=False,
                           fold_value_biases=False)
    theirs = _tl_composition(bridge, kind)

    earlier = _earlier(*theirs.shape[:2])
    assert np.isnan(ours[~earlier]).all() and (theirs[~earlier] == 0).all()  # only earlier -> later
    np.testing.assert_allclose(ours[earlier], theirs[earlier], atol=1e-5, rtol=0)
    # the comparison tells Q from K and folded from unfolded scales
    if kind in "QK":
        swapped = _tl_composition(bridge, "K" if kind == "Q" else "Q")
        assert np.abs(ours[earlier] - swapped[earlier]).max() > 1e-2
    raw_bridge = _bridge(model, tmp_path / "raw")
    assert np.abs(_tl_composition(raw_bridge, kind)[earlier] - ours[earlier]).max() > 1e-2


@pytest.mark.parametrize("kind", ["Q", "K", "V"])
def test_composition_scores_generic_layernorm(kind, gpt2, tmp_path):
    pytest.importorskip("transformer_lens")
    ours = composition_scores(load_model(copy.deepcopy(gpt2)), kind=kind, n_baseline=10).raw.numpy()
    bridge = _bridge(gpt2, tmp_path)
    bridge.process_weights(fold_ln=True, center_writing_weights=False, center_unembed=False,
                           fold_value_biases=False)
    theirs = _tl_composition(bridge, kind)
    earlier = _earlier(*theirs.shape[:2])
    np.testing.assert_allclose(ours[earlier], theirs[earlier], atol=1e-5, rtol=0)
