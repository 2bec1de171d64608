"""A model whose logits are not its input vocabulary (tracr: output values) is described and checked as such."""

import pytest
import torch

from circuitry.errors import InputError
from circuitry.models import load_model
from circuitry.prompts import PairDataset, PromptPair, check_task


def test_tracr_logits_width_and_bidirectional_attention_are_in_the_info():
    m = load_model("zoo:tracr-reverse")
    assert (m.info.d_vocab, m.info.n_outputs, m.info.causal) == (5, 3, False)
    ids = torch.tensor([[0, 1, 2, 3, 1]])
    assert m.site_shape("logits", 1, 5) == tuple(m.run(ids).logits.shape) == (1, 5, 3)
    z = load_model("zoo:attn-only-2l")
    assert z.info.n_outputs == z.info.d_vocab and z.info.causal


def test_an_answer_beyond_the_outputs_is_refused_before_work():
    m = load_model("zoo:tracr-reverse")  # 5 input tokens, 3 outputs
    pairs = tuple(PromptPair(clean=(0, 1, 2, 3, 1), corrupted=(0, 2, 2, 3, 1), positions=(4,), answers=(a,),
                             foils=(0,)) for a in (1, 4, 1, 2))
    with pytest.raises(InputError, match="outside the 3 outputs"):
        check_task(PairDataset(task="t", pairs=pairs), m, metric="logit_diff")
