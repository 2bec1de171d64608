"""``sensitivity: true`` on a claim: the same claim under every ablation x metric its type admits.

Which ablation and which metric a paper used changes which conclusions hold (Zhang & Nanda 2024; Miller et
al. 2024: faithfulness from below 0 % to above 100 % across ablations; ACDC's IOI AUC 0.87 with KL and
resampling, 0.54 with zero ablation). A claim marked ``sensitivity: true`` is rerun, with the same prompts,
seed and test, in every setting below; its result says **robust** (every setting that ran gives the
baseline's verdict) or **fragile** (and which settings flip it). The claim's own verdict stays the one of
its own settings: the sweep is evidence about it, not a second test (no correction across settings is
implied).

The settings per claim type (the claim's own setting first, as the baseline):

- ``ablation_vs_random``, ``sufficiency``, ``partial_necessity``, ``minimality``: ablation in ``zero``,
  ``mean``, ``resample`` x metric in ``loss``, ``logit_diff``, ``answer_prob`` (and the claim's own
  ``icl_score``, when it has that metric): damage is oriented per metric, so "more damage than random heads"
  means the same in each;
- ``ablation_table``: the ablations (the table already spans its metrics);
- ``ablation_effect``: the ablations (its ``min_effect`` is in the units of its own metric);
- ``path_share``: the metrics ``logit_diff``, ``answer_prob``, ``loss`` (path patching has no ablation:
  the sender's output comes from the corrupted prompt).

A setting the task cannot feed (a metric whose answers or foils the prompts lack) is skipped with the reason.
"""

from __future__ import annotations

from typing import Any, Callable

from circuitry.claims.verdicts import ClaimResult, ClaimSensitivity, SettingVerdict
from circuitry.errors import InputError

ABLATIONS = ("zero", "mean", "resample")
ABLATION_METRICS = ("loss", "logit_diff", "answer_prob")
PATCH_METRICS = ("logit_diff", "answer_prob", "loss")


def settings(claim) -> list[tuple[str, dict[str, Any]]]:
    """``[(label, field updates)]`` of every setting of ``claim``'s sweep, its own setting first."""
    t = claim.type
    if t == "path_share":
        grid = [{"metric": m} for m in _own_first(claim.metric, PATCH_METRICS)]
    elif t in ("ablation_effect", "ablation_table"):
        grid = [{"ablation": a} for a in _own_first(claim.ablation, ABLATIONS)]
    else:
        metrics = _own_first(claim.metric, ABLATION_METRICS)
        # own ablation and own metric first in both lists: the claim's own setting comes first
        grid = [{"ablation": a, "metric": m} for a in _own_first(claim.ablation, ABLATIONS) for m in metrics]
    return [("/".join(str(v) for v in g.values()), g) for g in grid]


def _own_first(own: str, options: tuple[str, ...]) -> list[str]:
    return [own] + [o for o in options if o != own]


def claim_sensitivity(ctx, claim, evaluate: Callable[[Any, Any], ClaimResult], baseline: ClaimResult
                      ) -> ClaimSensitivity:
    """Rerun ``claim`` with ``evaluate`` in every setting of :func:`settings` but its own (whose result is
    ``baseline``) and compare the verdicts."""
    grid = settings(claim)
    rows = [_row(grid[0][0], baseline)]
    skipped: dict[str, str] = {}
    for label, update in grid[1:]:
        variant = claim.model_copy(update={**update, "sensitivity": False})
        try:
            rows.append(_row(label, evaluate(ctx, variant)))
        except InputError as exc:  # a metric the prompts cannot feed
            skipped[label] = str(exc).split(". Fix")[0]
    flips = [r.setting for r in rows[1:] if r.outcome != rows[0].outcome]
    return ClaimSensitivity(baseline=grid[0][0], settings=rows, conclusion="fragile" if flips else "robust",
                            flips=flips, skipped=skipped)


def _row(label: str, r: ClaimResult) -> SettingVerdict:
    v = r.verdict
    return SettingVerdict(setting=label, outcome=v.outcome, pvalue=v.pvalue, min_attainable_pvalue=v.min_attainable_pvalue,
                          reason=v.reason)
