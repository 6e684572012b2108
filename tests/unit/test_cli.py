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
