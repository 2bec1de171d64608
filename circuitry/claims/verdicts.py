"""Results of checking a claim file, and their markdown rendering (``verdicts.json`` / ``verdicts.md``).

Every result is a frozen pydantic model that round-trips through JSON. A :class:`ClaimResult` holds the
verdict (:class:`circuitry.stats.Verdict`: supported / refuted / inconclusive with its reason), the
evidence (effect, CI, null mean and spread, p-value and its floor), the test used, the number of prompts
and draws, the seed, provenance, and the full result of the underlying statistical test in ``raw``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from circuitry.display import Displayed, Table, interval
from circuitry.provenance import Frozen, Provenance
from circuitry.stats import Verdict

ExitCode = Literal[0, 1, 2]


class Evidence(Frozen):
    """One measured quantity behind a verdict.

    ``effect`` is named by ``effect_name`` (e.g. "damage to loss (rise, nats)" or "share of the effect");
    ``ci_low``/``ci_high`` its bootstrap interval at ``confidence_level``; ``null_mean``/``null_std`` the
    random reference (random head sets or random circuits) it is compared with, over ``n_null`` draws
    (``exact``: every admissible set enumerated and the candidate one of them); ``pvalue``, its floor
    ``min_attainable_pvalue`` and the ``null`` it tests; ``method`` the interval method (picked by n).
    An unbounded interval end (a Fieller interval over an unresolved gap) is ``None``.
    """

    metric: str
    effect: float | None  # None: not a number (a share of an unresolved gap)
    effect_name: str
    ci_low: float | None = None
    ci_high: float | None = None
    confidence_level: float | None = None
    null_mean: float | None = None
    null_std: float | None = None
    n_null: int | None = None
    exact: bool | None = None
    pvalue: float | None = None
    min_attainable_pvalue: float | None = None
    null: str | None = None
    method: str | None = None


class TableRow(Frozen):
    """A row of an ablation table: the metric's mean over prompts in one condition.

    ``condition`` is "full model", "candidate heads ablated" or "random heads ablated"; for the random
    row ``mean`` is the mean over draws and ``spread`` their standard deviation; ``pvalue`` (candidate
    row) is the random-head test's.
    """

    metric: str
    condition: Literal["full model", "candidate heads ablated", "random heads ablated"]
    mean: float
    ci_low: float | None = None
    ci_high: float | None = None
    spread: float | None = None
    pvalue: float | None = None


class SettingVerdict(Frozen):
    """The claim's verdict in one setting ``"ablation/metric"`` of a sensitivity sweep."""

    setting: str
    outcome: str
    pvalue: float | None
    min_attainable_pvalue: float | None
    reason: str


class ClaimSensitivity(Frozen):
    """A claim rerun under every ablation x metric its type admits (:mod:`circuitry.claims.sensitivity`):
    ``conclusion`` is ``"robust"`` when every setting that ran gives the baseline's outcome, else ``"fragile"``
    with ``flips`` the settings that change it; ``skipped`` the settings that could not run, with the reason."""

    baseline: str
    settings: list[SettingVerdict]
    conclusion: Literal["robust", "fragile"]
    flips: list[str]
    skipped: dict[str, str] = Field(default_factory=dict)

    def words(self) -> str:
        n = len(self.settings)
        if self.conclusion == "robust":
            return f"robust: the same verdict in all {n} settings"
        return f"fragile: {len(self.flips)} of {n} settings flip it ({', '.join(self.flips)})"


class ClaimResult(Displayed, Frozen):
    """The verdict on one claim with its evidence (``sensitivity``: the claim's ``sensitivity: true`` sweep)."""

    id: str
    type: str
    statement: str
    verdict: Verdict
    evidence: list[Evidence]
    table: list[TableRow] = Field(default_factory=list)
    test: str
    n_prompts: int
    draws: int | None
    seed: int
    provenance: Provenance
    warnings: list[str] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)
    sensitivity: ClaimSensitivity | None = None

    @property
    def outcome(self) -> str:
        return self.verdict.outcome

    def _table(self) -> Table:
        """The verdict and its reason, then one row per measured quantity with its interval, null and p-value."""
        v = self.verdict
        rows = [(e.effect_name, e.effect, interval(e.ci_low, e.ci_high),
                 None if e.null_mean is None else f"{e.null_mean:.3g} ± {e.null_std or 0:.2g} (n={e.n_null})",
                 e.pvalue, e.min_attainable_pvalue) for e in self.evidence]
        return Table(f"ClaimResult {self.id} ({self.type}): {v.outcome.upper()}",
                     ("quantity", "effect", "CI", "random null", "p", "floor"), rows,
                     notes=[self.statement, f"{v.reason} (alpha {v.alpha:g})", f"test: {self.test}",
                            f"{self.n_prompts} prompts, {self.draws} draws, seed {self.seed}",
                            *([f"sensitivity: {self.sensitivity.words()}"] if self.sensitivity else []),
                            *(f"warning: {w}" for w in self.warnings)], noun="quantity")


