"""`kubectl bosun ...` in tests: through kubectl's plugin mechanism, as a user runs it, with no store keys."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.cluster import LocalCluster


def kubectl_bosun(
    cluster: LocalCluster, *args: str, timeout: float = 240, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"}
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}  # people hold no store credentials
    return subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "bosun", *args],  # kubectl passes no flags before a plugin's name
        capture_output=True,
        text=True,
        input=stdin,
        env={**env, "KUBECONFIG": str(cluster.kubeconfig)},
        timeout=timeout,
        check=False,
    )
