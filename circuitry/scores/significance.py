"""Is a head's score significant? A per-head test against the detector's null, corrected over heads.

Every detector with a null (:class:`~circuitry.scores.detectors.Detector`, ``null``) gives, for each
sampled sequence ``s`` and head ``h``, the score ``x[s, h]`` and the score expected under the null
hypothesis "this head does not do this", ``e[s, h]`` (for pattern detectors: the same number of target
keys placed at random, :func:`~circuitry.scores.detectors.placebo_null`; for the copying family:
``1 / d_vocab``, the share a uniform choice of token gets; for the successor and copy-suppression OV
detectors: the chance of hitting one of ``m`` candidates, ``k / m``). The excess ``d = x - e`` is
tested per head with a **one-sided skewness-corrected t-test** (Hall 1992, :mod:`circuitry.stats.skew_t`, the
test circuitry uses for every mean over prompts) of

    H0: mean(d) <= min_effect   against   H1: mean(d) > min_effect,

Why not simply the same score on shuffled tokens? Positional behaviour survives shuffling (a
previous-token head attends to ``i - 1`` whatever the tokens, an induction head still finds the repeats
of a shuffled repeated sequence), so a shuffled-input null would score real heads as null. The placebo
null keeps the model's run and moves the *targets*: it is the same score with the target keys placed at
random, which is what "the head's attention is unrelated to the target" predicts.

This is a minimum-effect null: a head is labelled only if its score exceeds the null by more than
``min_effect`` (0.1 by default: a tenth of the attention, of the logit raise, or of the hits), so a
random head with a tiny but consistent positional bias is not labelled however many sequences are
scored. The p-values of all heads of a detector are corrected together (Holm by default, family-wise;
``"bh"`` for the false discovery rate; :func:`circuitry.stats.correct_pvalues`), and a head is
*significant* when its adjusted p-value is at most ``alpha``.

Assumptions: the sequences are independent draws (they are, from the seeded generator); the test's
approximation of the mean's distribution needs a handful of sequences (10 by default; the OV detectors use
one sample per token of the order). Excess scores are often skewed (a head hits its target on a few
sequences): at 10 sequences of exponential-shaped excess Student's one-sided t rejects 0.013 / 0.136 at a
nominal 0.05 in the two directions, Hall's test 0.028 / 0.080 (measured; docs/statistics.md). A head whose
excess is identical on every sequence (zero variance, e.g. a hand-built head) gets ``p = 0`` if that excess
is above ``min_effect`` and ``p = 1`` otherwise.
"""

from __future__ import annotations


import numpy as np

from circuitry.display import Displayed, Table, ranked
from circuitry.errors import InputError, bad_value
from circuitry.labels import head_label
from circuitry.provenance import Frozen, NamedArray
from circuitry.stats.multiple import Correction, correct_pvalues
from circuitry.stats.skew_t import skew_t_pvalue, skew_t_statistic

TEST = ("one-sided skewness-corrected t-test (Hall 1992) per head of mean(score - null) > min_effect over sampled "
        "sequences, p-values corrected over the heads of the detector")


