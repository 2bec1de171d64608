"""Locate the induction-head phase change over a series of checkpoints.

Olsson et al. (2022), "In-context Learning and Induction Heads", argument 1: in small attention-only
models with two or more layers, the ICL score and the prefix-matching score of the induction heads
jump in the same short window of training; 1-layer models never form induction heads and show no such
jump. See :mod:`circuitry.dynamics.measure` for what is measured at each checkpoint.

The rule that locates the window (:func:`locate_phase_change`), applied to each quantity oriented so
that the phase change *raises* it (best prefix-matching score; minus the ICL score):

1. its **net change** from the first to the last point must reach a floor (``min_induction_rise``,
   ``min_icl_drop``): a quantity that hardly moves has no jump;
2. its **jump window** is the shortest span ``[s_i, s_j]`` of consecutive points over which it makes at
   least ``share`` (default half) of its net change (ties: the larger change);
3. the jump must be **abrupt**: the window covers at most ``max_width`` of the series' span of steps;
4. the jump must be **resolved**: the quantity's confidence interval at ``s_j`` lies entirely beyond its
   interval at ``s_i`` (when intervals are given);
5. the phase change is found when both quantities jump and their windows **overlap** (share more
   than one step); the reported window is their intersection, the union is reported too.

With checkpoints far apart the window can only be as sharp as their spacing; for the zoo models the
training log in the manifest (probes every 50 steps) gives a second, denser series
(:func:`training_log_series`), located with the same rule.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from circuitry.display import Displayed, Table, series_rows
from circuitry.errors import InputError, bad_value
from circuitry.provenance import Frozen


class Jump(Frozen):
    """The jump window of one quantity (rule steps 1-4 in the module docstring).

    ``change_in_window`` and ``net_change`` are in the quantity's own units, oriented so that the phase
    change raises them (for the ICL score: the drop in nats)."""

    quantity: str
    net_change: float
    start_step: int | None = None
    end_step: int | None = None
    change_in_window: float | None = None
    width_share: float | None = None
    resolved: bool | None = None
    jumps: bool
    reason: str


class PhaseChange(Frozen):
    """Where the ICL score and the prefix-matching score jump together, if they do.

    Attributes
    ----------
    found
        Both quantities jump (rule steps 1-4) and their windows overlap (step 5).
    window
        ``(start_step, end_step)``: the intersection of the two jump windows (``None`` if not found).
    union
        The union of the two windows.
    induction, icl
        Each quantity's :class:`Jump`.
    source
        Which series: ``"checkpoints"`` (measured on the weights) or ``"training log"``.
    criteria
        The rule's parameters.
    """

    found: bool
    window: tuple[int, int] | None = None
    union: tuple[int, int] | None = None
    induction: Jump
    icl: Jump
    source: str
    criteria: dict[str, Any]

    def describe(self) -> str:
        """One sentence for summaries."""
        if self.found:
            return (f"phase change found between steps {self.window[0]} and {self.window[1]} ({self.source}): "
                    f"prefix-matching +{self.induction.change_in_window:.2f} (of +{self.induction.net_change:.2f}), "
                    f"ICL score -{self.icl.change_in_window:.2f} nats (of -{self.icl.net_change:.2f})")
        return f"no phase change ({self.source}): {self.induction.reason}; {self.icl.reason}"


def _jump(name: str, steps: np.ndarray, x: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None, *,
          floor: float, share: float, max_width: float) -> Jump:
    net = float(x[-1] - x[0])
    if net < floor:
        return Jump(quantity=name, net_change=net, jumps=False,
                    reason=f"{name} changes by {net:+.3f} over the series (< floor {floor})")
    span = float(steps[-1] - steps[0])
    best = None
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            d = float(x[j] - x[i])
            if d >= share * net:
                key = (steps[j] - steps[i], -d)
                if best is None or key < best[0]:
                    best = (key, i, j, d)
    _, i, j, d = best
    width = float(steps[j] - steps[i]) / span
    resolved = None if lo is None else bool(lo[j] > hi[i])
    ok = width <= max_width and resolved is not False
    why = (f"{name} makes {d:+.3f} of its {net:+.3f} between steps {int(steps[i])} and {int(steps[j])} "
           f"({width:.0%} of the span" + ("" if resolved is None else ", intervals separated" if resolved
                                            else ", intervals overlap") + ")")
    if width > max_width:
        why += f": gradual, wider than {max_width:.0%}"
    return Jump(quantity=name, net_change=net, start_step=int(steps[i]), end_step=int(steps[j]), change_in_window=d,
                width_share=width, resolved=resolved, jumps=ok, reason=why)


def locate_phase_change(steps: Sequence[int], icl: Sequence[float], induction: Sequence[float], *,
                        icl_ci: tuple[Sequence[float], Sequence[float]] | None = None,
                        induction_ci: tuple[Sequence[float], Sequence[float]] | None = None,
                        share: float = 0.5, max_width: float = 0.3, min_induction_rise: float = 0.2,
                        min_icl_drop: float = 0.3, source: str = "checkpoints") -> PhaseChange:
    """Locate the window where the ICL score and the prefix-matching score jump together.

    Parameters
    ----------
    steps
        Increasing training steps, at least 3.
    icl, induction
        ICL score (nats, late minus early: more negative = more in-context learning) and the best
        prefix-matching score at each step.
    icl_ci, induction_ci
        Optional ``(low, high)`` confidence bounds at each step (rule step 4).
    share, max_width, min_induction_rise, min_icl_drop
        The rule's parameters (module docstring).
    source
        Name of the series, recorded in the result.

    Returns
    -------
    PhaseChange

    Examples
    --------
    >>> pc = locate_phase_change([0, 100, 200, 300, 400], [0.0, -0.1, -1.5, -1.6, -1.7],
    ...                          [0.05, 0.06, 0.6, 0.65, 0.7])
    >>> pc.found, pc.window
    (True, (100, 200))
    """
    s = np.asarray(steps, dtype=float)
    a, b = np.asarray(icl, dtype=float), np.asarray(induction, dtype=float)
    if s.ndim != 1 or len(s) < 3 or not np.all(np.diff(s) > 0):
        raise bad_value("steps", list(steps), "at least 3 strictly increasing training steps",
                        "pass at least three checkpoints, sorted by step")
    if a.shape != s.shape or b.shape != s.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError(f"icl ({a.shape}) and induction ({b.shape}) need one finite value per step ({s.shape})")
    if not 0 < share <= 1 or not 0 < max_width <= 1:
        raise bad_value("share/max_width", (share, max_width), "values in (0, 1]")
    # the ICL score falls at the phase change: orient it (and its interval) so that the jump is a rise
    icl_lo = icl_hi = ind_lo = ind_hi = None
    if icl_ci is not None:
        icl_lo, icl_hi = -np.asarray(icl_ci[1], dtype=float), -np.asarray(icl_ci[0], dtype=float)
    if induction_ci is not None:
        ind_lo, ind_hi = np.asarray(induction_ci[0], dtype=float), np.asarray(induction_ci[1], dtype=float)
    ji = _jump("prefix-matching score", s, b, ind_lo, ind_hi, floor=min_induction_rise, share=share,
               max_width=max_width)
    jc = _jump("ICL score drop", s, -a, icl_lo, icl_hi, floor=min_icl_drop, share=share, max_width=max_width)
    crit = {"share": share, "max_width": max_width, "min_induction_rise": min_induction_rise,
            "min_icl_drop": min_icl_drop}
    if not (ji.jumps and jc.jumps):
        return PhaseChange(found=False, induction=ji, icl=jc, source=source, criteria=crit)
    start, end = max(ji.start_step, jc.start_step), min(ji.end_step, jc.end_step)
    union = (min(ji.start_step, jc.start_step), max(ji.end_step, jc.end_step))
    if end <= start:
        why = f"the windows {ji.start_step}-{ji.end_step} and {jc.start_step}-{jc.end_step} do not overlap"
        return PhaseChange(found=False, union=union, source=source, criteria=crit,
                           induction=ji.model_copy(update={"reason": ji.reason + "; " + why}), icl=jc)
    return PhaseChange(found=True, window=(start, end), union=union, induction=ji, icl=jc, source=source,
                       criteria=crit)


class TrainingLog(Displayed, Frozen):
    """The dense training log of a zoo model (``manifest.curve``, every ``eval_every`` steps).

    ``icl_proxy`` is the loss on the last repeat minus the loss on the first repeat of the held-out
    repeated random tokens (a late-minus-early loss, the ICL score's sign convention); the head scores
    are the zoo's training probes (``circuitry.zoo.train.run_probes``: 20-token blocks, 3 repeats)."""

    steps: list[int]
    train_loss: list[float]
    icl_proxy: list[float]
    best_prev_token: list[float]
    best_induction: list[float]

    def _table(self) -> Table:
        """The first and last logged steps and the steps after the steepest rise of the best prefix-matching
        score and the steepest drop of the ICL proxy."""
        marks: dict[int, str] = {}
        if len(self.steps) > 1:
            for i, what in ((int(np.argmax(np.diff(self.best_induction))) + 1, "steepest prefix-matching rise"),
                            (int(np.argmin(np.diff(self.icl_proxy))) + 1, "steepest ICL drop")):
                marks[i] = f"{marks[i]}; {what}" if i in marks else what
        rows = [(self.steps[i], self.train_loss[i], self.icl_proxy[i], self.best_prev_token[i], self.best_induction[i],
                 marks.get(i, "")) for i in series_rows(len(self.steps), list(marks), ends=3)]
        return Table(f"TrainingLog: {len(self.steps)} logged steps",
                     ("step", "train loss", "ICL proxy", "best prev-token", "best induction", "note"), rows,
                     notes=["ICL proxy: loss on the last repeat - on the first (nats); head scores: the zoo's training "
                            "probes"], total=len(self.steps), noun="step")


def training_log_series(manifest) -> TrainingLog:
    """The :class:`TrainingLog` of a zoo manifest."""
    c = manifest.curve
    return TrainingLog(
        steps=[p.step for p in c], train_loss=[p.train_loss for p in c],
        icl_proxy=[p.probes.loss_per_repeat[-1] - p.probes.loss_per_repeat[0] for p in c],
        best_prev_token=[max(map(max, p.probes.prev_token)) for p in c],
        best_induction=[max(map(max, p.probes.induction)) for p in c])
