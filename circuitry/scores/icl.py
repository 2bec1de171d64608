"""In-context learning (ICL) score: loss at a late token minus loss at an early token.

Olsson et al. (2022) (the definitions in ``docs/api/scores.md``): token 500 minus token 50 on 512-token
contexts. circuitry reports **late minus early**, so *more negative = more in-context learning*. The
loss at position ``p`` is the cross-entropy of predicting ``tokens[p]`` from ``tokens[:p]`` (the
logits at ``p - 1``). Positions are parameters; by default they are the paper's, scaled to the
sequence length ``P``: ``early = round(50 / 512 * P)``, ``late = round(500 / 512 * P)``.
The score is the mean over sequences of the per-sequence difference, with a bootstrap interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from circuitry.errors import bad_value
from circuitry.provenance import make_provenance, sha256_json
from circuitry.scores.detectors import check_tokens
from circuitry.scores.results import BootstrapInfo, ScalarScore, bootstrap_seed

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter


def default_positions(seq_len: int) -> tuple[int, int]:
    """The paper's token 50 and token 500 of 512, scaled to ``seq_len`` (early at least 1)."""
    return max(1, round(50 / 512 * seq_len)), min(seq_len - 1, round(500 / 512 * seq_len))


def icl_score(model: "ModelAdapter", tokens: torch.Tensor | None = None, *, early: int | None = None,
              late: int | None = None, n_samples: int = 32, seq_len: int | None = None,
              bos: int | None | Literal["model"] = "model", seed: int = 0, confidence_level: float = 0.95,
              n_resamples: int = 2000) -> ScalarScore:
    """ICL score ``loss[late] - loss[early]``, averaged over sequences.

    Parameters
    ----------
    model
        A loaded model.
    tokens
        ``[n, pos]`` sequences (e.g. text from the zoo corpus or your own). ``None``: ``n_samples``
        sequences of random tokens whose second half repeats the first
        (:func:`circuitry.prompts.repeated_tokens`, ``repeats=2``) of total length ``seq_len``
        (default: the model's context, at most 512), BOS first.
    early, late
        Positions whose losses are compared (``1 <= early < late < pos``); default: the paper's 50 and
        500 scaled to the sequence length.
    seed, confidence_level, n_resamples
        Token seed and the bootstrap over sequences (:func:`circuitry.stats.bootstrap_ci`, ``method="auto"``:
        studentized from 8 sequences, Student's t below), which draws from its own stream
        (:func:`~circuitry.scores.results.bootstrap_seed`).

    Returns
    -------
    ScalarScore
        ``statistic`` (mean late-minus-early loss, nats), its interval, the per-sequence values and in
        ``details`` the positions and the mean losses at each.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> s = icl_score(load_model("zoo:attn-only-2l"), n_samples=8, n_resamples=200)
    >>> s.statistic < 0   # the repeat is predictable in context
    True
    """
    from circuitry.stats import bootstrap_ci

    if tokens is None:
        from circuitry.prompts import repeated_tokens

        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
            raise bad_value("n_samples", n_samples, "an integer >= 2 (the interval needs two sequences)")
        total = seq_len if seq_len is not None else min(model.info.n_ctx, 512)
        b = (model.info.bos_token_id or 0) if bos == "model" else bos
        if b is not None and not 0 <= b < model.info.d_vocab:
            raise bad_value("bos", b, f"None or a token id in [0, {model.info.d_vocab})", "pass bos=0 or bos=None")
        if not isinstance(total, int) or total < 6 or total > model.info.n_ctx:
            raise bad_value("seq_len", seq_len, f"an integer in [6, n_ctx={model.info.n_ctx}]")
        block = (total - (b is not None)) // 2
        tokens = repeated_tokens(n_samples, block_len=block, repeats=2, vocab_size=model.info.d_vocab, bos=b,
                                 seed=seed)
        source = {"kind": "repeated random tokens", "block_len": block, "repeats": 2, "bos": b}
    else:
        tokens = check_tokens(model, tokens)
        source = {"kind": "user tokens"}
        if tokens.shape[0] < 2:
            raise bad_value("tokens", tuple(tokens.shape), "at least 2 sequences (for the interval)")
    P = tokens.shape[1]
    d_early, d_late = default_positions(P)
    early = d_early if early is None else early
    late = d_late if late is None else late
    if not (isinstance(early, int) and isinstance(late, int) and 1 <= early < late < P):
        raise bad_value("early/late", (early, late), f"integers with 1 <= early < late < {P} (the sequence length)")
    from circuitry.models.edits import LogitSlice

    at = torch.tensor([early - 1, late - 1])  # unembed only the two positions the score reads
    logp = model.run(tokens, logits_at=LogitSlice(at)).logits.detach().to(torch.float64).cpu().log_softmax(-1)
    col = {early: 0, late: 1}
    loss = lambda p: -logp[:, col[p]].gather(-1, tokens[:, p: p + 1]).squeeze(-1).numpy()  # noqa: E731
    l_early, l_late = loss(early), loss(late)
    diff = l_late - l_early
    est = bootstrap_ci(diff, confidence_level=confidence_level, n_resamples=n_resamples, rng=bootstrap_seed(seed))
    return ScalarScore(
        name="icl", description="loss at the late token minus loss at the early token (nats); "
                                "negative = in-context learning (Olsson et al. 2022)",
        statistic=float(np.mean(diff)), ci_low=est.confidence_interval.low, ci_high=est.confidence_interval.high,
        per_sample=[float(x) for x in diff], n_samples=int(diff.size),
        bootstrap=BootstrapInfo(confidence_level=confidence_level, method=est.method, n_resamples=n_resamples,
                                seed=est.seed),
        details={"early": early, "late": late, "seq_len": P, "loss_early": float(l_early.mean()),
                 "loss_late": float(l_late.mean()), "tokens": source},
        provenance=make_provenance(model, dataset=sha256_json(tokens.tolist()), seed=seed))
