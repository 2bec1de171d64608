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


def colour_limits(values, *, natural: tuple[float, float] | None = None, center: float | None = None,
                  limit: float | None = None, vmin: float | None = None,
                  vmax: float | None = None) -> tuple[float, float]:
    """The ``(vmin, vmax)`` of a colour scale, so that colour does not overstate a value.

    In order of precedence: ``vmin``/``vmax`` (the caller's explicit limits; a missing end comes from the rules
    below); ``center`` with ``limit`` (a diverging scale ``center -+ limit``); ``natural``, the quantity's own
    range (shares of the gap ``(-1, 1)``, attention shares ``(0, 1)``), fixed whatever the data, so a score of
    0.06 is drawn near the bottom of ``[0, 1]``, not at the top of ``[0, 0.06]``; otherwise the scale is
    anchored at 0: ``[0, max]`` or ``[min, 0]`` when the values have one sign, symmetric about 0 when they
    have both (or about ``center``, half-width the largest distance from it). Values outside the limits are
    drawn in the end colours (:func:`heatmap` marks the colour bar with arrows).

    >>> colour_limits([[0.06, 0.01]], natural=(0, 1)), colour_limits([[0.06, 0.01]])
    ((0.0, 1.0), (0.0, 0.06))
    >>> colour_limits([[-0.2, 0.5]]), colour_limits([[0.001, -0.001]], natural=(-1, 1), center=0.0)
    ((-0.5, 0.5), (-1.0, 1.0))
    """
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if center is not None and limit is not None:
        auto = (center - limit, center + limit)
    elif natural is not None:
        auto = (float(natural[0]), float(natural[1]))
    elif center is not None or lo < 0 < hi:
        c = 0.0 if center is None else center
        span = max(abs(lo - c), abs(hi - c)) or 1.0
        auto = (c - span, c + span)
    else:
        auto = (min(lo, 0.0), max(hi, 0.0))
        if auto[1] <= auto[0]:
            auto = (auto[0], auto[0] + 1.0)
    out = (auto[0] if vmin is None else float(vmin), auto[1] if vmax is None else float(vmax))
    if not out[1] > out[0]:
        raise ValueError(f"colour limits vmin={out[0]} and vmax={out[1]}: vmax must be larger than vmin")
    return out


def heatmap(values, path: str | Path, *, title: str, xlabel: str = "head", ylabel: str = "layer",
            xticklabels: Sequence[str] | None = None, yticklabels: Sequence[str] | None = None,
            cbar_label: str, center: float | None = None, annotate: bool = True,
            cmap: str | None = None, limit: float | None = None, natural: tuple[float, float] | None = None,
            vmin: float | None = None, vmax: float | None = None) -> Path:
    """Draw a 2-D array (rows = ``ylabel``, columns = ``xlabel``) as an annotated heatmap.

    ``cbar_label`` names the quantity on the colour bar (required: a colour without a name is no
    evidence). The colour limits are :func:`colour_limits` of ``natural`` (the quantity's own range, e.g.
    ``(-1, 1)`` for shares of the gap), ``center`` (a diverging map symmetric around it; ``limit`` fixes its
    half-width, so that figures compared side by side share one scale) and the caller's ``vmin``/``vmax``;
    without any, the scale is anchored at 0. A scale that reaches below 0 (or is centred) uses a diverging
    map, ``RdBu_r``, whose white is the centre; a scale from 0 up ``viridis``. Values beyond the limits are
    drawn in the end colours and the colour bar gets an arrow at that end."""
    if not cbar_label:
        raise ValueError("heatmap needs cbar_label naming the quantity its colours show")
    plt = _plt()
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {arr.shape}")
    lo, hi = colour_limits(arr, natural=natural, center=center, limit=limit, vmin=vmin, vmax=vmax)
    diverging = center is not None or lo < 0 < hi
    cm = plt.get_cmap(cmap or ("RdBu_r" if diverging else "viridis"))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * arr.shape[1] + 2), max(2.5, 0.5 * arr.shape[0] + 1.5)))
    im = ax.imshow(arr, cmap=cm, aspect="auto", vmin=lo, vmax=hi)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(arr.shape[1]), xticklabels if xticklabels is not None else range(arr.shape[1]),
                  rotation=90 if xticklabels is not None and arr.shape[1] > 12 else 0)
    ax.set_yticks(range(arr.shape[0]), yticklabels if yticklabels is not None else range(arr.shape[0]))
    if annotate and arr.size <= 400:
        for (r, c), v in np.ndenumerate(arr):
            if np.isfinite(v):
                red, green, blue, _ = cm(im.norm(v))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if dark else "black")
    import textwrap

    finite = arr[np.isfinite(arr)]
    below, above = finite.size and finite.min() < lo, finite.size and finite.max() > hi
    width = max(30, int(12 * (max(2.5, 0.5 * arr.shape[0] + 1.5))))  # characters that fit the bar's height
    fig.colorbar(im, ax=ax, label="\n".join(textwrap.wrap(cbar_label, width)),
                 extend="both" if below and above else "min" if below else "max" if above else "neither")
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
