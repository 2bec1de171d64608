"""Backup heads and self-repair: which heads' ablation effects grow when a circuit's main heads are gone.

Per-edge and per-head scores ablate one component in the otherwise intact model. When another component
compensates (self-repair; "backup" name movers in IOI, Wang et al. 2023; the Hydra effect, McGrath et al.
2023; Gong et al. 2026 on self-repair), that score understates the component, and a backup head that
does nothing while the main heads work scores about 0. The measurement here is **conditional
co-ablation**: for every other head ``h``,

- ``alone_h``: the damage of ablating ``h`` alone;
- ``given_h``: the damage ``h`` adds when the main heads ``M`` are already ablated,
  ``D(M + h) - D(M)``;
- ``growth_h = given_h - alone_h`` per prompt (positive: ``h`` matters more once ``M`` is gone, a backup;
  negative: ``h`` needed ``M``, e.g. it reads ``M``'s output).

``D(S)``, the *damage* of a head set, is the metric lost when ``S`` is ablated
(:func:`circuitry.interventions.ablation.head_set_effect_fn`; mean ablation over the prompts by default),
oriented so that it is positive when the behaviour is lost: ``m(intact) - m(ablated)`` for metrics where
the clean run is higher (logit difference, probability), the reverse for loss and KL. Every head's growth
is decided by :func:`circuitry.stats.decide.decide_sites` at the head level: Hall's skewness-corrected
t-test of the per-prompt growth against 0, **Holm** over the heads tested, and a share of the task's
clean-corrupted gap of at least ``min_share``. A *backup* is a member with positive growth.

**Super-additivity**: for a head set ``S`` (the main heads; the main heads with the backups), the joint
damage ``D(S)`` against the sum of single damages ``sum_h D({h})``, per prompt; the mean difference with
circuitry's interval of a mean over prompts (:func:`circuitry.stats.mean_interval`: studentized bootstrap
from 8 prompts) and Hall's one-sided test that it is > 0. Self-repair makes single damages small and the
joint damage large: the difference is positive.

Cost: one unablated run, ``2 H - |M| + 1`` ablated runs of the prompts for ``H`` heads (singles of every
head, the main set, the main set with each other head), stacked along the batch, plus the sets of the
super-additivity tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from circuitry.display import Displayed, Table, interval, percent, ranked
from circuitry.errors import bad_value
from circuitry.provenance import Frozen, Provenance
from circuitry.stats.decide import MIN_SHARE, SiteDecisions, decide_sites


class SuperAdditivity(Frozen):
    """Joint damage of ``heads`` against the sum of their single damages (means over prompts):
    ``difference = joint - summed`` with its interval (``ci_method``) and Hall's one-sided p that it is
    > 0 (floor 0)."""

    heads: list[str]
    joint: float
    summed: float
    difference: float
    ci_low: float
    ci_high: float
    ci_method: str
    confidence_level: float
    pvalue: float
    alternative: str = "greater"
    test: str = "Hall's skewness-corrected one-sample t-test over prompts of joint - summed"
    n_prompts: int


class HeadBackup(Frozen):
    """One head: its mean damage alone, given the main heads ablated, and the growth's decision."""

    head: str
    alone: float
    given_main: float
    growth: float
    share: float
    pvalue: float
    pvalue_adjusted: float
    role: str  # "backup", "dependent" (its effect shrinks without the main heads) or "neither"


