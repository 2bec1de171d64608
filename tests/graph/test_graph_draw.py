from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from circuitry.errors import InputError
from circuitry.graph import draw_graph, layered_layout


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_layered_layout(small_graph):
    pos = layered_layout(small_graph)
    assert pos["embed"] == (-1.0, 0.0) and pos["logits"] == (2.0, 0.0)
    assert pos["MLP0"] == (0.5, 0.0)
    assert pos["L0H0"] == (0.0, 1.0) and pos["L0H2"] == (0.0, -1.0) and pos["L1H1"] == (1.0, 0.0)


def test_draw_png_and_svg(small_graph, tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    png, svg = draw_graph(small_graph, [tmp_path / "g.png", tmp_path / "g.svg"], node_score="induction_score",
                          figsize=(6, 4), dpi=50)
    assert png_size(png.read_bytes()) == (300, 200)
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and text.rstrip().endswith("</svg>")
    for colour in ("#1f77b4", "#d62728", "#2ca02c", "#7f3fbf"):  # an arrow (and legend entry) per kind
        assert colour in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "g.svg"]
    assert matplotlib.get_backend() == backend  # drawing does not switch the session's backend


def test_draw_single_path_and_kind_filter(small_graph, tmp_path):
    (svg,) = draw_graph(small_graph, tmp_path / "k.svg", kinds=["k"])
    text = svg.read_text()
    assert "#d62728" in text and "#1f77b4" not in text and "#7f3fbf" not in text


def test_draw_errors(small_graph, tmp_path):
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        draw_graph(small_graph, tmp_path / "g.jpg")
    with pytest.raises(InputError, match="node_score='nope'"):
        draw_graph(small_graph, tmp_path / "g.png", node_score="nope")
    with pytest.raises(InputError, match="kinds='x'"):
        draw_graph(small_graph, tmp_path / "g.png", kinds=["x"])
    with pytest.raises(InputError, match="attr='nope'"):
        draw_graph(small_graph, tmp_path / "g.png", attr="nope")
    assert not list(tmp_path.iterdir())


def test_import_is_light():
    code = "import sys, circuitry.graph; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
