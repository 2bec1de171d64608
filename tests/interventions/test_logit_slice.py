"""Only the logits a metric reads are computed; the numbers equal those of the full unembedding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitry.interventions import activation_patch, path_patch
from circuitry.interventions.batching import logit_slice
from circuitry.metrics import METRICS, Targets
from circuitry.models import load_model
from circuitry.models.adapter import LogitSlice
from circuitry.prompts import induction_pairs


@pytest.fixture(scope="module")
def setup():
    model = load_model("zoo:attn-only-2l")
    return model, induction_pairs(6, block_len=6, vocab_size=model.info.d_vocab, bos=0, seed=5)


@pytest.mark.parametrize("name", ["logit_diff", "answer_prob", "loss", "kl"])
def test_sliced_logits_give_the_metric_of_the_full_logits(setup, name):
    model, data = setup
    full = model.run(data.corrupted_ids()).logits
    t = Targets.of(data, metric=name, clean_logits=model.run(data.clean_ids()).logits)
    cut, t2 = logit_slice(METRICS[name], t)
    sub = model.run(data.corrupted_ids(), logits_at=cut).logits
    k = len(torch.unique(t.positions))
    assert k < data.seq_len and sub.shape[:2] == (len(data), k)  # fewer positions than the prompts have
    if name == "logit_diff":  # only the answer and foil columns
        assert sub.shape[-1] == len(torch.unique(torch.cat([t.answers.flatten(), t.foils.flatten()])))
        assert sub.shape[-1] < model.info.d_vocab
    else:
        assert sub.shape[-1] == model.info.d_vocab
    np.testing.assert_allclose(METRICS[name](sub, t2).numpy(), METRICS[name](full, t).numpy(), atol=1e-5, rtol=0)


def test_a_user_metric_sees_the_full_logits(setup):
    model, data = setup
    seen = []

    def last_logit_mean(logits, t):
        seen.append(logits.shape)
        return logits[:, -1].mean(-1)

    t = Targets.of(data)
    cut, same = logit_slice(last_logit_mean, t)
    assert cut is None and same is t
    activation_patch(model, data, site="z", metric=last_logit_mean, progress=False)
    assert all(s[1:] == (data.seq_len, model.info.d_vocab) for s in seen)


def test_patching_with_a_builtin_metric_equals_the_same_metric_on_full_logits(setup):
    model, data = setup
    from circuitry.metrics import logit_diff

    def full_logit_diff(logits, t):  # the same metric, but a user callable: no slicing
        return logit_diff(logits, t)

    a = activation_patch(model, data, site="z", metric="logit_diff", direction="noising", progress=False)
    b = activation_patch(model, data, site="z", metric=full_logit_diff, direction="noising", progress=False)
    np.testing.assert_allclose(a.per_prompt.numpy(), b.per_prompt.numpy(), atol=1e-5, rtol=0)
    pa = path_patch(model, data, metric="logit_diff", progress=False)
    pb = path_patch(model, data, metric=full_logit_diff, progress=False, max_rows=len(data))
    np.testing.assert_allclose(pa.per_prompt.numpy(), pb.per_prompt.numpy(), atol=1e-5, rtol=0)
    assert np.ptp(pa.metric_mean) > 0.1


def test_logit_slice_of_positions_only(setup):
    model, data = setup
    pos = torch.tensor([2, 4])
    sub = model.run(data.clean_ids(), logits_at=LogitSlice(pos)).logits
    np.testing.assert_allclose(sub.numpy(), model.run(data.clean_ids()).logits[:, pos].numpy(), atol=1e-5, rtol=0)


def test_the_row_budget_counts_only_the_logits_computed():
    """With a large vocabulary the logits are most of a row's memory: a pass that computes two columns at a
    few positions fits more rows in the same budget (and the CPU cap still holds)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from circuitry.interventions.batching import CPU_MAX_ROWS, rows_per_pass

    model = load_model(GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50257, n_positions=64)),
                       bos="none")
    full = rows_per_pass(model, 40)
    cut = LogitSlice(torch.tensor([38, 39]), torch.tensor([5, 9]))
    assert full == 512 * 2**20 // ((40 * (64 + 2 * 40 + 64) + 40 * 50257) * 12)  # 21 rows: the logits dominate
    assert rows_per_pass(model, 40, logits=cut) == CPU_MAX_ROWS > full
    one_position = LogitSlice(torch.tensor([39]))  # every column at one position, under a small budget
    assert rows_per_pass(model, 40, memory_mb=8, logits=one_position) == 8 * 2**20 // (
        (40 * (64 + 2 * 40 + 64) + 50257) * 12)
