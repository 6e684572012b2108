"""The dashboard's server on its own (no cluster): what it refuses before it reads anything."""

from __future__ import annotations

import http.client
from typing import Any

import pytest

from bosun.cli import dashboard


class Unreached:
    """Stands in for the cluster: no request of these tests gets as far as reading it."""

    def stop(self) -> None:
        pass


@pytest.fixture
def port() -> Any:
    server = dashboard.serve(Unreached())  # type: ignore[arg-type]
    yield server.server_address[1]
    server.shutdown()


@pytest.mark.parametrize("length", ["-5", "abc"])
def test_a_bad_content_length_is_answered_at_once_not_waited_on(port: int, length: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.putrequest("POST", "/ns/x/operations/y/cancel")
    connection.putheader("Content-Length", length)
    connection.endheaders()
    assert connection.getresponse().status == 403  # no token: refused, after reading nothing


def test_another_host_name_is_not_served(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/", headers={"Host": "rebound.example"})
    assert connection.getresponse().status == 421
