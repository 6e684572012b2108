"""Each engine's dump and replay commands (bosun.operations.database_dump.DUMPERS), and Redis' save
before a snapshot (database_backup.REDIS_BGSAVE), run by a real
shell against stand-in tools that record what they were asked: the scripts' own logic (which
databases MySQL dumps, where Redis' RDB goes and that the server stops without saving) is checked
here; the real tools run on the real nodes (tests/cluster/test_real_nodes.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bosun.backup_records import dump_key
from bosun.models.database import Engine
from bosun.operations.database_backup import REDIS_BGSAVE, REDIS_SAVED
from bosun.operations.database_dump import DUMPERS, REDIS_DATA


def tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    record = f'{{ printf %s {name}; printf \' [%s]\' "$@"; echo; }} >> "$CALLS"'  # each argument bracketed
    path.write_text(f"#!/bin/sh\n{record}\n{body}\n")
    path.chmod(0o755)


def run(
    command: list[str], bin_dir: Path, calls: Path, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), **env}
    return subprocess.run(command, input=stdin, capture_output=True, env=environment, timeout=30, check=False)


def test_every_engine_has_a_dump_kept_under_its_namespace_with_its_own_suffix() -> None:
    assert set(DUMPERS) == set(Engine)
    keys = {engine: dump_key("team-a", "db", "nightly", engine) for engine in Engine}
    assert keys == {
        Engine.POSTGRESQL: "backups/team-a/db/nightly.pgdump",
        Engine.MYSQL: "backups/team-a/db/nightly.sql",
        Engine.REDIS: "backups/team-a/db/nightly.rdb",
    }


def test_mysql_dumps_every_database_but_the_servers_own_in_one_transaction(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    tool(tmp_path, "mysql", 'echo shop; echo "app *"')  # what information_schema lists, system schemas left out
    tool(tmp_path, "mysqldump", 'echo "-- dumped with MYSQL_PWD=$MYSQL_PWD"')
    done = run(DUMPERS[Engine.MYSQL].dump, tmp_path, calls, MYSQL_ROOT_PASSWORD="s3cret")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"-- dumped with MYSQL_PWD=s3cret\n"
    listing, dumping = calls.read_text().splitlines()
    assert "NOT IN ('mysql','sys','information_schema','performance_schema')" in listing
    assert "--single-transaction" in dumping and dumping.endswith("[--databases] [shop] [app *]")


def test_mysql_with_no_database_of_its_own_dumps_a_comment_and_a_failing_listing_fails(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    tool(tmp_path, "mysql", "true")
    tool(tmp_path, "mysqldump", "exit 9")
    done = run(DUMPERS[Engine.MYSQL].dump, tmp_path, calls, MYSQL_ROOT_PASSWORD="x")
    assert (done.returncode, done.stdout) == (0, b"-- no databases but the server's own\n")
    tool(tmp_path, "mysql", "echo 'ERROR 1045 (28000): Access denied' >&2; exit 1")
    refused = run(DUMPERS[Engine.MYSQL].dump, tmp_path, calls, MYSQL_ROOT_PASSWORD="x")
    assert refused.returncode != 0 and b"Access denied" in refused.stderr


def fake_redis(bin_dir: Path, data: Path, appendonly: str = "no") -> None:
    answers = {"dir": str(data), "dbfilename": "dump.rdb", "appendonly": appendonly}
    cases = "".join(
        f'  *"config get {key}") printf "%s\\n%s\\n" {key} "{value}" ;;\n' for key, value in answers.items()
    )
    tool(bin_dir, "redis-cli", f'case "$*" in\n{cases}  *shutdown*) exit 1 ;;\nesac')  # it drops the connection


def replay_with_volume_at(volume: Path) -> list[str]:
    """Redis' replay with the volume mounted at `volume` instead of /data."""
    return [part.replace(REDIS_DATA, str(volume)) for part in DUMPERS[Engine.REDIS].replay]


