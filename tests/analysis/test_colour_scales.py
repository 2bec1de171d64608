"""Colour scales of circuitry's heatmaps are anchored at 0 (issue 22, point 8)."""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.plots import heatmap


@pytest.fixture
def scales(monkeypatch):
    from matplotlib.axes import Axes

    seen = []
    real = Axes.imshow

    def spy(self, X, *a, **kw):
        im = real(self, X, *a, **kw)
        seen.append(im.get_clim())
        return im

    monkeypatch.setattr(Axes, "imshow", spy)
    return seen


def test_heatmap_scales_start_at_zero(scales, tmp_path):
    heatmap(np.array([[0.3, 0.9], [0.5, np.nan]]), tmp_path / "a.png", title="t", cbar_label="score")
    heatmap(np.array([[-0.7, -0.2]]), tmp_path / "b.png", title="t", cbar_label="score")
    heatmap(np.array([[-0.2, 0.5]]), tmp_path / "c.png", title="t", cbar_label="share", center=0.0)
    assert scales == [pytest.approx((0.0, 0.9)), pytest.approx((-0.7, 0.0)), pytest.approx((-0.5, 0.5))]
