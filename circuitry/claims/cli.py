"""``circuitry validate FILE --out DIR``: check the claims of a claim file and write the verdicts.

Exit codes: 0 when every claim is supported, 1 when any claim is refuted or inconclusive, 2 when the
file is invalid (the message names the claim id, the field and the fix; no claim is run then).
Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``validate`` subcommand; sets ``args.handler``."""
    p = subparsers.add_parser(
        "validate", help="check the claims of a claim file (YAML/JSON) and write verdicts",
        description="Check every claim of a claim file (docs/claims-reference.md) and write verdicts.json and "
                    "verdicts.md to --out. Exit code 0: every claim supported; 1: some claim refuted or "
                    "inconclusive; 2: invalid file (nothing run).")
    p.add_argument("file", help="claim file (.yaml, .yml or .json)")
    p.add_argument("--out", required=True, help="output folder for verdicts.json and verdicts.md")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    """Run ``circuitry validate``; return the exit code."""
    from circuitry.claims.check import validate_file
    from circuitry.claims.schema import ClaimFileError
    from circuitry.claims.verdicts import one_line

    printer = None if args.quiet else (lambda r: print(one_line(r), flush=True))
    try:
        report = validate_file(args.file, args.out, device=args.device, on_result=printer)
    except ClaimFileError as exc:
        print(f"circuitry validate: error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {k}" for k, n in report.counts.items())
    print(f"{counts}; wrote {args.out}/verdicts.json and verdicts.md; exit code {report.exit_code}")
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m circuitry.claims.cli FILE --out DIR``) until the command is
    registered in ``circuitry.cli``."""
    parser = argparse.ArgumentParser(prog="circuitry")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["validate", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