def test_redis_replay_puts_the_rdb_where_the_server_keeps_its_own_and_stops_it_without_saving(tmp_path: Path) -> None:
    data, calls = tmp_path / "data", tmp_path / "calls"
    data.mkdir()
    (data / "dump.rdb").write_bytes(b"the empty server's")
    fake_redis(tmp_path, data)
    done = run(replay_with_volume_at(data), tmp_path, calls, stdin=b"REDIS0011 the dump")
    assert done.returncode == 0, done.stderr
    assert (data / "dump.rdb").read_bytes() == b"REDIS0011 the dump"
    assert sorted(p.name for p in data.iterdir()) == ["dump.rdb"]  # written beside it, then renamed over it
    assert calls.read_text().splitlines()[-1] == "redis-cli [-h] [127.0.0.1] [--raw] [shutdown] [nosave]"


@pytest.mark.parametrize("appendonly", ["yes", ""])
def test_redis_replay_refuses_a_server_that_would_not_load_it(tmp_path: Path, appendonly: str) -> None:
    data, calls = tmp_path / "data", tmp_path / "calls"
    data.mkdir()
    fake_redis(tmp_path, data, appendonly)
    refused = run(replay_with_volume_at(data), tmp_path, calls, stdin=b"REDIS0011")
    assert refused.returncode == 3 and b"append-only" in refused.stderr
    assert "shutdown" not in calls.read_text() and list(data.iterdir()) == []


def fake_saving_redis(bin_dir: Path, refusals: int, saving_for: int, status: str = "ok") -> None:
    """redis-cli as a server answers it: BGSAVE refused while a save runs, then started; INFO says
    a save is in progress for `saving_for` more looks, then how the last one ended."""
    tool(
        bin_dir,
        "redis-cli",
        f"""state="$CALLS.n"; n=$(cat "$state" 2>/dev/null || echo 0); echo $((n + 1)) > "$state"
busy() {{ echo "ERR Background save already in progress"; }}
started() {{ echo 0 > "$state"; echo "Background saving started"; }}
case "$*" in
  *bgsave) if [ "$n" -lt {refusals} ]; then busy; else started; fi ;;
  *"info persistence") if [ "$n" -lt {saving_for} ]; then echo rdb_bgsave_in_progress:1; fi
                       echo rdb_last_bgsave_status:{status} ;;
esac""",
    )


def test_redis_backs_up_after_a_bgsave_that_ended_well_and_never_blocks_clients_with_save(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    fake_saving_redis(tmp_path, refusals=2, saving_for=3)
    done = run(REDIS_BGSAVE, tmp_path, calls)
    assert done.returncode == 0 and done.stdout.decode().strip() == REDIS_SAVED, done
    asked = [line.rsplit("[--raw] ", 1)[-1] for line in calls.read_text().splitlines()]
    assert asked.count("[bgsave]") == 3  # refused twice while another save ran, then started
    assert asked.count("[info] [persistence]") == 5  # saving at 3 looks, done at the 4th, then how it ended
    assert "[save]" not in asked
    fake_saving_redis(tmp_path, refusals=0, saving_for=0, status="err")
    failed = run(REDIS_BGSAVE, tmp_path, calls)
    assert REDIS_SAVED.encode() not in failed.stdout


def test_redis_replay_refuses_a_server_whose_rdb_is_not_on_the_volume(tmp_path: Path) -> None:
    """An image that keeps its RDB outside the volume would start again from its own empty layer."""
    data, calls = tmp_path / "data", tmp_path / "calls"
    data.mkdir()
    fake_redis(tmp_path, data)
    refused = run(replay_with_volume_at(tmp_path / "volume"), tmp_path, calls, stdin=b"REDIS0011")
    assert refused.returncode == 3 and b"not on the volume" in refused.stderr
    assert "shutdown" not in calls.read_text() and list(data.iterdir()) == []