class HeadSignificance(Displayed, Frozen):
    """Per-head test of a detector's scores against its null (module docstring).

    Attributes
    ----------
    null, excess
        ``NamedArray ("layer", "head")``: mean null score and mean excess ``score - null``.
    statistic, pvalue, adjusted_pvalue
        ``NamedArray ("layer", "head")``: Hall's statistic, one-sided p-value, p-value after ``method``.
    significant
        Labels of the heads with ``adjusted_pvalue <= alpha``, highest excess first.
    min_effect, alpha, method, controls
        The floor in the null hypothesis, the level, the correction and the error rate it controls.
    null_description, test, n_samples
        How the null score is obtained, the test, the number of sequences.
    """

    null: NamedArray
    excess: NamedArray
    statistic: NamedArray
    pvalue: NamedArray
    adjusted_pvalue: NamedArray
    significant: list[str]
    min_effect: float
    alpha: float
    method: Correction
    controls: str
    null_description: str
    test: str = TEST
    n_samples: int

    def _table(self) -> Table:
        """The heads with the largest excess over the null, with Hall's statistic and the raw and adjusted
        p-values."""
        ex, null, t, p, adj = (a.numpy() for a in (self.excess, self.null, self.statistic, self.pvalue,
                                                   self.adjusted_pvalue))
        rows = ranked([(head_label(l, h), float(ex[l, h]), float(null[l, h]), float(t[l, h]), float(p[l, h]),
                        float(adj[l, h]), "yes" if head_label(l, h) in self.significant else "")
                       for l, h in np.ndindex(ex.shape)], key=lambda r: r[1], absolute=False)
        return Table(f"HeadSignificance: {len(self.significant)} of {ex.size} heads significant",
                     ("head", "excess", "null", "statistic", "p", f"p_adj ({self.method})", "significant"), rows,
                     notes=[f"test: {self.test}; min effect {self.min_effect:g}, alpha {self.alpha:g} "
                            f"({self.controls}), {self.n_samples} sequences"]
                     + ([f"null: {self.null_description}"] if self.null_description else []),
                     noun="head")


def head_significance(scores, null, *, min_effect: float = 0.1, alpha: float = 0.05,
                      method: Correction = "holm", null_description: str = "") -> HeadSignificance:
    """Test every head's ``scores [n, layer, head]`` against ``null`` (broadcastable to the same shape).

    Parameters
    ----------
    scores
        Per-sequence scores ``[n, layer, head]``.
    null
        The expected score under the null, per sequence and head (or broadcastable).
    min_effect
        Floor of the null hypothesis ``mean(score - null) <= min_effect``.
    alpha, method
        Level and correction over heads (``"holm"``, ``"bh"``, ``"bonferroni"``).

    Returns
    -------
    HeadSignificance

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(0, 0.1, size=(10, 1, 3)); s[:, 0, 1] += 0.8
    >>> head_significance(s, 0.05).significant
    ['L0H1']
    """
    x = np.asarray(scores, dtype=float)
    if x.ndim != 3 or x.shape[0] < 2:
        raise bad_value("scores", x.shape, "[n, layer, head] with n >= 2 sequences")
    try:
        e = np.broadcast_to(np.asarray(null, dtype=float), x.shape)
    except ValueError:
        raise InputError(f"null has shape {np.shape(null)}, which does not broadcast to the scores {x.shape}; "
                         "a null function must return a constant, [n, 1, 1] or [n, layer, head]") from None
    if not (np.isfinite(x).all() and np.isfinite(e).all()):
        raise InputError("scores and null must be finite (drop sequences without a target first)")
    d = x - e
    mean, sd = d.mean(0), d.std(0, ddof=1)
    t = skew_t_statistic(d, min_effect, axis=0)
    p = np.asarray(skew_t_pvalue(d, min_effect, alternative="greater", axis=0), dtype=float)
    flat = sd <= 1e-12 * np.maximum(1.0, np.abs(mean))
    p = np.where(flat, np.where(mean > min_effect, 0.0, 1.0), p)
    t = np.where(flat, np.where(mean > min_effect, np.inf, -np.inf), t)
    L, H = x.shape[1:]
    labels = [head_label(a, b) for a in range(L) for b in range(H)]
    corr = correct_pvalues(p.reshape(-1), method=method, alpha=alpha, labels=labels)
    adj = np.asarray(corr.adjusted_pvalues).reshape(L, H)
    sig = [(lab, float(mean.flat[i])) for i, lab in enumerate(labels) if corr.rejected[i]]
    sig.sort(key=lambda r: -r[1])
    ax = ("layer", "head")
    return HeadSignificance(
        null=NamedArray.from_array(e.mean(0), ax), excess=NamedArray.from_array(mean, ax),
        statistic=NamedArray.from_array(np.clip(t, -1e300, 1e300), ax), pvalue=NamedArray.from_array(p, ax),
        adjusted_pvalue=NamedArray.from_array(adj, ax), significant=[lab for lab, _ in sig],
        min_effect=float(min_effect), alpha=corr.alpha, method=method, controls=corr.controls,
        null_description=null_description, n_samples=int(x.shape[0]))
