"""Figures shared by every analysis. matplotlib is imported inside the functions (Agg backend), so
importing circuitry never touches plotting state."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from circuitry.io import atomic_write_bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, dpi: int = 150) -> Path:
    """Save a matplotlib figure atomically (format from the suffix: .png, .svg, .pdf) and close it."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def heatmap(values, path: str | Path, *, title: str, xlabel: str = "head", ylabel: str = "layer",
            xticklabels: Sequence[str] | None = None, yticklabels: Sequence[str] | None = None,
            cbar_label: str, center: float | None = None, annotate: bool = True,
            cmap: str | None = None, limit: float | None = None) -> Path:
    """Draw a 2-D array (rows = ``ylabel``, columns = ``xlabel``) as an annotated heatmap.

    ``cbar_label`` names the quantity on the colour bar (required: a colour without a name is no
    evidence). ``center`` makes a diverging colour map symmetric around that value (use 0 for effects
    that can be negative, so negative heads stand out); ``limit`` fixes its half-width, so figures
    that are compared side by side share one scale. Without ``center`` the scale is anchored at 0: it
    runs from ``min(0, smallest value)`` to ``max(0, largest value)``, so a score of 0.3 is not drawn in
    the colour of 0 just because it is the smallest on the map."""
    if not cbar_label:
        raise ValueError("heatmap needs cbar_label naming the quantity its colours show")
    plt = _plt()
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {arr.shape}")
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * arr.shape[1] + 2), max(2.5, 0.5 * arr.shape[0] + 1.5)))
    kw = {}
    if center is None and np.isfinite(arr).any():
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        kw = {"vmin": min(lo, 0.0), "vmax": max(hi, 0.0) if max(hi, 0.0) > min(lo, 0.0) else 1.0}
    if center is not None:
        span = limit if limit is not None else (np.nanmax(np.abs(arr - center)) if np.isfinite(arr).any() else 1.0)
        span = span or 1.0
        kw = {"vmin": center - span, "vmax": center + span}
    im = ax.imshow(arr, cmap=cmap or ("RdBu_r" if center is not None else "viridis"), aspect="auto", **kw)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(arr.shape[1]), xticklabels if xticklabels is not None else range(arr.shape[1]),
                  rotation=90 if xticklabels is not None and arr.shape[1] > 12 else 0)
    ax.set_yticks(range(arr.shape[0]), yticklabels if yticklabels is not None else range(arr.shape[0]))
    if annotate and arr.size <= 400:
        for (r, c), v in np.ndenumerate(arr):
            if np.isfinite(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color=("white" if abs(v - center) > 0.6 * kw["vmax"] - 0.6 * center else "black")
                        if center is not None else ("white" if v - kw["vmin"] < 0.5 * (kw["vmax"] - kw["vmin"])
                                                    else "black"))
    import textwrap

    width = max(30, int(12 * (max(2.5, 0.5 * arr.shape[0] + 1.5))))  # characters that fit the bar's height
    fig.colorbar(im, ax=ax, label="\n".join(textwrap.wrap(cbar_label, width)))
    return save_figure(fig, path)


def message_figure(path: str | Path, title: str, message: str) -> Path:
    """A figure that says, in words, why there is nothing to draw (instead of drawing noise)."""
    import textwrap

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 2.2))
    ax.axis("off")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
    ax.text(0.5, 0.45, "\n".join(textwrap.wrap(message, 80)), ha="center", va="center", fontsize=10)
    return save_figure(fig, path)
