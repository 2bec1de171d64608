"""``circuitry view DIR``: open the interactive circuit page (``DIR/report.html``) in the default browser."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "view", help="open the interactive circuit page (report.html) of an analyze or discover folder",
        description="Open DIR/report.html, the interactive circuit page that circuitry analyze and circuitry discover "
                    "write beside their report, in the default web browser, and print its path. The page works "
                    "offline. Exit 0: done; 2: DIR or its report.html is missing.")
    p.add_argument("dir", metavar="DIR", help="the --out folder of circuitry analyze or circuitry discover")
    p.add_argument("--no-browser", action="store_true", help="only print the path of report.html")
    p.add_argument("--build", action="store_true",
                   help="first (re)write DIR/report.html from the files analyze or discover wrote there (a folder "
                        "from a circuitry without the page, or after editing them)")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from circuitry.errors import InputError

    d = Path(args.dir)
    if not d.is_dir():
        raise InputError(f"DIR={args.dir!r} is not a folder. Fix: pass the --out folder of circuitry analyze or "
                         f"circuitry discover, or make one with: circuitry analyze --out {args.dir}")
    page = d / "report.html"
    if args.build:
        from circuitry.viewer import write_report_html

        write_report_html(d)
    if not page.is_file():
        made_by = ("circuitry analyze" if (d / "report.json").is_file() else
                   "circuitry discover" if (d / "discovery.json").is_file() else None)
        fix = (f"write it from the files {made_by} left there: circuitry view {args.dir} --build"
               if made_by else f"run circuitry analyze --out {args.dir} (or circuitry discover ... --out {args.dir}), "
               "which writes it")
        raise InputError(f"{page} does not exist: circuitry analyze and circuitry discover write it beside their "
                         f"report. Fix: {fix}")
    print(page.resolve())
    if not args.no_browser:
        import webbrowser

        if not webbrowser.open(page.resolve().as_uri()):
            print("circuitry view: no browser could be started here; open the path above in one")
    return 0