class VerdictReport(Displayed, Frozen):
    """Every claim's result, with the claim file's hash and the exit code ``circuitry validate`` returns:
    0 when every claim is supported, 1 when any is refuted or inconclusive."""

    claim_file: str
    claim_file_sha256: str
    model_id: str
    weights_sha256: str
    library_version: str
    results: list[ClaimResult]
    counts: dict[str, int]
    exit_code: ExitCode
    provenance: Provenance

    def result(self, claim_id: str) -> ClaimResult:
        """The result of claim ``claim_id``."""
        for r in self.results:
            if r.id == claim_id:
                return r
        raise KeyError(f"no claim with id {claim_id!r}; ids: {[r.id for r in self.results]}")

    def _table(self) -> Table:
        """One row per claim: verdict, its first measured quantity with interval, p-value and floor, the test."""
        rows = []
        for r in self.results:
            e = r.evidence[0] if r.evidence else None
            rows.append((r.id, r.type, r.verdict.outcome, None if e is None else e.effect,
                         None if e is None else interval(e.ci_low, e.ci_high), r.verdict.pvalue,
                         r.verdict.min_attainable_pvalue, r.test))
        counts = ", ".join(f"{n} {k}" for k, n in self.counts.items())
        return Table(f"VerdictReport: {self.claim_file} on {self.model_id}: {counts} (exit code {self.exit_code})",
                     ("claim", "type", "verdict", "effect", "CI", "p", "floor", "test"), rows, noun="claim")


def _f(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 10 ** 5):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}" if abs(x) < 100 else f"{x:.1f}"


def _ci(lo: float | None, hi: float | None) -> str:
    return "–" if lo is None or hi is None else f"[{_f(lo)}, {_f(hi)}]"


def one_line(r: ClaimResult) -> str:
    """``"SUPPORTED    id: p=0.0083 (floor 0.0083) ..."``: the line ``circuitry validate`` prints per claim."""
    v = r.verdict
    p = "" if v.pvalue is None else f" p={v.pvalue:.3g}"
    floor = "" if v.min_attainable_pvalue is None else f" (floor {v.min_attainable_pvalue:.3g})"
    warn = "".join(f"\n    warning: {w}" for w in r.warnings)
    sens = f"\n    sensitivity: {r.sensitivity.words()}" if r.sensitivity else ""
    return f"{v.outcome.upper():<12} {r.id}:{p}{floor} alpha={v.alpha:g} — {v.reason}{sens}{warn}"


def render_markdown(report: VerdictReport) -> str:
    """``verdicts.md``: a summary table, then the evidence and provenance of every claim."""
    lines = [
        "# Claim verdicts", "",
        f"Claim file `{report.claim_file}` (sha256 `{report.claim_file_sha256[:12]}`), model `{report.model_id}` "
        f"(weights sha256 `{report.weights_sha256[:12]}`), circuitry {report.library_version}.", "",
        "| claim | type | verdict | p-value | floor | alpha |", "|---|---|---|---|---|---|",
    ]
    for r in report.results:
        v = r.verdict
        lines.append(f"| `{r.id}` | {r.type} | **{v.outcome}** | {_f(v.pvalue, 4)} | "
                     f"{_f(v.min_attainable_pvalue, 4)} | {v.alpha:g} |")
    counts = ", ".join(f"{n} {k}" for k, n in report.counts.items())
    lines += ["", f"{counts}; exit code {report.exit_code}.", ""]
    for r in report.results:
        lines += _claim_section(r)
    return "\n".join(lines) + "\n"


def _claim_section(r: ClaimResult) -> list[str]:
    v = r.verdict
    out = [f"## `{r.id}` — {v.outcome}", "", f"> {r.statement}", "", f"**Verdict**: {v.outcome}. {v.reason}.", ""]
    if v.null:
        out += [f"**Null**: {v.null}.", ""]
    for w in r.warnings:
        out += [f"**Warning**: {w}", ""]
    if r.table:
        out += ["| metric | condition | mean | CI (bootstrap) / sd over draws | p-value |", "|---|---|---|---|---|"]
        for t in r.table:
            band = _ci(t.ci_low, t.ci_high) if t.spread is None else f"sd {_f(t.spread)}"
            out.append(f"| {t.metric} | {t.condition} | {_f(t.mean)} | {band} | {_f(t.pvalue, 4)} |")
        out.append("")
    out += ["| metric | effect | value | CI | null mean ± sd | null draws | p-value | floor |",
            "|---|---|---|---|---|---|---|---|"]
    for e in r.evidence:
        null = "–" if e.null_mean is None else f"{_f(e.null_mean)} ± {_f(e.null_std)}"
        draws = "–" if e.n_null is None else f"{e.n_null}{' (exact)' if e.exact else ''}"
        ci = _ci(e.ci_low, e.ci_high)
        if e.confidence_level is not None and e.ci_low is None and e.ci_high is None and e.method == "fieller":
            ci = "unbounded"
        if e.confidence_level is not None and (e.ci_low is not None or ci == "unbounded"):
            ci += f" ({e.confidence_level:.0%}{', ' + e.method if e.method else ''})"
        out.append(f"| {e.metric} | {e.effect_name} | {_f(e.effect)} | {ci} | {null} | {draws} | "
                   f"{_f(e.pvalue, 4)} | {_f(e.min_attainable_pvalue, 4)} |")
    if r.sensitivity is not None:
        sn = r.sensitivity
        out += ["", f"**Sensitivity** ({sn.words()}; baseline {sn.baseline}):", "",
                "| setting | verdict | p-value | floor |", "|---|---|---|---|"]
        out += [f"| {x.setting} | {x.outcome} | {_f(x.pvalue, 4)} | {_f(x.min_attainable_pvalue, 4)} |"
                for x in sn.settings]
        out += [f"| {k} | skipped: {why} | – | – |" for k, why in sn.skipped.items()]
    p = r.provenance
    out += ["", f"Test: {r.test}. {r.n_prompts} prompts"
            + (f", {r.draws} draws" if r.draws is not None else "") + f", seed {r.seed}; "
            f"dataset sha256 `{p.dataset_sha256[:12] or '–'}`.", ""]
    return out
