"""Claim files: write a paper's claims, have circuitry check them (``circuitry validate``).

* :func:`load_claim_file` / :func:`parse_claim_file`: read and validate a YAML or JSON claim file
  (:class:`ClaimFile`; JSON Schema in ``claim-file.schema.json``).
* :func:`check_claims`: evaluate every claim on the model -> :class:`VerdictReport`.
* :func:`validate_file`: load, check, write ``verdicts.json`` and ``verdicts.md``.

See ``docs/claims-reference.md`` (every field) and ``docs/tutorials/validate-a-claim.md``. Exports are
lazy: ``import circuitry.claims.cli`` imports neither torch nor pydantic models.
"""

from circuitry._lazy import lazy_exports

_EXPORTS = {
    "ClaimFile": "schema", "ClaimFileError": "schema", "load_claim_file": "schema", "parse_claim_file": "schema",
    "json_schema": "schema", "AblationVsRandom": "schema", "AblationTable": "schema", "PathShare": "schema",
    "CircuitClaim": "schema", "AblationEffect": "schema", "check_claims": "check", "validate_files": "check",
    "run_claims": "check", "validate_file": "check", "write_report": "check",
    "validate_against_model": "check", "ClaimResult": "verdicts", "Evidence": "verdicts", "TableRow": "verdicts",
    "VerdictReport": "verdicts", "render_markdown": "verdicts", "one_line": "verdicts",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
