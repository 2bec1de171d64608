"""Render ``report.html``: one self-contained page that works offline.

The page inlines cytoscape.js (Franz et al. 2016, "Cytoscape.js: a graph theory library for visualisation
and analysis", Bioinformatics 32(2); version :data:`CYTOSCAPE_VERSION`, MIT, licence in
``circuitry/viewer/assets/cytoscape.LICENSE``), circuitry's own ``viewer.js`` and ``viewer.css``, and the
page data of :mod:`circuitry.viewer.data` as a JSON block. Its Content-Security-Policy allows no request
to any server: nothing is fetched, the page only links to the figures beside it.

Every text that comes from the files (a task name from a user's task file, a finding, a path) is escaped:
:func:`html.escape` in the HTML, ``<``, ``>`` and ``&`` as JSON unicode escapes in the data block, and the
script writes text with ``textContent`` only, never as HTML.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from pathlib import Path

from circuitry.errors import InputError

CYTOSCAPE_VERSION = "3.35.0"
"""The bundled cytoscape.js (``circuitry/viewer/assets/cytoscape.min.js``, unchanged from npm)."""

NODE_COLORS: dict[str, str] = {"embed": "#17becf", "head": "#c7d3e3", "kv_group": "#f2e6c9", "mlp": "#ff9f40",
                               "logits": "#555555"}
"""Colour of each node type on the page (edges take :data:`circuitry.graph.KIND_COLORS`)."""

_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'")


@cache
def asset(name: str) -> str:
    """The text of a file in ``circuitry/viewer/assets`` (refused if it could end the ``<script>`` it goes in)."""
    text = resources.files("circuitry.viewer").joinpath("assets", name).read_text(encoding="utf-8")
    if "</script" in text.lower() and name.endswith(".js"):
        raise InputError(f"asset {name} contains '</script', which would end the inline script it is put in. "
                         "Fix: restore the shipped file (circuitry/viewer/assets/README.md)")
    return text


def json_for_script(obj) -> str:
    """``obj`` as JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``
    (written as ``\\u003c`` etc., which JSON.parse reads back unchanged), no NaN (``null``)."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _dl(items: dict, dl_id: str) -> str:
    rows = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items.items())
    return f'<dl id="{dl_id}">{rows}</dl>'


def _links(items: list[dict], ul_id: str) -> str:
    if not items:
        return f'<p id="{ul_id}">none</p>'
    lis = "".join(f'<li><a href="{html.escape(i["href"], quote=True)}">{html.escape(i["label"])}</a></li>'
                  for i in items)
    return f'<ul id="{ul_id}" class="links">{lis}</ul>'


def render_html(data: dict) -> str:
    """The page for ``data`` (:func:`circuitry.viewer.data.page_data`) as one HTML string."""
    from circuitry.graph import KIND_COLORS

    e = html.escape
    findings = "".join(f'<li class="{"holds" if f["holds"] else "fails"}"><b>{"Holds" if f["holds"] else "Does not hold"}'
                       f":</b> {e(f['claim'])}</li>" for f in data.get("findings", []))
    head = data.get("header", {})
    summary = " · ".join(f"{k.lower()} {head[k]}" for k in ("Seed", "Direction", "Methods", "Ablation", "Gap")
                              if k in head)
    heads = ("; head size = |share| in activation patching; thick border = circuit head"
             if data.get("command") == "circuitry analyze" else "")
    views = data.get("views", [])
    select = "" if len(views) < 2 else (
        '<label>Method <select id="view-select">'
        + "".join(f'<option value="{i}">{e(v["name"])}</option>' for i, v in enumerate(views)) + "</select></label>")
    payload = {**data, "kind_colors": KIND_COLORS, "node_colors": NODE_COLORS}
    kinds = "".join(f'<label class="kind"><input type="checkbox" id="f-kind-{k}" checked>'
                    f'<span class="swatch" style="background:{c}"></span>{"out" if k == "out" else k.upper()}</label>'
                    for k, c in KIND_COLORS.items())
    nodes = "".join(f'<span class="legend-node"><span class="swatch" style="background:{c}"></span>{e(t)}</span>'
                    for t, c in NODE_COLORS.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{e(data["title"])}</title>
<style>{asset("viewer.css")}</style>
</head>
<body>
<header>
<h1 id="title">{e(data["title"])}</h1>
<div class="sub"><p id="summary">{e(summary)}</p>
<details><summary>Provenance</summary>{_dl(data.get("provenance", {}), "provenance")}</details></div>
<p id="note">{e(data.get("note", ""))}</p>
</header>
<main>
<aside id="controls">
{select}
<fieldset><legend>Filters (draw only what passes)</legend>
<label>max adjusted p <input id="f-maxp" type="number" min="0" max="1" step="any"></label>
<label>min |share| <input id="f-minshare" type="number" min="0" step="any"></label>
<div class="kinds">{kinds}<label class="kind"><input type="checkbox" id="f-mlp" checked>MLP nodes</label></div>
<label id="kept-label"><input type="checkbox" id="f-kept">kept circuit only</label>
<label><input type="checkbox" id="f-isolated">nodes without a drawn path</label>
<div class="buttons"><button id="f-reset" type="button">the run's thresholds</button>
<button id="f-all" type="button">everything</button><button id="f-fit" type="button">fit</button></div>
</fieldset>
<p id="counts">Drawn: <b id="count-nodes">0</b> nodes, <b id="count-edges">0</b> paths
(<span id="count-pairs">0</span> node pairs) of <span id="count-total">0</span> measured.</p>
<p id="count-note"></p>
<p id="test"></p>
<div class="legend">{nodes}<br>path width = |share|; dashed = negative share{heads}</div>
<div id="details"><p>Hover or click a node or a path for its numbers.</p></div>
</aside>
<div id="cy" aria-label="circuit graph"></div>
</main>
<section id="run">
{f'<h2>Findings</h2><ul id="findings">{findings}</ul>' if findings else ""}
<h2>Run</h2>{_dl(data.get("header", {}), "meta")}
</section>
<footer>
<h2>Figures</h2>{_links(data.get("figures", []), "figures")}
<h2>Files</h2>{_links(data.get("files", []), "files")}
<p>Written by {e(data.get("command", "circuitry"))} (circuitry {e(str(data.get("provenance", {}).get("library_version", "")))});
drawn with cytoscape.js {CYTOSCAPE_VERSION} (MIT licence), bundled into this file: it works offline.</p>
</footer>
<script type="application/json" id="circuitry-data">{json_for_script(payload)}</script>
<script>{asset("cytoscape.min.js")}</script>
<script>{asset("viewer.js")}</script>
</body>
</html>
"""


def write_report_html(directory: str | Path) -> Path:
    """Write ``report.html`` into an output folder of ``circuitry analyze`` or ``circuitry discover``, from the
    files that command wrote there (:func:`circuitry.viewer.data.page_data`); returns its path.

    Examples
    --------
    >>> write_report_html("circuitry-results")  # doctest: +SKIP
    PosixPath('circuitry-results/report.html')
    """
    from circuitry.io import atomic_write_text
    from circuitry.viewer.data import page_data

    d = Path(directory)
    return atomic_write_text(d / "report.html", render_html(page_data(d)))
