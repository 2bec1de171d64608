"""Markdown summary and figure of a :class:`~circuitry.dynamics.series.DynamicsResult`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from circuitry.labels import head_label

if TYPE_CHECKING:
    from circuitry.dynamics.series import DynamicsResult


def markdown(r: "DynamicsResult") -> str:
    """Markdown: the located window(s), then one row per checkpoint."""
    lines = [f"# Phase change: {r.series}", "", f"* {r.phase_change.describe()}."]
    if r.log_phase_change is not None:
        lines.append(f"* {r.log_phase_change.describe()}.")
    lines.append(f"* held-out sequences: {r.heldout_source.get('kind')} ({r.heldout_source.get('n')} sequences; "
                 f"sha256 {r.provenance.dataset_sha256[:12]}...)")
    if r.tracked_pair:
        lines.append(f"* K-composition tracked: {r.tracked_pair[0]} -> {r.tracked_pair[1]} (the best previous-token "
                     f"and induction heads at the last checkpoint); random baseline {r.k_baseline_mean:.3f} "
                     f"+- {r.k_baseline_std:.3f}")
    lines += ["", "| step | ICL score (nats) [95% CI] | held-out loss | best prev-token | best prefix-matching "
              "| K-comp (tracked) |", "|---|---|---|---|---|---|"]
    prev, ind = r.curve("prev_token"), r.curve("induction")
    for i, c in enumerate(r.checkpoints):
        n_layers = c.prev_token.shape[0]
        (pl, ph), *_ = c.best("prev_token", layers=range(max(n_layers - 1, 1)))
        (il, ih), *_ = c.best("induction")
        kc = "" if r.tracked_k_composition is None else f"{r.tracked_k_composition[i]:.3f}"
        lines.append(f"| {c.step} | {c.icl:.3f} [{c.icl_ci_low:.3f}, {c.icl_ci_high:.3f}] | {c.heldout_loss:.3f} | "
                     f"{head_label(pl, ph)} {prev[i, 0]:.2f} | {head_label(il, ih)} {ind[i, 0]:.2f} | {kc} |")
    lines += ["", f"Rule: {r.phase_change.criteria} (circuitry.dynamics.phase). "
              f"circuitry {r.provenance.library_version}, seed {r.provenance.seed}."]
    return "\n".join(lines) + "\n"


def plot(r: "DynamicsResult", path: str | Path) -> Path:
    """Four panels on one time axis: ICL score, loss, best head scores, tracked K-composition; the
    window located on the checkpoints shaded dark, the one on the training log light."""
    from circuitry.plots import _plt, save_figure

    plt = _plt()
    steps = r.steps
    fig, axes = plt.subplots(4, 1, figsize=(7.5, 9.5), sharex=True)
    icl, prev, ind = r.curve("icl"), r.curve("prev_token"), r.curve("induction")
    log = r.training_log
    ax = axes[0]
    ax.errorbar(steps, icl[:, 0], yerr=[icl[:, 0] - icl[:, 1], icl[:, 2] - icl[:, 0]], marker="o", color="C3",
                capsize=3, label="ICL score, held-out (checkpoints)")
    if log is not None:
        ax.plot(log.steps, log.icl_proxy, color="C3", ls="--", lw=1, alpha=0.7,
                label="last minus first repeat, probes (training log)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("ICL score (nats,\nlate - early)")
    ax.legend(fontsize=7)
    ax = axes[1]
    loss = [c.heldout_loss for c in r.checkpoints]
    sem = [2 * c.heldout_loss_sem for c in r.checkpoints]
    ax.errorbar(steps, loss, yerr=sem, marker="o", color="k", capsize=3, label="held-out loss (checkpoints)")
    if log is not None:
        ax.plot(log.steps, log.train_loss, color="grey", ls="--", lw=1, label="training loss (training log)")
    ax.set_ylabel("loss (nats)")
    ax.legend(fontsize=7)
    ax = axes[2]
    for arr, col, lab in ((prev, "C0", "best previous-token"), (ind, "C2", "best prefix-matching")):
        ax.errorbar(steps, arr[:, 0], yerr=[arr[:, 0] - arr[:, 1], arr[:, 2] - arr[:, 0]], marker="o", color=col,
                    capsize=3, label=f"{lab} (checkpoints)")
    if log is not None:
        ax.plot(log.steps, log.best_prev_token, color="C0", ls="--", lw=1, alpha=0.7, label="prev-token (log)")
        ax.plot(log.steps, log.best_induction, color="C2", ls="--", lw=1, alpha=0.7, label="prefix-matching (log)")
    ax.set_ylabel("head score\n(attention share)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax = axes[3]
    if r.tracked_k_composition is not None:
        ax.plot(steps, r.tracked_k_composition, marker="o", color="C4",
                label=f"K-composition {r.tracked_pair[0]} -> {r.tracked_pair[1]}")
        ax.axhspan(r.k_baseline_mean - r.k_baseline_std, r.k_baseline_mean + r.k_baseline_std, color="grey",
                   alpha=0.3, label="random heads (mean +- sd)")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "1 layer: no composition", transform=ax.transAxes, ha="center")
    ax.set_ylabel("K-composition\n(raw)")
    ax.set_xlabel("training step")
    found = []
    for pc, alpha, col in ((r.phase_change, 0.35, "gold"), (r.log_phase_change, 0.25, "tab:orange")):
        if pc is not None and pc.found:
            found.append(f"steps {pc.window[0]}-{pc.window[1]} ({pc.source})")
            for i, a in enumerate(axes):
                a.axvspan(*pc.window, color=col, alpha=alpha, lw=0,
                          label=f"phase change, {pc.source}" if i == 0 else None)
    axes[0].legend(fontsize=7)
    title = "phase change at " + ", ".join(found) if found else "no phase change found"
    fig.suptitle(f"{r.series}: {title}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
