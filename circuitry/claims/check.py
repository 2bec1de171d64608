"""Check a claim file: validate it against the model before anything runs, evaluate every claim, write
``verdicts.json`` and ``verdicts.md``.

The model is loaded once (from the file's ``model`` through :func:`circuitry.models.load_model`, or
injected: a :class:`~circuitry.models.ModelAdapter` or a ``torch.nn.Module``). Every head, layer, path and
prompt set is checked before the first claim runs, so an invalid file costs seconds and runs nothing.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Callable

from circuitry.claims.schema import ClaimFile, ClaimFileError, load_claim_file
from circuitry.claims.verdicts import ClaimResult, VerdictReport, render_markdown
from circuitry.errors import CircuitryError
from circuitry.executors import check_executor
from circuitry.labels import parse_head


def _resolve(value: str, base_dir: Path | None) -> str:
    """A relative path in the claim file is relative to the file's folder (when it exists there)."""
    if base_dir is None or value.startswith("zoo:") or Path(value).is_absolute():
        return value
    candidate = base_dir / value
    return str(candidate) if candidate.exists() else value


def _load(claim_file: ClaimFile, model: Any, base_dir: Path | None, device: str):
    from circuitry.models import ModelAdapter, load_model

    if isinstance(model, ModelAdapter):
        return model
    try:
        return load_model(model if model is not None else _resolve(claim_file.model, base_dir), device=device)
    except CircuitryError as exc:
        raise ClaimFileError(f"field `model`={claim_file.model!r} could not be loaded: {exc}") from None


def _heads_of(claim) -> list[tuple[str, str]]:
    """(field, label) of every head a claim names."""
    out = [("heads", h) for h in getattr(claim, "heads", [])] + [("given", h) for h in getattr(claim, "given", [])]
    if claim.type == "path_share":
        out += [("receiver", claim.receiver)] + ([("sender", claim.sender)] if claim.sender != "embed" else [])
    return out


def validate_against_model(claim_file: ClaimFile, model, *, base_dir: Path | None = None, executor: str = "serial",
                           workers: int | None = None):
    """Check every claim against the loaded model and build its prompts; return the evaluation context.

    Raises
    ------
    ClaimFileError
        Listing every problem, each naming the claim id, the field and the fix: heads the model does not
        have, repeated heads, a path whose receiver is not after its sender, a circuit with every head,
        a layer-matched null with no admissible random set, a task that cannot be built.
    """
    from circuitry.claims.evaluate import Context

    info = model.info
    L, H = info.n_layers, info.n_heads
    span = f"{model.model_id} has {L} layers x {H} heads (L0H0 .. L{L - 1}H{H - 1})"
    problems: list[str] = []
    for c in claim_file.claims:
        where = f"claim {c.id!r}"
        n_before = len(problems)
        for fld, label in _heads_of(c):
            layer, head = parse_head(label)
            if not (layer < L and head < H):
                problems.append(f"{where}: field `{fld}` names {label}, but {span}. Fix: use heads of this model "
                                "(`circuitry scores` ranks them)")
        heads = list(getattr(c, "heads", []))
        dup = sorted({h for h in heads if heads.count(h) > 1})
        if dup:
            problems.append(f"{where}: field `heads` lists {dup} more than once. Fix: list each head once")
        if c.type == "path_share":
            sl = -1 if c.sender == "embed" else parse_head(c.sender)[0]
            if parse_head(c.receiver)[0] <= sl:
                problems.append(f"{where}: field `receiver`={c.receiver} is not in a later layer than sender "
                                f"{c.sender}. Fix: pick a receiver in layer > {sl}")
        if c.type in ("sufficiency", "partial_necessity", "minimality") and len(set(heads)) >= L * H:
            problems.append(f"{where}: field `heads` holds all {L * H} heads; random circuits of that size would "
                            "all equal it. Fix: name the circuit's heads only")
        if getattr(c, "match", "all") == "layer" and len(problems) == n_before:
            given = set(getattr(c, "given", []))
            free = [h for h in heads if h not in given]
            n_sets = math.prod(math.comb(H - sum(parse_head(g)[0] == layer for g in given),
                                         sum(parse_head(h)[0] == layer for h in free))
                               for layer in {parse_head(h)[0] for h in free})
            if n_sets < 2:
                problems.append(f"{where}: field `match`='layer' leaves no random head set (the claim takes every "
                                "head of its layers). Fix: use match: all")
    if problems:
        raise ClaimFileError(f"claim file is invalid for this model ({len(problems)} problem(s)); no claim was "
                             "run:\n  - " + "\n  - ".join(problems))
    ctx = Context(model=model, claim_file=claim_file, task=_resolve(claim_file.task, base_dir), executor=executor,
                  workers=workers)
    for c in claim_file.claims:
        n, seed, _ = ctx.settings(c)
        metrics = getattr(c, "metrics", None) or [getattr(c, "metric", "logit_diff")]
        try:
            data = ctx.dataset(n, seed)
        except CircuitryError as exc:
            problems.append(f"claim {c.id!r}: the prompts of field `task`={claim_file.task!r} could not be built: "
                            f"{exc}")
            continue
        if "icl_score" in metrics:
            from circuitry.scores.icl import default_positions

            early, late = default_positions(data.seq_len)
            if data.padded:
                problems.append(f"claim {c.id!r}: metric icl_score reads the same early and late token of every "
                                f"prompt, but the task's pairs have different lengths ({min(data.lengths)} to "
                                f"{max(data.lengths)} tokens). Fix: pairs of one length, or metric: loss")
            elif not 1 <= early < late:
                problems.append(f"claim {c.id!r}: metric icl_score needs prompts long enough for an early and a late "
                                f"token; the task's prompts have {data.seq_len} tokens. Fix: a longer block_len or "
                                "metric: loss")
    if problems:
        raise ClaimFileError(f"claim file is invalid for this model ({len(problems)} problem(s)); no claim was "
                             "run:\n  - " + "\n  - ".join(problems))
    return ctx