class BackupReport(Displayed, Frozen):
    """Conditional co-ablation of every other head with the ``main`` heads (module docstring).

    ``decisions``: the full :class:`~circuitry.stats.decide.SiteDecisions` (test, null, Holm, alpha, share
    threshold); ``heads``: one :class:`HeadBackup` per head tested; ``main_damage``: ``D(main)``;
    ``main_additivity``: the main heads' joint vs summed damage; ``with_backups``: the same for the main
    heads together with the backups found (``None`` without backups)."""

    main: list[str]
    ablation: str
    metric: str
    n_prompts: int
    main_damage: float
    heads: list[HeadBackup]
    decisions: SiteDecisions
    main_additivity: SuperAdditivity | None
    with_backups: SuperAdditivity | None
    seed: int
    provenance: Provenance

    @property
    def backups(self) -> list[str]:
        return [h.head for h in self.heads if h.role == "backup"]

    def summary(self) -> str:
        lines = [f"main heads {', '.join(self.main)} ({self.ablation} ablation, {self.metric}, {self.n_prompts} "
                 f"prompts): damage {self.main_damage:.3f}; " + self.decisions.describe()]
        for h in sorted(self.heads, key=lambda h: -abs(h.growth)):
            if h.role != "neither":
                lines.append(f"  {h.head}: alone {h.alone:+.3f}, with the main heads ablated {h.given_main:+.3f} "
                             f"(growth {h.growth:+.3f}, share {h.share:+.2f}, Holm p {h.pvalue_adjusted:.3g}): {h.role}")
        for sa in (self.main_additivity, self.with_backups):
            if sa is not None:
                lv = round(100 * sa.confidence_level)
                lines.append(f"  {'+'.join(sa.heads)}: joint {sa.joint:.3f} vs summed singles {sa.summed:.3f}, "
                             f"difference {sa.difference:+.3f} ({lv}% CI [{sa.ci_low:.3f}, {sa.ci_high:.3f}], "
                             f"{sa.ci_method}; p {sa.pvalue:.3g}, one-sided)")
        return "\n".join(lines)

    def _table(self) -> Table:
        """The heads whose damage grows (or shrinks) most without the main heads, with the growth's share of
        the gap, its interval and Holm's p; the super-additivity tests in the notes."""
        fam = {d.site: d for d in self.decisions.sites}
        rows = [(h.head, h.alone, h.given_main, h.growth, h.share,
                 interval(fam[h.head].ci_low, fam[h.head].ci_high), h.pvalue_adjusted, h.role)
                for h in ranked(self.heads, key=lambda h: h.growth)]
        additivity = [f"{'+'.join(sa.heads)}: joint damage {sa.joint:.3f} vs summed singles {sa.summed:.3f}, "
                      f"difference "
                      f"{sa.difference:+.3f} {interval(sa.ci_low, sa.ci_high)} ({sa.ci_method}), p {sa.pvalue:.3g} "
                      f"({sa.test}, one-sided)" for sa in (self.main_additivity, self.with_backups) if sa is not None]
        return Table(f"BackupReport: main heads {', '.join(self.main)}; backups: "
                     f"{', '.join(self.backups) or 'none'}",
                     ("head", "alone", "given main", "growth", "share", percent(self.decisions.confidence_level),
                      f"p_adj ({self.decisions.correction})", "role"), rows,
                     notes=[f"{self.ablation} ablation, metric {self.metric}, {self.n_prompts} prompts; damage of the "
                            f"main heads {self.main_damage:.3f}; growth = damage given the main heads ablated - alone",
                            f"test: {self.decisions.describe()}", *additivity], noun="head")


