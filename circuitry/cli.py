"""The ``circuitry`` command line.

Each subcommand lives in the module that owns its feature and exposes ``add_parser(subparsers)``;
those modules import nothing heavy at import time, so ``circuitry --help`` is instant. Heavy imports
(torch, nnsight, matplotlib) happen inside the command handlers.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from circuitry._version import __version__
from circuitry.errors import CircuitryError

# (module, attribute) of each subcommand's add_parser, in the order --help lists them.
_COMMANDS = [
    "circuitry.analysis.cli",
    "circuitry.scores.cli",
    "circuitry.dynamics.cli",
    "circuitry.decodability.cli",
    "circuitry.interventions.cli",
    "circuitry.claims.cli",
    "circuitry.zoo.cli",
    "circuitry.discovery.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circuitry",
        description="Causal circuit discovery in transformer language models.",
    )
    parser.add_argument("--version", action="version", version=f"circuitry {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _COMMANDS:
        importlib.import_module(mod).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CircuitryError as exc:
        print(f"circuitry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished results were kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