def check_claims(claim_file: ClaimFile, *, model: Any = None, base_dir: str | Path | None = None,
                 device: str = "cpu", claim_file_name: str = "<in memory>",
                 on_result: Callable[[ClaimResult], None] | None = None, executor: str = "serial",
                 workers: int | None = None) -> VerdictReport:
    """Validate then evaluate every claim.

    Parameters
    ----------
    claim_file : ClaimFile
        A parsed claim file (:func:`circuitry.claims.load_claim_file`).
    model : None, ModelAdapter or torch.nn.Module
        ``None``: load ``claim_file.model``. Otherwise use this model (tests inject a random-init module).
    base_dir : path, optional
        Folder that relative ``model``/``task`` paths are resolved against (the claim file's folder).
    device : str
        Torch device for loading.
    claim_file_name : str
        Recorded in the report.
    on_result : callable, optional
        Called with each :class:`ClaimResult` as soon as it is ready (the CLI prints it).
    executor, workers : optional
        Who evaluates the random head sets of random-head claims, and how many processes (or Ray CPUs):
        ``executor=`` and ``max_workers=`` of :func:`circuitry.stats.random_head_test`. The draws, and so
        the verdicts, are the same for every executor.

    Returns
    -------
    VerdictReport
        ``exit_code`` 0 when every claim is supported, 1 otherwise.

    Raises
    ------
    ClaimFileError
        The file does not fit the model (see :func:`validate_against_model`); nothing was run.

    Examples
    --------
    >>> from circuitry.claims import load_claim_file
    >>> report = check_claims(load_claim_file("examples/claims/false_claim.yaml"))
    >>> report.results[0].verdict.outcome
    'refuted'
    """
    check_executor(executor, workers)
    base = Path(base_dir) if base_dir is not None else None
    adapter = _load(claim_file, model, base, device)
    ctx = validate_against_model(claim_file, adapter, base_dir=base, executor=executor, workers=workers)
    return run_claims(ctx, claim_file_name=claim_file_name, on_result=on_result)


