"""The claim-file schema: what a user writes to have circuitry check a paper's claims.

A claim file (YAML or JSON) holds run-wide settings (``model``, ``task``, ``n_prompts``, ``seed``,
``alpha``, ``draws``, ...) and a list of ``claims``; each claim has an ``id``, a human ``statement`` and a
typed body selected by ``type`` (a pydantic discriminated union). The published JSON Schema is
``circuitry/claims/claim-file.schema.json`` (:func:`json_schema`; a test keeps it in sync). Every field
is documented in ``docs/claims-reference.md``.

Parsing errors are turned into :class:`ClaimFileError` messages that name the claim id, the field, the
bad value and the fix (:func:`parse_claim_file`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, model_validator

from circuitry.errors import InputError
from circuitry.limits import MAX_DRAWS, MAX_PROMPTS, MAX_RANDOM, MAX_RESAMPLES
from circuitry.provenance import Frozen

SCHEMA_PATH = Path(__file__).resolve().parent / "claim-file.schema.json"

HEAD_PATTERN = r"^L\d+H\d+$"
HeadLabel = Annotated[str, Field(pattern=HEAD_PATTERN, description="a head label 'L{layer}H{head}', e.g. 'L1H3'")]
ClaimId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80,
                               description="a unique name: letters, digits, '_', '.', '-'")]
Alpha = Annotated[float, Field(gt=0.0, lt=1.0, description="significance level, strictly between 0 and 1")]
Share = Annotated[float, Field(gt=0.0, lt=1.0, description="a share strictly between 0 and 1")]

Ablation = Literal["zero", "mean", "resample"]
"""``zero``: the heads write nothing. ``mean``: their output is replaced by its mean over the prompts (per
position). ``resample``: by their output on another prompt (see :mod:`circuitry.interventions.ablation`)."""

AblationMetric = Literal["loss", "logit_diff", "answer_prob", "icl_score"]
"""``loss``: cross-entropy of the answers at the task's target positions (for ``induction``: the repeated
half). ``logit_diff`` / ``answer_prob``: answer minus foil logit / answer probability at those positions.
``icl_score``: the in-context-learning score (Olsson et al. 2022), loss at a late token minus loss at an
early token (token 500 and 50 of 512, scaled to the prompt length) on the clean prompts of the claim's
``task``."""

PatchMetric = Literal["logit_diff", "answer_prob", "loss"]
"""Metrics on clean/corrupted prompt pairs, for path patching."""

Direction = Literal["more", "less"]
"""``more``: ablating the heads damages the metric *more* than ablating random heads (they matter more).
``less``: less (they matter less). Damage is the rise of ``loss``/``icl_score`` and the fall of
``logit_diff``/``answer_prob``."""

Match = Literal["all", "layer"]
"""``all``: random heads from the whole model (the "pool" null). ``layer``: as many random heads per layer as
the claim has (the "layer" null)."""

Kind = Literal["q", "k", "v"]
"""The receiver's input the path enters: queries, keys or values."""


#: Upper bounds of a claim file's counts, checked when the file is read (before any claim runs). Time: every
#: random head set, random circuit or resample is a patched forward pass (or a mean) over all prompts; these
#: match ``analyze --draws``, ``discover --n-random`` and the largest built-in task (``--n-prompts``).
MAX_CLAIMS = 1000


class _Claim(Frozen):
    """Fields every claim has."""

    id: ClaimId = Field(description="unique name of the claim, used in messages and reports")
    statement: str = Field(min_length=1, description="the claim in words, as the paper makes it")
    alpha: Alpha | None = Field(default=None, description="significance level; default: the file's alpha")
    seed: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="seed of the prompts and of every resampling; default: the file's seed")
    n_prompts: Annotated[int, Field(ge=2, le=MAX_PROMPTS)] | None = Field(
        default=None, description="number of prompts; default: the file's n_prompts")
    sensitivity: bool = Field(
        default=False, description="also rerun the claim under every ablation (zero, mean, resample) x metric (loss, "
        "logit_diff, answer_prob) its type admits, and report whether the verdict is robust (the same in every "
        "setting) or fragile (with the settings that flip it); see circuitry.claims.sensitivity")


