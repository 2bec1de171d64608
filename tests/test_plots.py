"""Figures that do not lie (issue 29, point 4): every colour scale sits on its quantity's natural range (shares of
the gap [-1, 1] centred on 0, attention-share scores [0, 1], composition symmetric about 0), unless the caller
passes limits, and every colour bar names its quantity. Each test reads the drawn figure itself."""

from __future__ import annotations

import numpy as np
import pytest

import circuitry.plots as plots
from circuitry.provenance import NamedArray, Provenance


@pytest.fixture
def figures(monkeypatch):
    """The figures saved during a test (instead of closing them), as ``(clim, colour bar label, cmap)``."""
    seen = []

    def keep(fig, path, *, dpi=150):
        im = fig.axes[0].images[0]
        seen.append((im.get_clim(), fig.axes[-1].get_ylabel().replace("\n", " "), im.cmap, im.norm))
        plots._plt().close(fig)
        return path

    monkeypatch.setattr(plots, "save_figure", keep)
    return seen


def patch_result(shares: np.ndarray):
    """A noising PatchResult whose heads carry ``shares`` of a gap of 2 (clean 2, corrupted 0)."""
    from circuitry.interventions.results import PatchResult

    mean = 2.0 - 2.0 * shares  # noising: share = (M_clean - M_patched) / gap
    per_prompt = mean[..., None] + np.zeros(4)
    ax = ("layer", "head")
    return PatchResult(site="z", direction="noising", metric="logit_diff",
                       effect=NamedArray.from_array(1 - shares, ax), metric_mean=NamedArray.from_array(mean, ax),
                       per_prompt=NamedArray.from_array(per_prompt, (*ax, "prompt")), clean=[2.0] * 4,
                       corrupted=[0.0] * 4, n_prompts=4, provenance=Provenance(model_id="m"))


def test_noise_in_a_share_of_the_gap_is_drawn_white(figures, tmp_path):
    from circuitry.metrics import share_label

    res = patch_result(np.array([[0.001, -0.001], [0.0005, -0.0002]]))
    np.testing.assert_allclose(res.share.numpy(), [[0.001, -0.001], [0.0005, -0.0002]], atol=1e-12)
    res.heatmap(tmp_path / "p.png")
    (clim, label, cmap, norm), = figures
    assert clim == (-1.0, 1.0)
    assert label == share_label("logit_diff", "noising", short=True)
    r, g, b, _ = cmap(norm(0.001))
    assert min(r, g, b) > 0.9  # near white (the centre), where the data-stretched scale drew saturated red
    res.heatmap(tmp_path / "q.png", vmin=-0.01, vmax=0.01)  # the caller's limits win
    assert figures[-1][0] == (-0.01, 0.01)


def test_a_duplicate_token_score_of_006_is_not_drawn_near_the_top(figures, tmp_path, zoo_2l):
    from circuitry.models import load_model
    from circuitry.scores import score_heads

    s = score_heads(load_model(zoo_2l), ["duplicate_token"], n_samples=4, seed=0)["duplicate_token"]
    top = float(np.nanmax(s.numpy()))
    assert 0.04 < top < 0.1  # the shipped model has no duplicate-token head
    s.heatmap(tmp_path / "d.png")
    (clim, label, cmap, norm), = figures
    assert clim == (0.0, 1.0)
    assert label == "duplicate_token score (mean over sequences)"
    assert norm(top) < 0.1  # a tenth of the way up the scale, not its top colour


def test_a_score_outside_zero_one_is_anchored_at_zero(figures, tmp_path):
    from circuitry.scores.results import HeadScores

    hs = HeadScores(name="ablation_loss", description="nats", values=NamedArray.from_array(
        np.array([[3.5, 0.2], [0.1, 0.0]]), ("layer", "head")), provenance=Provenance())
    hs.heatmap(tmp_path / "a.png")
    assert figures[0][0] == (0.0, 3.5)


def test_composition_is_symmetric_and_noise_stays_pale(figures, tmp_path):
    from circuitry.scores.results import CompositionScores

    raw = np.full((2, 2, 2, 2), np.nan)
    raw[0, :, 1, :] = 0.125 + np.array([[0.004, -0.003], [0.002, 0.001]])  # within the baseline's noise
    ax = ("src_layer", "src_head", "dst_layer", "dst_head")
    c = CompositionScores(kind="K", raw=NamedArray.from_array(raw, ax),
                          subtracted=NamedArray.from_array(raw - 0.125, ax), baseline_mean=0.125, baseline_std=0.007,
                          baseline_n_draws=100, baseline_distribution="gaussian", convention="row",
                          provenance=Provenance())
    c.heatmap(tmp_path / "k.png")
    (clim, label, cmap, norm), = figures
    assert clim == pytest.approx((-0.021, 0.021))  # 3 baseline sd, not the largest |value| 0.004
    assert "K-composition score minus random-matrix baseline" in label
    assert abs(norm(0.004) - 0.5) < 0.1


def test_catalogue_excess_is_on_a_fixed_scale(figures, tmp_path):
    from circuitry.scores.results import HeadScores, plot_catalogue
    from circuitry.scores.significance import HeadSignificance

    ax = ("layer", "head")
    excess = np.array([[0.05, 0.0], [0.01, -0.02]])
    z = NamedArray.from_array(np.zeros((2, 2)), ax)
    sig = HeadSignificance(null=z, excess=NamedArray.from_array(excess, ax), statistic=z, pvalue=z,
                           adjusted_pvalue=z, significant=[], min_effect=0.1, alpha=0.05, method="holm",
                           controls="FWER", null_description="placebo", n_samples=4)
    hs = HeadScores(name="induction", description="", values=NamedArray.from_array(excess + 0.05, ax),
                    significance=sig, provenance=Provenance())
    plot_catalogue({"induction": hs}, tmp_path / "c.png")
    (clim, label, cmap, norm), = figures
    assert clim == (-1.0, 1.0)  # was (-0.05, 0.05): an excess of 0.05 drawn as the strongest red
    assert label.startswith("mean score minus null score")


def test_heatmap_rejects_inverted_limits(tmp_path):
    with pytest.raises(ValueError, match="vmax must be larger than vmin"):
        plots.heatmap(np.ones((2, 2)), tmp_path / "x.png", title="t", cbar_label="x", vmin=1.0, vmax=0.0)


def test_graph_node_colours_use_the_natural_range(tmp_path):
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from circuitry.errors import InputError
    from circuitry.graph import EdgeMeasurement, build_graph, draw_graph

    e = [EdgeMeasurement(source="L0H1", target="L1H2", kind="q", effect=0.3)]
    G = build_graph(n_layers=2, n_heads=4, edges=e, node_scores={"s": {"L0H1": 0.06, "L1H2": 0.02}})
    (svg,) = draw_graph(G, tmp_path / "a.svg", node_score="s", node_range=(0.0, 1.0), node_label="score")
    fills = svg.read_text().lower()
    viridis = colormaps["viridis"]
    assert to_hex(viridis(0.06)) in fills and to_hex(viridis(1.0)) not in fills  # 0.06 is dark, not the top colour
    (svg,) = draw_graph(G, tmp_path / "b.svg", node_score="s", node_label="score")  # without: from 0 to the largest
    assert to_hex(viridis(1.0)) in svg.read_text().lower()
    with pytest.raises(InputError, match="node_range"):
        draw_graph(G, tmp_path / "c.png", node_score="s", node_range=(1.0, 0.0))
