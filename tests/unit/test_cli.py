"""`bosun run` turns flags into settings; flags win over the environment."""

from __future__ import annotations

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
