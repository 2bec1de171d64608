"""Markdown summary and figure of a :class:`~circuitry.decodability.run.DecodabilityResult`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from circuitry.decodability.run import DecodabilityResult


def markdown(r: "DecodabilityResult") -> str:
    """Accuracy by ``k`` and layer (Holm-adjusted p), the null, then decodability against task accuracy."""
    acc, adj, null = r.accuracy.numpy(), r.adjusted_pvalue.numpy(), r.shuffled_mean.numpy()
    s = r.settings
    lines = [f"# Task decodability: {r.provenance.model_id}", "",
             f"Tasks: {', '.join(r.tasks)} (chance {r.chance:.2f}); {s['n_prompts']} prompts; probe: {s['classifier']} "
             f"(ridge {s['ridge']}), {s['n_folds']}-fold cross-validation on held-out prompts; null: "
             f"{s['n_permutations']} shuffled-label refits; p-values Holm-adjusted over all cells.", "",
             "| examples k | " + " | ".join(f"{lay}: accuracy (shuffled) p" for lay in r.layers) + " |",
             "|---|" + "---|" * len(r.layers)]
    for i, k in enumerate(r.n_examples):
        cells = [f"{acc[i, j]:.2f} ({null[i, j]:.2f}) {adj[i, j]:.3g}" for j in range(len(r.layers))]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    rec, ta = r.recall.numpy(), r.task_accuracy.numpy()
    best = [int(np.argmax(acc[i])) for i in range(len(r.n_examples))]
    lines += ["", "Decodability (recall at the best layer) against the model's task accuracy (top-1):", "",
              "| task | solved | " + " | ".join(f"k={k}: recall / accuracy" for k in r.n_examples) + " |",
              "|---|---|" + "---|" * len(r.n_examples)]
    for c, t in enumerate(r.tasks):
        cells = [f"{rec[i, best[i], c]:.2f} / {ta[i, c]:.2f}" for i in range(len(r.n_examples))]
        lines.append(f"| {t} | {'yes' if r.solved[t] else 'no'} | " + " | ".join(cells) + " |")
    unsolved = [t for t in r.tasks if not r.solved[t]]
    if unsolved:
        lines += ["", f"Not solved by this model (accuracy < {r.solved_threshold} with {r.n_examples[-1]} examples): "
                  f"{', '.join(unsolved)}."]
    return "\n".join(lines) + "\n"


def plot(r: "DecodabilityResult", path: str | Path) -> Path:
    """Three panels: accuracy heatmap (layer x k), accuracy vs k per layer with the shuffled null, and per
    task the recall at the best layer (dashed) with the model's task accuracy (solid)."""
    from circuitry.plots import _plt, save_figure

    plt = _plt()
    acc, null, sd = r.accuracy.numpy(), r.shuffled_mean.numpy(), r.shuffled_sd.numpy()
    ks = r.n_examples
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    im = axes[0].imshow(acc.T, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
    axes[0].set_xticks(range(len(ks)), ks)
    axes[0].set_yticks(range(len(r.layers)), r.layers)
    for (i, j), v in np.ndenumerate(acc):
        axes[0].text(i, j, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    axes[0].set(xlabel="in-context examples k", ylabel="layer (residual at the query)", title="task decodability")
    fig.colorbar(im, ax=axes[0], label="cross-validated accuracy")
    x = np.arange(len(ks))
    for j, lay in enumerate(r.layers):
        axes[1].plot(x, acc[:, j], marker="o", label=lay)
    axes[1].fill_between(x, null.mean(1) - 2 * np.nanmax(sd, 1), null.mean(1) + 2 * np.nanmax(sd, 1), color="grey",
                         alpha=0.3, label="shuffled labels (+-2 sd)")
    axes[1].axhline(r.chance, color="k", ls=":", lw=1, label=f"chance {r.chance:.2f}")
    axes[1].set_xticks(x, ks)
    axes[1].set(xlabel="in-context examples k", ylabel="cross-validated accuracy", ylim=(0, 1.05),
                title="decodability vs shuffled labels")
    axes[1].legend(fontsize=7)
    rec, ta = r.recall.numpy(), r.task_accuracy.numpy()
    best = [int(np.argmax(acc[i])) for i in range(len(ks))]
    for c, t in enumerate(r.tasks):
        line, = axes[2].plot(x, ta[:, c], marker="o", label=f"{t}: task accuracy")
        axes[2].plot(x, [rec[i, best[i], c] for i in range(len(ks))], ls="--", color=line.get_color(),
                     label=f"{t}: decoded (best layer)")
    axes[2].set_xticks(x, ks)
    axes[2].set(xlabel="in-context examples k", ylabel="share of prompts", ylim=(0, 1.05),
                title="per task: decoded vs solved")
    axes[2].legend(fontsize=6, ncol=2)
    fig.suptitle(f"{r.provenance.model_id}: tasks {', '.join(r.tasks)}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
