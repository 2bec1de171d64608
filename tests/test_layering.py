"""Imports flow one way (STYLE.md): lower layers never import higher ones; no package imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).parent.parent / "circuitry"
# package -> packages it must never import (directly or inside functions)
FORBIDDEN = {
    "errors": {"models", "prompts", "interventions", "scores", "graph", "stats", "claims", "analysis", "zoo"},
    "provenance": {"models", "prompts", "interventions", "scores", "graph", "stats", "claims", "analysis"},
    "stats": {"models", "prompts", "interventions", "scores", "graph", "claims", "analysis", "zoo"},
    "models": {"prompts", "interventions", "scores", "graph", "stats", "claims", "analysis"},
    "prompts": {"interventions", "scores", "graph", "stats", "claims", "analysis"},
    "metrics": {"interventions", "scores", "graph", "stats", "claims", "analysis"},
    "interventions": {"scores", "graph", "claims", "analysis"},
    "scores": {"interventions", "graph", "claims", "analysis"},
    "graph": {"models", "interventions", "scores", "claims", "analysis"},
    "claims": {"analysis"},
    "zoo": {"interventions", "scores", "graph", "stats", "claims", "analysis"},
    # the page reads what analyze and discover wrote (their files), never their code or a model
    "viewer": {"models", "prompts", "interventions", "scores", "stats", "claims", "analysis", "discovery", "zoo"},
}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("circuitry."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("circuitry.")}
    return out


def _files(part: str) -> list[Path]:
    p = PKG / part
    return sorted(p.rglob("*.py")) if p.is_dir() else [PKG / f"{part}.py"]


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_imports_flow_one_way(part):
    bad = {f"{f.relative_to(PKG)} imports circuitry.{m}" for f in _files(part) for m in _imports(f) & FORBIDDEN[part]}
    assert not bad, sorted(bad)


def test_nothing_imports_the_cli():
    users = [f for f in PKG.rglob("*.py") if f.name not in ("cli.py", "__main__.py") and "cli" in _imports(f)]
    assert not users, users