def run_claims(ctx, *, claim_file_name: str = "<in memory>",
               on_result: Callable[[ClaimResult], None] | None = None) -> VerdictReport:
    """Evaluate every claim of a validated context (:func:`validate_against_model`) into a report."""
    from circuitry.claims.evaluate import EVALUATORS
    from circuitry.provenance import make_provenance, sha256_json

    claim_file, adapter = ctx.claim_file, ctx.model
    results = []
    for c in claim_file.claims:
        r = EVALUATORS[c.type](ctx, c)
        if c.sensitivity:  # the same claim under every ablation x metric its type admits
            from circuitry.claims.sensitivity import claim_sensitivity

            r = r.model_copy(update={"sensitivity": claim_sensitivity(ctx, c, EVALUATORS[c.type], r)})
        results.append(r)
        if on_result is not None:
            on_result(r)
    counts = {k: sum(r.verdict.outcome == k for r in results) for k in ("supported", "refuted", "inconclusive")}
    file_hash = sha256_json(claim_file.model_dump(mode="json"))
    return VerdictReport(
        claim_file=claim_file_name, claim_file_sha256=file_hash, model_id=adapter.model_id,
        weights_sha256=adapter.weights_sha256, library_version=results[0].provenance.library_version,
        results=results, counts=counts, exit_code=0 if counts["supported"] == len(results) else 1,
        provenance=make_provenance(adapter, dataset=file_hash, seed=claim_file.seed, claim_file=claim_file_name,
                                   executor=ctx.executor, workers=ctx.workers))


def write_report(report: VerdictReport, out: str | Path) -> tuple[Path, Path]:
    """Write ``verdicts.json`` and ``verdicts.md`` into ``out`` atomically; return their paths."""
    from circuitry.io import atomic_write_json, atomic_write_text

    out = Path(out)
    return atomic_write_json(out / "verdicts.json", report), atomic_write_text(out / "verdicts.md",
                                                                                render_markdown(report))


def validate_file(path: str | Path, out: str | Path, *, model: Any = None, device: str = "cpu",
                  on_result: Callable[[ClaimResult], None] | None = None, executor: str = "serial",
                  workers: int | None = None) -> VerdictReport:
    """``circuitry validate FILE --out DIR`` as a function: load, validate, check, write.

    Raises
    ------
    ClaimFileError
        The file is invalid (schema or model); nothing was run and nothing written.
    """
    return validate_files([path], out, model=model, device=device, on_result=on_result, executor=executor,
                          workers=workers)[0]


def validate_files(paths: list[str | Path], out: str | Path, *, model: Any = None, device: str = "cpu",
                   on_result: Callable[[ClaimResult], None] | None = None, executor: str = "serial",
                   workers: int | None = None) -> list[VerdictReport]:
    """``circuitry validate A.yaml B.yaml --out DIR``: validate *every* file first (schema and model), then
    check them in order. One file writes to ``DIR``; several write to ``DIR/<file stem>/``. A model named
    by several files is loaded once.

    Raises
    ------
    ClaimFileError
        Any file is invalid: the message lists the problems of every invalid file, and nothing was run or
        written.
    """
    check_executor(executor, workers)
    paths = [Path(p) for p in paths]
    if not paths:
        raise ClaimFileError("no claim file given. Fix: circuitry validate FILE [FILE ...] --out DIR")
    stems = [p.stem for p in paths]
    if len(paths) > 1 and len(set(stems)) < len(stems):
        raise ClaimFileError(f"claim files {[str(p) for p in paths]} share a file name; their reports would "
                             "overwrite each other in DIR/<name>/. Fix: rename one")
    loaded: dict[str, Any] = {}
    prepared, errors = [], []
    for path in paths:
        try:
            cf = load_claim_file(path)
            base = path.resolve().parent
            key = str(model) if model is not None else _resolve(cf.model, base)
            if key not in loaded:
                loaded[key] = _load(cf, model, base, device)
            prepared.append((path, validate_against_model(cf, loaded[key], base_dir=base, executor=executor,
                                                          workers=workers)))
        except ClaimFileError as exc:
            errors.append(str(exc) if len(paths) == 1 else f"{path}: {exc}")
    if errors:
        raise ClaimFileError("\n".join(errors))
    reports = []
    for path, ctx in prepared:
        report = run_claims(ctx, claim_file_name=path.name, on_result=on_result)
        report = report.model_copy(update={"claim_file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
        write_report(report, Path(out) if len(paths) == 1 else Path(out) / path.stem)
        reports.append(report)
    return reports