class _RandomHeadsClaim(_Claim):
    """Fields of the claims tested against random head sets (one named null each, see :data:`Match`)."""

    heads: list[HeadLabel] = Field(min_length=1, description="the candidate heads")
    ablation: Ablation = Field(default="mean", description="how the heads are ablated")
    direction: Direction = Field(default="more", description="more or less damage than random heads")
    match: Match = Field(default="all", description="how random head sets are drawn")
    given: list[HeadLabel] = Field(
        default=[], description="heads ablated in every set, the candidate's and each random one's (the conditional "
        "null: 'these heads matter beyond the given ones', e.g. beyond a bottleneck head)")
    exclude_candidates: bool = Field(
        default=False, description="rank the candidate among random sets of the other heads only (the 'other-heads' "
        "rank: the candidate is outside that population, so the rank is descriptive, not a calibrated p-value; "
        "it is reported as evidence and the verdict is always inconclusive; prefer `given`)")
    draws: Annotated[int, Field(ge=1, le=MAX_DRAWS)] | None = Field(
        default=None, description="random head sets; default: the file's draws (all sets when there are fewer)")

    @model_validator(mode="after")
    def _one_null(self):
        if self.exclude_candidates and (self.match == "layer" or self.given):
            other = "match: layer" if self.match == "layer" else "given"
            raise ValueError(f"claim {self.id!r}: exclude_candidates: true cannot be combined with {other} (no "
                             "calibrated null draws layer-matched or conditional sets from outside the candidate). "
                             "Fix: drop exclude_candidates")
        if self.given and not set(self.heads) - set(self.given):
            raise ValueError(f"claim {self.id!r}: every head of `heads` is in `given`; nothing is left to test. "
                             "Fix: list the heads claimed to matter beyond `given` in `heads`")
        return self


class AblationVsRandom(_RandomHeadsClaim):
    """"Ablating these heads damages the metric more (less) than ablating random heads of the same count."

    Evaluated with :func:`circuitry.stats.random_head_test` under the null the fields name (pool, layer,
    conditional on ``given``) and :func:`circuitry.stats.verdict`. With ``exclude_candidates`` the candidate is
    only ranked among sets of the other heads: the rank is reported as descriptive evidence and the verdict is
    always "inconclusive" (:data:`circuitry.claims.evaluate.OTHER_HEADS_REASON`).
    """

    type: Literal["ablation_vs_random"]
    metric: AblationMetric = Field(default="loss", description="what the ablation damages")


class AblationTable(_RandomHeadsClaim):
    """The classic ablation table: full model / these heads ablated / as many random heads ablated, on one
    or more metrics. Supported when the heads damage *every* metric more (``direction``) than random heads
    (intersection-union test: the largest p-value decides; no multiplicity correction is needed)."""

    type: Literal["ablation_table"]
    metrics: list[AblationMetric] = Field(default=["loss", "icl_score"], min_length=1,
                                          description="the table's metrics, one row group each")


class AblationEffect(_Claim):
    """"Ablating these heads damages the metric by at least ``min_effect``" (e.g. a bottleneck head).

    Decided by the one-sided test of the mean per-prompt damage against ``min_effect``
    (:func:`circuitry.stats.mean_test`, studentized bootstrap from 8 prompts) at the claim's alpha: supported
    when its lower ``1 - alpha`` bound clears ``min_effect``; inconclusive below 16 prompts."""

    type: Literal["ablation_effect"]
    heads: list[HeadLabel] = Field(min_length=1, description="the heads ablated together")
    ablation: Ablation = Field(default="mean", description="how the heads are ablated")
    metric: AblationMetric = Field(default="loss", description="what the ablation damages")
    min_effect: Annotated[float, Field(gt=0.0)] = Field(
        description="the claimed damage (rise of loss/icl_score, fall of logit_diff/answer_prob), in metric units")


class PathShare(_Claim):
    """"The path sender -> receiver (through q, k or v) carries at least ``min_share`` of the effect."

    Share = (clean - patched) / (clean - corrupted) of the mean metric, noising the path (exact path
    patching, Wang et al. 2023), decided by :func:`circuitry.stats.share_test`: the gap is tested first,
    then the one-sided ``1 - alpha`` test of share >= ``min_share`` and the path's effect test (Hall's t); the
    Fieller interval of the share is reported."""

    type: Literal["path_share"]
    sender: Annotated[str, Field(pattern=r"^(L\d+H\d+|embed)$")] = Field(description="a head label or 'embed'")
    receiver: HeadLabel = Field(description="a head in a later layer than the sender")
    kind: Kind = Field(description="which input of the receiver the path enters")
    min_share: Share = Field(default=0.5, description="claimed share of the effect (0.5: 'most of the effect')")
    metric: PatchMetric = Field(default="logit_diff", description="metric on the clean/corrupted pairs")


