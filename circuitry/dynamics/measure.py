"""What the phase-change analysis measures at one checkpoint.

Olsson et al. (2022), "In-context Learning and Induction Heads", argument 1: over training, the
in-context learning (ICL) score and the prefix-matching score of the induction heads change abruptly
and *together*, with a bump in the loss. At every checkpoint circuitry measures (definitions in
``docs/api/scores.md``):

* the **ICL score** (:func:`circuitry.scores.icl_score`): loss at a late token minus loss at an early
  token, on held-out sequences of the training distribution (more negative = more in-context
  learning), with its bootstrap interval;
* the **held-out loss**: mean next-token cross-entropy over every position of the same sequences;
* **every head's** previous-token and prefix-matching (induction) scores
  (:func:`circuitry.scores.score_heads`, Olsson's evaluators: random blocks repeated, BOS first), with a
  bootstrap interval per head;
* the **K-composition** of every earlier-layer head into every later-layer head
  (:func:`circuitry.scores.composition_scores`, Elhage et al. 2021), raw; the random-matrix baseline
  depends on the shapes only, so it is simulated once per series.

Held-out sequences: for a zoo model, a batch of the model's own corpus drawn with ``recipe.seed + 1``
(training draws every batch with ``recipe.seed``, so none of these sequences was trained on); for any
other model, the caller's ``heldout`` tokens, or else random blocks repeated twice (then the "held-out
loss" is the loss on that synthetic data, and ``heldout_source`` says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from circuitry.display import Displayed, Table, fmt, interval, ranked, spread
from circuitry.provenance import Frozen, NamedArray, sha256_json

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter


class CheckpointScores(Displayed, Frozen):
    """The measurements of one checkpoint (module docstring).

    Attributes
    ----------
    step
        Training step of the checkpoint.
    model_id, weights_sha256
        How the checkpoint was named and the sha256 of its weights.
    icl, icl_ci_low, icl_ci_high
        ICL score (nats, late minus early) and its 95% bootstrap interval over sequences.
    heldout_loss, heldout_loss_sem
        Mean next-token loss (nats) over all positions of the held-out sequences, and its standard error
        over sequences.
    prev_token, induction
        Every head's score, ``NamedArray ("layer", "head")``; ``*_ci_low``/``*_ci_high`` the per-head
        bootstrap interval.
    k_composition
        Raw K-composition ``("src_layer", "src_head", "dst_layer", "dst_head")``, missing where
        ``src_layer >= dst_layer``; ``None`` for a 1-layer model.
    """

    step: int
    model_id: str
    weights_sha256: str
    icl: float
    icl_ci_low: float
    icl_ci_high: float
    heldout_loss: float
    heldout_loss_sem: float
    prev_token: NamedArray
    prev_token_ci_low: NamedArray
    prev_token_ci_high: NamedArray
    induction: NamedArray
    induction_ci_low: NamedArray
    induction_ci_high: NamedArray
    k_composition: NamedArray | None = None

    def best(self, score: str, *, layers: range | None = None) -> tuple[tuple[int, int], float, float, float]:
        """``((layer, head), value, ci_low, ci_high)`` of the highest head for ``score`` (``"prev_token"``
        or ``"induction"``), within ``layers`` if given."""
        vals = getattr(self, score).numpy()
        lo, hi = getattr(self, f"{score}_ci_low").numpy(), getattr(self, f"{score}_ci_high").numpy()
        rows = list(layers) if layers is not None else list(range(vals.shape[0]))
        sub = np.where(np.isin(np.arange(vals.shape[0]), rows)[:, None], vals, -np.inf)
        lay, h = np.unravel_index(int(np.argmax(sub)), vals.shape)
        return (int(lay), int(h)), float(vals[lay, h]), float(lo[lay, h]), float(hi[lay, h])

    def _table(self) -> Table:
        """The heads with the highest prefix-matching (induction) score, with their previous-token score and
        both intervals; the ICL score and the held-out loss in the notes."""
        from circuitry.labels import head_label

        ind, il, ih, prev, pl, ph = (getattr(self, f).numpy() for f in (
            "induction", "induction_ci_low", "induction_ci_high", "prev_token", "prev_token_ci_low",
            "prev_token_ci_high"))
        rows = ranked([(head_label(l, h), float(ind[l, h]), interval(float(il[l, h]), float(ih[l, h])),
                        float(prev[l, h]), interval(float(pl[l, h]), float(ph[l, h])))
                       for l, h in np.ndindex(ind.shape)], key=lambda r: r[1], absolute=False)
        return Table(f"CheckpointScores: step {self.step}, {self.model_id}",
                     ("head", "induction", "induction CI", "prev-token", "prev-token CI"), rows,
                     notes=[f"ICL score {fmt(self.icl)} {interval(self.icl_ci_low, self.icl_ci_high)} nats (late - "
                            f"early loss); held-out loss {spread(self.heldout_loss, self.heldout_loss_sem)} (± sem); "
                            "95% bootstrap intervals over sequences"], noun="head")


def heldout_tokens(model: "ModelAdapter", *, n: int, seed: int = 0) -> tuple[torch.Tensor, dict[str, Any]]:
    """Held-out sequences for ``model`` and a description of where they came from (module docstring)."""
    man = getattr(model, "manifest", None)
    if getattr(man, "kind", None) == "text":  # held-out prose (circuitry.zoo.text_eval)
        from circuitry.zoo.text_eval import heldout_sequences

        return heldout_sequences(n)
    if man is not None:
        from circuitry.zoo.corpus import make_batch

        toks = torch.from_numpy(make_batch(man.recipe.corpus, seed=man.recipe.seed + 1, step=0, batch_size=n))
        return toks, {"kind": "zoo corpus, held out", "corpus_sha256": man.corpus_sha256,
                      "seed": man.recipe.seed + 1, "training_seed": man.recipe.seed, "n": n}
    from circuitry.prompts import repeated_tokens

    total = min(model.info.n_ctx, 512)
    bos = model.info.bos_token_id
    block = (total - (bos is not None)) // 2
    toks = repeated_tokens(n, block_len=block, repeats=2, vocab_size=model.info.d_vocab, bos=bos, seed=seed)
    return toks, {"kind": "random blocks repeated twice (no held-out text given)", "block_len": block, "n": n}


def next_token_losses(model: "ModelAdapter", tokens: torch.Tensor, *, batch_size: int = 64) -> np.ndarray:
    """``[n, pos - 1]`` cross-entropy (nats) of predicting ``tokens[:, p]`` from ``tokens[:, :p]``."""
    out = []
    for start in range(0, tokens.shape[0], batch_size):
        t = tokens[start:start + batch_size]
        logp = model.run(t).logits.detach().to(torch.float64).cpu().log_softmax(-1)
        out.append(-logp[:, :-1].gather(-1, t[:, 1:, None]).squeeze(-1).numpy())
    return np.concatenate(out)


def measure_checkpoint(model: "ModelAdapter", *, step: int, heldout: torch.Tensor, n_samples: int = 10,
                       seed: int = 0, n_resamples: int = 1000) -> CheckpointScores:
    """All the measurements of one checkpoint (module docstring).

    Parameters
    ----------
    model
        The checkpoint, loaded (:func:`circuitry.models.load_model`).
    step
        Its training step.
    heldout
        ``[n, pos]`` held-out sequences (:func:`heldout_tokens`) for the ICL score and the loss.
    n_samples, seed, n_resamples
        Sequences per head score (Olsson et al.: 10), seed, bootstrap resamples.
    """
    from circuitry.scores import composition_scores, icl_score, score_heads

    icl = icl_score(model, heldout, seed=seed, n_resamples=n_resamples)
    per_seq = next_token_losses(model, heldout).mean(axis=1)
    heads = score_heads(model, ["previous_token", "induction"], n_samples=n_samples, seed=seed,
                        n_resamples=n_resamples)
    kc = None
    if model.info.n_layers > 1:
        kc = composition_scores(model, kind="K", n_baseline=2, seed=seed).raw
    p, i = heads["previous_token"], heads["induction"]
    return CheckpointScores(
        step=int(step), model_id=model.model_id, weights_sha256=model.weights_sha256,
        icl=icl.statistic, icl_ci_low=icl.ci_low, icl_ci_high=icl.ci_high,
        heldout_loss=float(per_seq.mean()), heldout_loss_sem=float(per_seq.std(ddof=1) / np.sqrt(per_seq.size)),
        prev_token=p.values, prev_token_ci_low=p.ci_low, prev_token_ci_high=p.ci_high,
        induction=i.values, induction_ci_low=i.ci_low, induction_ci_high=i.ci_high, k_composition=kc)


def dataset_hash(tokens: torch.Tensor) -> str:
    """sha256 of the held-out token ids (canonical JSON)."""
    return sha256_json(tokens.tolist())
