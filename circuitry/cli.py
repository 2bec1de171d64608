"""The ``circuitry`` command line.

Each subcommand lives in the module that owns its feature and exposes ``add_parser(subparsers)``;
those modules import nothing heavy at import time, so ``circuitry --help`` is instant. Heavy imports
(torch, nnsight, matplotlib) happen inside the command handlers.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from circuitry._version import __version__
from circuitry.errors import CircuitryError, OutputError

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
    "circuitry.viewer.cli",
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
    previous = _sigterm_as_interrupt()
    try:
        from circuitry.cli_common import early_checks

        early_checks(args)
        return int(args.handler(args) or 0)
    except OutputError as exc:
        print(f"circuitry {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except CircuitryError as exc:
        print(f"circuitry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"circuitry {args.command}: interrupted; workers stopped, finished results were kept and the previous "
              "contents of the output folder are unchanged", file=sys.stderr)
        return 130
    except OSError as exc:  # a file the command could not read or write, outside the checks: no traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"circuitry {args.command}: error: {exc.strerror or exc}{where}; the previous contents of the output "
              "folder are unchanged. Fix: check the path, its permissions and the free space, then run again",
              file=sys.stderr)
        return 1
    finally:
        _stop_workers()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt():
    """``kill PID`` (SIGTERM) stops a run as Ctrl-C does: one message, workers stopped, exit 130."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _stop_workers() -> None:
    """Stop the process pools a command started (also after an error or an interrupt): no orphaned workers."""
    executors = sys.modules.get("circuitry.executors")
    if executors is not None:
        executors.shutdown_pools()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