class CircuitClaim(_Claim):
    """A circuit hypothesis test (Shi et al. 2024) on a circuit given as a head set.

    Faithfulness loss of a head set S = mean over prompts of ``|metric(only S, other heads ablated) -
    metric(full model)|``. ``sufficiency``: the circuit's loss is lower than that of a share > q of random
    head sets of its size. ``partial_necessity``: ablating the circuit (keeping its complement) raises the
    loss more than ablating random sets. ``minimality``: removing any one head changes the circuit's metric
    more than removing a random head added to it."""

    type: Literal["sufficiency", "partial_necessity", "minimality"]
    heads: list[HeadLabel] = Field(min_length=1, description="the circuit's heads")
    ablation: Ablation = Field(default="mean", description="how heads outside the kept set are ablated")
    metric: AblationMetric = Field(default="logit_diff", description="the metric faithfulness is measured on")
    q: Share = Field(default=0.9, description="share of random circuits the circuit must beat (paper: 0.9)")
    n_random: Annotated[int, Field(ge=1, le=MAX_RANDOM)] = Field(default=100, description="random circuits (paper: "
                                                                 f"100; at most {MAX_RANDOM}: time)")


Claim = Annotated[Union[AblationVsRandom, AblationTable, AblationEffect, PathShare, CircuitClaim],
                  Field(discriminator="type")]
CLAIM_TYPES = ("ablation_vs_random", "ablation_table", "ablation_effect", "path_share", "sufficiency",
               "partial_necessity", "minimality")


class ClaimFile(Frozen):
    """A claim file: run-wide settings and the claims to check."""

    version: Literal[1] = Field(default=1, description="claim-file schema version")
    model: str = Field(default="zoo:attn-only-2l", min_length=1,
                       description="'zoo:NAME', a local Hugging Face directory or a cached hub id")
    task: str = Field(default="induction", min_length=1,
                      description="'induction' or a .jsonl file of prompt pairs (relative to the claim file)")
    n_prompts: Annotated[int, Field(ge=2, le=MAX_PROMPTS)] = Field(
        default=32, description="prompts per claim (a .jsonl task uses all of its pairs and records that count)")
    block_len: Annotated[int, Field(ge=2, le=4096)] | None = Field(
        default=None, description="block length of the built-in induction task (successor: run length); default: "
        "the task's")
    seed: Annotated[int, Field(ge=0)] = Field(default=0, description="seed of prompts and resampling")
    alpha: Alpha = Field(default=0.01, description="default significance level of every claim")
    draws: Annotated[int, Field(ge=1, le=MAX_DRAWS)] = Field(default=1000, description="default random head sets per "
                                                             f"test (at most {MAX_DRAWS}: time)")
    confidence_level: Share = Field(default=0.95, description="level of the bootstrap CIs reported")
    n_resamples: Annotated[int, Field(ge=100, le=MAX_RESAMPLES)] = Field(
        default=2000, description=f"bootstrap resamples (at most {MAX_RESAMPLES}: time)")
    claims: list[Claim] = Field(min_length=1, max_length=MAX_CLAIMS, description="the claims to check")

    @model_validator(mode="after")
    def _unique_ids(self) -> "ClaimFile":
        seen: set[str] = set()
        for c in self.claims:
            if c.id in seen:
                raise ValueError(f"claim id {c.id!r} is used twice; ids must be unique (rename one)")
            seen.add(c.id)
        return self


class ClaimFileError(InputError):
    """A claim file is invalid (unreadable, does not match the schema, or names heads the model lacks)."""


_FIXES = {
    "alpha": "use a level strictly between 0 and 1, e.g. alpha: 0.01",
    "q": "use a share strictly between 0 and 1, e.g. q: 0.9",
    "min_share": "use a share strictly between 0 and 1, e.g. min_share: 0.5",
    "heads": "write heads as labels 'L{layer}H{head}', e.g. [L1H3, L1H5]",
    "receiver": "write the receiver as a head label, e.g. L1H5",
    "sender": "write the sender as a head label (e.g. L0H2) or 'embed'",
    "type": "use one of " + ", ".join(CLAIM_TYPES),
    "id": "use letters, digits, '_', '.', '-' (e.g. induction-heads-matter)",
    "n_prompts": "use at least 2 prompts, e.g. n_prompts: 32",
    "draws": "use a positive number of draws, e.g. draws: 1000",
    "seed": "use a non-negative integer, e.g. seed: 0",
    "given": "write heads as labels 'L{layer}H{head}', e.g. [L0H3]",
    "min_effect": "use a positive damage in the metric's units, e.g. min_effect: 1.0",
    "block_len": "use an integer >= 2, e.g. block_len: 16",
}


