"""Pairs of different lengths, right-padded: on a causal model every per-prompt number equals the pair's
number when its length group runs alone (the padding is never read), and what averages over prompts averages
over real positions only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from circuitry.errors import InputError
from circuitry.prompts import PairDataset, make_task
from circuitry.prompts.pairs import PAD_ID


@pytest.fixture(scope="module")
def mixed():
    """Induction pairs of two lengths (block 6 -> 13 tokens, block 9 -> 19 tokens), interleaved; the metric
    reads the last repeated token of each (one target per pair, at a different position per length)."""
    from circuitry.models import load_model

    torch.set_num_threads(1)
    m = load_model("zoo:attn-only-2l")
    def last(d):
        return d.model_copy(update={"pairs": tuple(p.model_copy(update={k: getattr(p, k)[-1:] for k in (
            "positions", "answers", "foils")}) for p in d.pairs)})

    short = last(make_task("induction", m, n_prompts=4, seed=1, block_len=6))
    long = last(make_task("induction", m, n_prompts=4, seed=2, block_len=9))
    pairs = [p for ab in zip(short.pairs, long.pairs) for p in ab]
    return m, short, long, PairDataset(task="mixed", pairs=tuple(pairs), metric=short.metric)


def _split(per_prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interleaved prompt axis (last) back into its short and long groups."""
    return per_prompt[..., 0::2], per_prompt[..., 1::2]


def test_padded_stack_and_mask(mixed):
    _, short, long, data = mixed
    assert data.padded and not short.padded and data.lengths[:2] == (short.seq_len, long.seq_len)
    ids, mask = data.clean_ids(), data.mask()
    assert ids.shape == (8, long.seq_len) and int(mask.sum()) == 4 * short.seq_len + 4 * long.seq_len
    assert (ids[0, short.seq_len:] == PAD_ID).all() and (ids[0, :short.seq_len] == short.clean_ids()[0]).all()


@pytest.mark.parametrize("method", ["exact", "eap", "eap-ig"])
@pytest.mark.parametrize("ablation", ["counterfactual", "zero"])
def test_edge_scores_per_prompt_equal_each_length_alone(mixed, method, ablation):
    from circuitry.discovery import score_edges

    m, short, long, data = mixed
    kw = dict(method=method, ablation=ablation, progress=False)
    both = score_edges(m, data, **kw).per_prompt.numpy()
    a, b = _split(both)
    np.testing.assert_allclose(a, score_edges(m, short, **kw).per_prompt.numpy(), atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(b, score_edges(m, long, **kw).per_prompt.numpy(), atol=2e-5, rtol=1e-4)


def test_mean_ablation_averages_real_positions_only(mixed):
    """The mean ablation's values equal an independent mean over each pair's own (unpadded) activations."""
    from circuitry.discovery import prepare

    m, short, long, data = mixed
    pr = prepare(m, data, ablation="mean")
    plain = prepare(m, data, ablation="counterfactual")
    acts = plain.clean.acts  # [sender, n, p, d] of the padded run
    real = [acts[:, i, :n] for i, n in enumerate(data.lengths)]
    want = torch.cat(real, dim=1).mean(1)  # every real position of every prompt, once
    torch.testing.assert_close(pr.corr.acts[:, 0, 0], want, atol=1e-5, rtol=1e-5)
    pos = prepare(m, data, ablation="mean-positional").corr.acts
    t = long.seq_len - 1  # only the long prompts reach the last position
    torch.testing.assert_close(pos[:, 0, t], acts[:, 1::2, t].mean(1), atol=1e-5, rtol=1e-5)


def test_resample_draws_from_prompts_at_least_as_long(mixed):
    from circuitry.discovery.ablations import resample_sources

    _, _, _, data = mixed
    src = resample_sources(len(data), 0, data.lengths)
    lens = np.asarray(data.lengths)
    assert (lens[src] >= lens).all() and (src != np.arange(len(data))).all()
    with pytest.raises(InputError, match="at least two pairs of the greatest length"):
        resample_sources(3, 0, (5, 5, 7))


def test_activation_patching_per_prompt_equal_each_length_alone(mixed):
    from circuitry.interventions import activation_patch

    m, short, long, data = mixed
    both = activation_patch(m, data, site="z", direction="noising").per_prompt.numpy()
    a, b = _split(both)
    np.testing.assert_allclose(a, activation_patch(m, short, site="z", direction="noising").per_prompt.numpy(),
                               atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(b, activation_patch(m, long, site="z", direction="noising").per_prompt.numpy(),
                               atol=2e-5, rtol=1e-4)


def test_head_mean_ablation_masks_padding(mixed):
    """Mean ablation of heads (analyze's circuit test, claims, backup heads): with the mask, a prompt's
    ablated metric equals the one computed from values averaged over real positions by hand."""
    from circuitry.interventions.ablation import ablation_values

    m, _, _, data = mixed
    ids, mask = data.clean_ids(), data.mask()
    vals = ablation_values(m, ids, method="mean", mask=mask, per_position=False)
    z = m.run(ids, reads=[("z", 0)])[("z", 0)]
    want = torch.cat([z[i, :n] for i, n in enumerate(data.lengths)]).mean(0)
    torch.testing.assert_close(vals[0][0, 0], want, atol=1e-5, rtol=1e-5)
    unmasked = ablation_values(m, ids, method="mean", per_position=False)
    assert not torch.allclose(unmasked[0][0, 0], want, atol=1e-4)  # the padding would have leaked in


def test_task_file_of_different_lengths_is_read_and_a_bidirectional_model_refuses_it(tmp_path):
    from circuitry.models import load_model
    from circuitry.prompts import check_task, read_pairs

    lines = [{"clean": [1, 2, 3, 1], "corrupted": [1, 4, 3, 1], "answers": [2], "foils": [4], "positions": [3]},
             {"clean": [1, 2, 3, 5, 6], "corrupted": [1, 4, 3, 5, 6], "answers": [2], "foils": [4], "positions": [3]}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    data = read_pairs(path)
    assert data.lengths == (4, 5) and data.seq_len == 5
    check_task(data, load_model("zoo:attn-only-2l"))  # causal: fine
    with pytest.raises(InputError, match="attends in both directions.*Fix: pairs of one length"):
        check_task(data, load_model("zoo:tracr-reverse"))
