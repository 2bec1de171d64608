"""The interactive circuit page: ``report.html`` beside what ``circuitry analyze`` and ``circuitry discover`` write.

:func:`write_report_html` reads an output folder (its graph files and report JSON, :mod:`circuitry.viewer.data`)
and writes one self-contained page that works offline (:mod:`circuitry.viewer.page`): the graph by layer,
paths coloured by kind and as thick as their share of the gap, the numbers of every node and path on hover,
filters by adjusted p, |share| and kind. ``circuitry view DIR`` opens it. See ``docs/viewer.md``.
"""

from circuitry.viewer.data import page_data
from circuitry.viewer.page import CYTOSCAPE_VERSION, render_html, write_report_html

__all__ = ["CYTOSCAPE_VERSION", "page_data", "render_html", "write_report_html"]
