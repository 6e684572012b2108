"""Entry point: `bosun run` starts the operator; the other sub-commands are the kubectl plugin."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from bosun.cli.main import run_cli

    return run_cli(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