def super_additivity(joint: np.ndarray, singles: np.ndarray, heads: Sequence[str], *, confidence_level: float = 0.95,
                     n_resamples: int = 2000, rng: int = 0) -> SuperAdditivity:
    """``joint [n]`` damage of a set against ``singles [k, n]``, its members' single damages."""
    from circuitry.stats import mean_interval, skew_t_pvalue

    joint = np.asarray(joint, dtype=float)
    singles = np.atleast_2d(np.asarray(singles, dtype=float))
    diff = joint - singles.sum(0)
    lo, hi, _, used = mean_interval(diff, confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
    return SuperAdditivity(heads=list(heads), joint=float(joint.mean()), summed=float(singles.sum(0).mean()),
                           difference=float(diff.mean()), ci_low=float(lo), ci_high=float(hi), ci_method=used,
                           confidence_level=confidence_level,
                           pvalue=float(skew_t_pvalue(diff, alternative="greater")), n_prompts=int(diff.size))


def decide_backups(alone: np.ndarray, given_main: np.ndarray, gap: np.ndarray, labels: Sequence[str], *,
                   alpha: float = 0.05, min_share: float = MIN_SHARE) -> tuple[SiteDecisions, list[HeadBackup]]:
    """The growth decision on arrays: ``alone [H, n]`` and ``given_main [H, n]`` damages, ``gap [n]`` the
    task's clean-corrupted gap oriented like the damages (positive). Holm over the ``H`` heads."""
    alone, given = np.asarray(alone, dtype=float), np.asarray(given_main, dtype=float)
    fam = decide_sites(given - alone, gap, labels=list(labels), level="head", alpha=alpha, min_share=min_share,
                       correction="holm")
    out = []
    for i, d in enumerate(fam.sites):
        role = ("backup" if d.mean_change > 0 else "dependent") if d.member else "neither"
        out.append(HeadBackup(head=d.site, alone=float(alone[i].mean()), given_main=float(given[i].mean()),
                              growth=d.mean_change, share=d.share, pvalue=d.pvalue, pvalue_adjusted=d.pvalue_adjusted,
                              role=role))
    return fam, out


def backup_heads(model, data, main: Sequence[str], *, heads: Sequence[str] | None = None, ablation: str = "mean",
                 metric: str | None = None, alpha: float = 0.05, min_share: float = MIN_SHARE,
                 confidence_level: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                 max_rows: int | None = None) -> BackupReport:
    """Conditional co-ablation of ``heads`` (default: every head not in ``main``) with the ``main`` heads.

    Parameters
    ----------
    model, data
        A loaded model and prompt pairs (the corrupted prompts give the gap the shares are taken of).
    main
        The circuit's main heads, e.g. ``["L1H0"]``.
    ablation
        ``"zero"``, ``"mean"`` (over the prompts) or ``"resample"`` (:mod:`circuitry.interventions.ablation`).
    metric
        Default: the task's metric, else ``"logit_diff"``.
    alpha, min_share
        Level after Holm over the heads, and the smallest share of the gap that matters.
    confidence_level, n_resamples, seed
        The super-additivity intervals (studentized bootstrap; ``seed`` also seeds resample ablation).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> m = load_model("zoo:attn-only-2l"); d = make_task("induction", m, n_prompts=8)
    >>> rep = backup_heads(m, d, ["L1H0"], heads=["L1H2", "L0H0"], n_resamples=200)
    >>> [h.head for h in rep.heads]
    ['L1H2', 'L0H0']
    """
    import torch

    from circuitry.interventions.ablation import head_set_effect_fn
    from circuitry.labels import head_label, parse_head
    from circuitry.metrics import Targets, get_metric
    from circuitry.provenance import make_provenance

    info = model.info
    main = [head_label(*parse_head(h)) for h in main]
    if not main or len(set(main)) != len(main):
        raise bad_value("main", main, "one or more distinct heads", "e.g. main=['L1H0']")
    everyone = [head_label(l, h) for l in range(info.n_layers) for h in range(info.n_heads)]
    heads = [h for h in everyone if h not in main] if heads is None else [head_label(*parse_head(h)) for h in heads]
    if not heads or set(heads) & set(main):
        raise bad_value("heads", heads, "one or more heads not among the main heads", "leave it unset for every other")
    name = metric or data.metric or "logit_diff"
    ids, cids = data.clean_ids(model.device), data.corrupted_ids(model.device)
    with torch.no_grad():
        clean_logits = model.run(ids).logits
        corr_logits = model.run(cids).logits
    targets = Targets.of(data, device=model.device, metric=name, clean_logits=clean_logits)
    fn = get_metric(name)
    gap = (fn(clean_logits, targets) - fn(corr_logits, targets)).float().cpu().numpy().astype(float)
    s = 1.0 if gap.mean() >= 0 else -1.0
    effect = head_set_effect_fn(model, ids, targets, method=ablation, metric=name, seed=seed, max_rows=max_rows,
                                sign=-s, mask=data.mask(model.device) if data.padded else None)  # damage: positive when the behaviour is lost
    singles_needed = list(dict.fromkeys(heads + main))
    sets = [[h] for h in singles_needed] + [main] + [main + [h] for h in heads]
    dmg = effect.per_prompt(sets)  # [set, n]
    single = dict(zip(singles_needed, dmg[:len(singles_needed)]))
    d_main = dmg[len(singles_needed)]
    given = dmg[len(singles_needed) + 1:] - d_main[None]
    alone = np.stack([single[h] for h in heads])
    fam, rows = decide_backups(alone, given, s * gap, heads, alpha=alpha, min_share=min_share)
    main_add = (super_additivity(d_main, np.stack([single[h] for h in main]), main, confidence_level=confidence_level,
                                 n_resamples=n_resamples, rng=seed) if len(main) > 1 else None)
    backups = [r.head for r in rows if r.role == "backup"]
    with_b = None
    if backups:
        joint = effect.per_prompt([main + backups])[0]
        with_b = super_additivity(joint, np.stack([single[h] for h in main + backups]), main + backups,
                                  confidence_level=confidence_level, n_resamples=n_resamples, rng=seed)
    return BackupReport(main=main, ablation=ablation, metric=name, n_prompts=len(data), main_damage=float(d_main.mean()),
                        heads=rows, decisions=fam, main_additivity=main_add, with_backups=with_b, seed=seed,
                        provenance=make_provenance(model, dataset=data, seed=seed, task=data.task))
