"""Argument parsing for `bosun` / `kubectl bosun`. Errors are one clear line, never a traceback."""

from __future__ import annotations

import argparse
import sys

from bosun import __version__


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="bosun", description="Bosun: every change runs as an Operation.")
    top.add_argument("--version", action="version", version=f"bosun {__version__}")
    top.add_subparsers(dest="command", metavar="COMMAND")
    return top


def run_cli(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help(sys.stderr)
        return 2
    return 0
