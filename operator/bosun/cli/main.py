"""Argument parsing for `bosun` / `kubectl bosun`. Errors are one clear line, never a traceback."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from bosun import __version__
from bosun.settings import Settings


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="bosun", description="Bosun: every change runs as an Operation.")
    top.add_argument("--version", action="version", version=f"bosun {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch this namespace (repeatable; default: BOSUN_NAMESPACES, else all namespaces)",
    )
    run.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("--liveness-port", type=int, help="port of /healthz (0 disables; default 8080)")
    run.add_argument("--log-format", choices=["json", "plain"], help="log format (default json)")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level")
    return top


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings()
    changes: dict[str, object] = {}
    if args.all_namespaces:
        changes["namespaces"] = []
    elif args.namespace:
        changes["namespaces"] = list(args.namespace)
    for name in ("liveness_port", "log_format", "log_level"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return replace(settings, **changes)  # type: ignore[arg-type]


def run_cli(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        from bosun.handlers import run

        run(settings_from(args))
        return 0
    parser().print_help(sys.stderr)
    return 2