def _describe(err: dict[str, Any], raw: Any) -> str:
    loc = list(err["loc"])
    where = "file"
    if len(loc) >= 2 and loc[0] == "claims" and isinstance(loc[1], int):
        idx = loc[1]
        cid = None
        if isinstance(raw, dict) and isinstance(raw.get("claims"), list) and idx < len(raw["claims"]):
            item = raw["claims"][idx]
            cid = item.get("id") if isinstance(item, dict) else None
        where = f"claim {cid!r} (claims[{idx}])" if cid else f"claims[{idx}]"
        loc = loc[2:]
        if loc and isinstance(loc[0], str) and loc[0] in CLAIM_TYPES:
            loc = loc[1:]  # drop the union tag pydantic inserts
    field = ".".join(str(p) for p in loc if not isinstance(p, int)) or "(whole entry)"
    name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    etype, msg = err["type"], err["msg"]
    if etype == "extra_forbidden":
        fix = "remove it or check its spelling (docs/claims-reference.md lists every field)"
        return f"{where}: unknown field `{field}`. Fix: {fix}"
    if etype == "missing":
        return f"{where}: field `{field}` is required. Fix: add it (docs/claims-reference.md)"
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        tag = (err.get("ctx") or {}).get("tag")
        what = f"`type`={tag!r} is not a claim type" if tag is not None else "field `type` is required"
        return f"{where}: {what}. Fix: {_FIXES['type']}"
    if etype == "value_error":
        text = msg.removeprefix("Value error, ")
        return text if text.startswith("claim ") else f"{where}: {text}"
    fix = _FIXES.get(name, "see docs/claims-reference.md for the allowed values")
    if etype == "literal_error":
        fix = f"use {msg.removeprefix('Input should be ')}"
    value = err.get("input")
    return f"{where}: field `{field}`={value!r} is invalid ({msg}). Fix: {fix}"


def parse_claim_file(raw: Any, *, source: str = "claim file") -> ClaimFile:
    """Validate a parsed claim file (a dict from YAML or JSON).

    Raises
    ------
    ClaimFileError
        Listing every problem, each naming the claim id, the field, the value and the fix.
    """
    if not isinstance(raw, dict):
        raise ClaimFileError(f"{source}: the top level must be a mapping with a `claims` list, got "
                             f"{type(raw).__name__}. Fix: see examples/claims/false_claim.yaml")
    try:
        return ClaimFile.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(e, raw) for e in exc.errors(include_url=False)]
        raise ClaimFileError(f"{source} is invalid ({len(lines)} problem(s)); no claim was run:\n  - "
                             + "\n  - ".join(lines)) from None


MAX_CLAIM_FILE_BYTES = 1_000_000


def _load_yaml(text: str):
    """YAML safe loading without aliases: ``*anchor`` references let a few lines expand into gigabytes (the
    "billion laughs" file), and a claim file never needs them."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed in a claim file (at line "
                                     f"{event.start_mark.line + 1}); write the values out")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasLoader)


def load_claim_file(path: str | Path) -> ClaimFile:
    """Read and validate a YAML (``.yaml``/``.yml``) or JSON claim file.

    Raises
    ------
    ClaimFileError
        The file is missing, not parseable, or does not match the schema.

    Examples
    --------
    >>> cf = load_claim_file("examples/claims/false_claim.yaml")
    >>> cf.claims[0].type
    'ablation_vs_random'
    """
    path = Path(path)
    if not path.is_file():
        raise ClaimFileError(f"claim file {str(path)!r} does not exist. Fix: pass the path of a .yaml or .json file")
    import yaml

    if path.stat().st_size > MAX_CLAIM_FILE_BYTES:
        raise ClaimFileError(f"claim file {str(path)!r} has {path.stat().st_size} bytes; a claim file holds at most "
                             f"{MAX_CLAIM_FILE_BYTES} (one claim is a few lines). Fix: split it")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ClaimFileError(f"claim file {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}). Fix: "
                             "save it as UTF-8") from None
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else _load_yaml(text)
    except RecursionError:
        raise ClaimFileError(f"claim file {str(path)!r} is nested too deeply to be a claim file") from None
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        line = getattr(exc, "lineno", None) or (mark.line + 1 if mark is not None else None)
        where = f" at line {line}" if line else ""
        raise ClaimFileError(f"claim file {str(path)!r} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}"
                             f"{where}: {first}. Fix: check the indentation and quoting near that line") from None
    return parse_claim_file(raw, source=f"claim file {str(path)!r}")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of claim files (what ``claim-file.schema.json`` holds)."""
    schema = ClaimFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://circuitry.dev/schemas/claim-file.schema.json"
    return schema


def write_json_schema(path: str | Path = SCHEMA_PATH) -> Path:
    """Write :func:`json_schema` to ``path`` (atomically)."""
    from circuitry.io import atomic_write_text

    return atomic_write_text(path, json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
