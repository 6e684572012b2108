"""`bosun run` turns flags into settings; flags win over the environment."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bosun.cli.main import parser, settings_from


def test_namespaces_and_ports_from_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOSUN_NAMESPACES", "ignored")
    args = parser().parse_args(["run", "-n", "a", "-n", "b", "--liveness-port", "0", "--log-format", "plain"])
    settings = settings_from(args)
    assert settings.namespaces == ["a", "b"]
    assert settings.liveness_port == 0
    assert settings.log_format == "plain"


def test_all_namespaces_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOSUN_NAMESPACES", "x,y")
    assert settings_from(parser().parse_args(["run"])).namespaces == ["x", "y"]
    assert settings_from(parser().parse_args(["run", "-A"])).namespaces == []


def test_leader_election_is_on_unless_a_person_opts_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `bosun run` started the same way must never both drive an operation: only an explicit
    flag or setting turns the Lease off."""
    monkeypatch.delenv("BOSUN_LEADER_ELECTION", raising=False)
    assert settings_from(parser().parse_args(["run"])).leader_election is True
    assert settings_from(parser().parse_args(["run", "--no-leader-elect"])).leader_election is False
    monkeypatch.setenv("BOSUN_LEADER_ELECTION", "false")
    assert settings_from(parser().parse_args(["run"])).leader_election is False
    assert settings_from(parser().parse_args(["run", "--leader-elect"])).leader_election is True
    monkeypatch.setenv("BOSUN_LEADER_ELECTION", "")  # set but empty, as an unset Helm value renders
    assert settings_from(parser().parse_args(["run"])).leader_election is True


def test_plan_reads_lists_and_refuses_what_is_not_an_object() -> None:
    from bosun.cli.commands import CliError, _objects, target_of

    listed = {"kind": "List", "items": [{"kind": "App", "metadata": {"name": "web"}}, {"kind": "Service"}]}
    assert [o.get("kind") for o in _objects([listed], "f.yaml")] == ["App", "Service"]
    for bad in (["a", "list"], "a scalar", {"kind": "App", "metadata": "oops"}):
        with pytest.raises(CliError, match="not a Kubernetes object"):
            _objects([bad], "f.yaml")
    assert target_of("database/pg") == ("Database", "pg") and target_of("App/web") == ("App", "web")
    with pytest.raises(CliError, match="app/NAME or database/NAME"):
        target_of("deployment/web")


def test_a_report_field_over_the_csv_limit_or_a_damaged_report_is_read_with_a_warning() -> None:
    from types import SimpleNamespace

    from bosun.activity.report import DIGEST, csv_digest, render_csv
    from bosun.cli.commands import CSV_KEY, report_rows

    def part(text: str, digest: str | None) -> SimpleNamespace:
        annotations = {DIGEST: digest} if digest is not None else {}
        return SimpleNamespace(metadata=SimpleNamespace(name="r", annotations=annotations), data={CSV_KEY: text})

    header = render_csv([]).strip()
    huge = "x" * 300_000  # over csv's own 131072-character field limit
    text = f'{header}\nop-1,deploy,App,shop,alice,Failed,,2026-12-01T00:00:00Z,,,,"{huge}",false\n'
    err = io.StringIO()
    rows = report_rows(part(text, csv_digest(text)), err)
    assert len(rows) == 1 and rows[0]["message"] == huge and err.getvalue() == ""

    forged = text.replace("alice", "mallory")
    assert report_rows(part(forged, csv_digest(text)), err)[0]["initiator"] == "mallory"
    assert "warning: activity report r was altered after Bosun wrote it" in err.getvalue()
    report_rows(part(forged, None), err)
    assert "carries no digest" in err.getvalue()

    err = io.StringIO()
    cut = f"{header}\nop-1,deploy\nop-2,restart,App,web\rbob,Succeeded\nop-3,x\n"  # altered: a short row, a bare CR
    rows = report_rows(part(cut, csv_digest(cut)), err)
    assert rows[0]["operation"] == "op-1" and rows[0]["initiator"] == ""  # missing columns read as empty
    assert "warning: activity report r is damaged after 1 rows" in err.getvalue()
    assert report_rows(SimpleNamespace(metadata=SimpleNamespace(name="r", annotations=None), data=None), err) == []


def test_plan_refuses_a_yaml_bomb_and_an_oversized_file_at_once(tmp_path: Path) -> None:
    import time

    from bosun.cli.commands import MAX_PLAN_BYTES, CliError, plan_file

    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):  # 9^9 values once expanded, from 73 aliases: under the alias cap
        levels.append(f"{chr(97 + n)}: &{chr(97 + n)} [{', '.join(['*' + chr(96 + n)] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\n")
    started = time.monotonic()
    with pytest.raises(CliError, match=r"expands .* to over"):
        plan_file(None, str(bomb), io.StringIO(), io.StringIO())  # type: ignore[arg-type]
    many = tmp_path / "aliases.yaml"
    many.write_text("a: &a x\nb: [" + ", ".join(["*a"] * 500) + "]\n")
    with pytest.raises(CliError, match="more than 100 YAML aliases"):
        plan_file(None, str(many), io.StringIO(), io.StringIO())  # type: ignore[arg-type]
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_PLAN_BYTES)
    with pytest.raises(CliError, match="is over 4 MiB"):
        plan_file(None, str(big), io.StringIO(), io.StringIO())  # type: ignore[arg-type]
    assert time.monotonic() - started < 10


def test_no_traceback_reaches_a_user(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bosun.cli import commands
    from bosun.cli.main import run_cli

    def broken(*_: object) -> int:
        raise KeyError("spec")  # what a report or status Bosun never wrote could make a reader do

    monkeypatch.delenv("BOSUN_DEBUG", raising=False)
    monkeypatch.setattr(commands, "connect", lambda *_: None)
    monkeypatch.setattr(commands, "status", broken)
    assert run_cli(["status", "op-1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: KeyError: 'spec'") and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_closed_pipe_is_not_an_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bosun.cli import commands
    from bosun.cli.main import run_cli

    def closed(*_: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(commands, "connect", lambda *_: None)
    monkeypatch.setattr(commands, "status", closed)
    monkeypatch.setattr("os.dup2", lambda *_: None)  # pytest's captured stdout stays as it is
    assert run_cli(["status", "op-1"]) == 0
    assert capsys.readouterr().err == ""
