"""hack/ scripts fail with one clear line, not a stack trace, when a prerequisite is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_missing_go_is_named(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "date", "cat", "grep", "sed", "id"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    result = run([str(ROOT / "hack" / "build.sh")], {"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "'go' is not installed" in result.stderr
    assert "Traceback" not in result.stderr and "panic" not in result.stderr


def test_unreachable_module_proxy_is_named(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        BOSUN_CACHE=str(tmp_path / "cache"),
        GOMODCACHE=str(tmp_path / "mod"),
        GOPROXY="http://127.0.0.1:9",  # nothing listens on the discard port
        GOFLAGS="-mod=mod",
    )
    result = run([str(ROOT / "hack" / "build.sh")], env)
    assert result.returncode != 0
    assert "cannot download" in result.stderr and "Go module proxy" in result.stderr


def test_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, BOSUN_CLUSTER_NAME="porttest", BOSUN_APISERVER_PORT=str(port))
        result = run([str(ROOT / "hack" / "cluster"), "up"], env)
    assert result.returncode != 0
    assert f"port {port} is already in use" in result.stderr


def test_an_unknown_build_part_is_named_with_the_parts_there_are() -> None:
    result = run([str(ROOT / "hack" / "build.sh"), "kubelet"], dict(os.environ))
    assert result.returncode == 2
    assert "unknown part 'kubelet'" in result.stderr
    assert "control-plane" in result.stderr and "seaweedfs" in result.stderr


def test_a_published_figure_that_differs_from_its_results_file_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "moves.json").write_text('{"summary": {"median": 2.94}}')
    page = tmp_path / "README.md"
    page.write_text("a move: <!--fig moves.json summary.median .1f-->2.5<!--/fig--> s\n")
    figures = [str(ROOT / "hack" / "figures"), "--root", str(tmp_path)]
    checked = run([*figures, "--check"], dict(os.environ))
    assert checked.returncode == 1 and "'2.5' should be '2.9'" in checked.stderr
    assert run([*figures, "--write"], dict(os.environ)).returncode == 0
    assert "-->2.9<!--/fig-->" in page.read_text()
    assert run([*figures, "--check"], dict(os.environ)).returncode == 0


def test_a_failed_demo_says_what_failed_and_what_to_try(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "date", "cat", "grep", "sed", "id", "tail", "sha256sum", "cut", "python3"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    result = run([str(ROOT / "hack" / "demo")], {"PATH": str(bin_dir), "HOME": str(tmp_path)})  # no Go
    assert result.returncode != 0
    assert "The demo failed while installing what the demo needs" in result.stderr, result.stderr
    assert "What to try:" in result.stderr and "hack/cluster down && hack/demo" in result.stderr
    assert "Traceback" not in result.stderr
