"""Which code a result was measured on: every results file names its commit, so a figure can be
traced to the code that made it (and a tree with uncommitted changes says so). Results files
themselves do not count as changes: a run rewrites them before it asks."""

from __future__ import annotations

import subprocess
from pathlib import Path


def commit_of(root: Path) -> str:
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    code_only = ["--", ".", ":!benchmarks/results"]
    changes = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", *code_only], capture_output=True, text=True
    ).stdout
    return head.strip() + (" (with uncommitted changes)" if changes.strip() else "")
