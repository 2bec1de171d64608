"""Re-run a previous ``report.json`` and say whether its numbers come out the same.

``circuitry analyze --reproduce OLD/report.json --out NEW`` reads the configuration (model, task, seed,
every option) from the old report, checks that the model's weights and the prompts hash as they did,
runs the analysis afresh into ``NEW`` (which must hold no finished stages, so nothing is reused), and
compares every number. What may differ and is ignored: ``timings``, the figure list, and the provenance
fields that describe the run rather than the result (``created``, ``threads``, ``device``, ``python``).
Floats are compared exactly: on a CPU the same command with the same seed gives identical numbers across
runs and thread counts (tested; docs/reproducibility.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from circuitry.errors import InputError

IGNORED = {"timings", "figures"}
#: the largest report read back (a report of the largest analysis is a few MB)
MAX_REPORT_BYTES = 256 * 2**20


class _ReadBack(BaseModel):
    """The parts of a report ``--reproduce`` reads, typed: the configuration (an :class:`AnalysisConfig`) and
    the provenance's hashes."""

    model_config = ConfigDict(extra="allow")

    class _Provenance(BaseModel):
        model_config = ConfigDict(extra="allow")
        weights_sha256: str | None = None
        dataset_sha256: str | None = None

    config: dict[str, Any]
    provenance: _Provenance
    findings: Any
IGNORED_PROVENANCE = {"created", "threads", "device", "python"}


def differences(old: Any, new: Any, path: str = "", *, limit: int = 20) -> list[str]:
    """Paths (``/edges[3]/effect``) at which two JSON values differ, at most ``limit`` of them."""
    out: list[str] = []

    def walk(a: Any, b: Any, p: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if k in IGNORED or (p.endswith("provenance") and k in IGNORED_PROVENANCE):
                    continue
                walk(a.get(k), b.get(k), f"{p}/{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{p}[{i}]")
        elif a != b:
            out.append(f"{p}: {a!r} then {b!r}")

    walk(old, new, path)
    return out


def load_report(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--reproduce={str(p)!r} is not a file. Fix: the report.json of an earlier analyze run")
    if p.stat().st_size > MAX_REPORT_BYTES:
        raise InputError(f"--reproduce={str(p)!r} has {p.stat().st_size} bytes, beyond the limit {MAX_REPORT_BYTES} "
                         "(memory: a report is read whole). Fix: the report.json of an earlier analyze run")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"--reproduce={str(p)!r} is not JSON ({str(exc)[:100]})") from None
    if not isinstance(data, dict) or not {"config", "provenance", "findings"} <= set(data):
        raise InputError(f"--reproduce={str(p)!r} is not a circuitry analyze report (no config/provenance/findings)")
    from circuitry.analysis.results import AnalysisConfig

    try:
        _ReadBack.model_validate(data)
        AnalysisConfig.model_validate(data["config"])
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "/".join(str(x) for x in err.get("loc", ()))
        where = where if exc.title == _ReadBack.__name__ else f"config/{where}"
        raise InputError(f"--reproduce={str(p)!r}: field /{where}: {err.get('msg')} (got "
                         f"{str(err.get('input'))[:60]!r}). Fix: the unedited report.json of an earlier analyze run"
                         ) from None
    return data


def check_fresh_out(out: str | Path) -> None:
    """Refuse an ``--out`` holding finished stages, which a re-run would reuse instead of recomputing."""
    out = Path(out)
    if (out / "stages").is_dir() and any((out / "stages").iterdir()):
        raise InputError(f"--out={str(out)!r} holds finished stages, which a re-run would reuse. Fix: --out an empty "
                         "folder")


def reproduce(report_path: str | Path, out: str | Path, *, device: str = "cpu", quiet: bool = False) -> list[str]:
    """Re-run the analysis of ``report_path`` into ``out``; returns the differences (empty = identical)."""
    from circuitry.analysis.pipeline import run_analysis
    from circuitry.analysis.results import AnalysisConfig
    from circuitry.models import load_model

    old = load_report(report_path)
    out = Path(out)
    check_fresh_out(out)
    cfg = AnalysisConfig.model_validate(old["config"])
    model = load_model(cfg.model, device=device)
    prov = old["provenance"]
    if prov.get("weights_sha256") and model.weights_sha256 and prov["weights_sha256"] != model.weights_sha256:
        raise InputError(f"model {cfg.model!r} now hashes to {model.weights_sha256[:16]}…, not the "
                         f"{prov['weights_sha256'][:16]}… the report was computed with: the weights changed, so the "
                         "numbers cannot be reproduced")
    new = run_analysis(model, cfg, out, quiet=quiet)
    if prov.get("dataset_sha256") and new.provenance.dataset_sha256 != prov["dataset_sha256"]:
        return [f"/provenance/dataset_sha256: the prompts changed ({prov['dataset_sha256'][:16]}… then "
                f"{new.provenance.dataset_sha256[:16]}…)"]
    return differences(old, json.loads(new.model_dump_json()))
