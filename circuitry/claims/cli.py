"""``circuitry validate FILE [FILE ...] --out DIR``: check the claims of claim files and write the verdicts.

Exit codes: 0 when every claim of every file is supported, 1 when any claim is refuted or inconclusive, 2
when any file is invalid (the message names the file, the claim id, the field and the fix; every file is
validated before any claim runs, so then nothing is run). Several files write to ``DIR/<file stem>/``.
Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import sys

from circuitry.cli_common import add_executor_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``validate`` subcommand; sets ``args.handler``."""
    p = subparsers.add_parser(
        "validate", help="check the claims of claim files (YAML/JSON) and write verdicts",
        description="Check every claim of one or more claim files (docs/claims-reference.md) and write "
                    "verdicts.json and verdicts.md to --out (one file) or --out/<file stem>/ (several). Exit code "
                    "0: every claim supported; 1: some claim refuted or inconclusive; 2: an invalid file "
                    "(every file is validated first; nothing run).")
    p.add_argument("files", nargs="+", metavar="FILE", help="claim files (.yaml, .yml or .json)")
    p.add_argument("--out", required=True, help="output folder for verdicts.json and verdicts.md")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    add_executor_args(p, "the random head sets of random-head claims")
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    """Run ``circuitry validate``; return the exit code."""
    from circuitry.claims.schema import ClaimFileError, load_claim_file

    try:  # every file's schema first, before the statistics and the models load (a bad field answers at once)
        for path in args.files:
            load_claim_file(path)
    except ClaimFileError as exc:
        print(f"circuitry validate: error: {exc}", file=sys.stderr)
        return 2
    from circuitry.claims.check import validate_files
    from circuitry.claims.verdicts import one_line

    from circuitry.cli_common import staged_output

    printer = None if args.quiet else (lambda r: print(one_line(r), flush=True))
    try:
        # every file's verdicts go to the staging folder, which replaces --out only when all files are done
        with staged_output(args) as stage:
            reports = validate_files(args.files, stage, device=args.device, on_result=printer,
                                     executor=args.executor, workers=args.workers)
    except ClaimFileError as exc:
        print(f"circuitry validate: error: {exc}", file=sys.stderr)
        return 2
    code = max(r.exit_code for r in reports)
    for r in reports:
        from pathlib import Path

        where = Path(args.out) if len(reports) == 1 else Path(args.out) / r.claim_file.rsplit('.', 1)[0]
        counts = ", ".join(f"{n} {k}" for k, n in r.counts.items())
        print(f"{r.claim_file}: {counts}; wrote {where}/verdicts.json and verdicts.md")
    print(f"exit code {code}")
    return code


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m circuitry.claims.cli FILE --out DIR``) until the command is
    registered in ``circuitry.cli``."""
    parser = argparse.ArgumentParser(prog="circuitry")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["validate", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
