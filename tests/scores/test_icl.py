"""ICL score: matches an independent loss computation; validation; positions."""

from __future__ import annotations

import pytest
import torch

from circuitry.errors import InputError
from circuitry.scores import ScalarScore, icl_score
from circuitry.scores.icl import default_positions


def test_matches_cross_entropy(rand_model):
    toks = torch.randint(1, 200, (4, 30), generator=torch.Generator().manual_seed(0))
    s = icl_score(rand_model, toks, early=5, late=25, n_resamples=200)
    logits = rand_model.logits(toks).double()
    ce = lambda p: torch.nn.functional.cross_entropy(logits[:, p - 1], toks[:, p], reduction="none")  # noqa: E731
    ref = (ce(25) - ce(5)).tolist()
    assert s.per_sample == pytest.approx(ref, abs=1e-9)
    assert s.statistic == pytest.approx(sum(ref) / 4, abs=1e-9)
    assert s.ci_low <= s.statistic <= s.ci_high
    assert ScalarScore.model_validate_json(s.model_dump_json()) == s


def test_default_positions_scale_the_paper():
    assert default_positions(512) == (50, 500)
    assert default_positions(128) == (12, 125)


def test_default_sequences_and_validation(rand_model):
    s = icl_score(rand_model, n_samples=4, n_resamples=200)
    assert s.details["seq_len"] == 127 and s.details["tokens"]["block_len"] == 63
    assert (s.details["early"], s.details["late"]) == default_positions(127)
    with pytest.raises(InputError, match="early/late"):
        icl_score(rand_model, n_samples=4, early=50, late=20)
    with pytest.raises(InputError, match="n_samples"):
        icl_score(rand_model, n_samples=1)
