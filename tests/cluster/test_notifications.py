"""Notifications against a real HTTP receiver the test starts: delivery, signatures, a receiver down
for a minute, and the operator SIGKILLed between an operation's end and its notification."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from bosun.models.base import stamp
from bosun.models.names import API_VERSION
from bosun.notify.events import verify
from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.install import apply_operator_rbac
from tests.support.operator_process import OperatorProcess, ensure_running, free_port, module_operator
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

SECRET = b"webhook-signing-key"


class Receiver:
    """An HTTP receiver on loopback that keeps every request; it can be stopped and started again
    on the same port (a receiver down for a while)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, path: str = "/ce") -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body in list(self.requests) if p == path]

    def ids(self, path: str = "/ce") -> set[str]:
        return {e["id"] for e in self.events(path)}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    apply_operator_rbac(cluster)
    env = {"BOSUN_NOTIFY_RETRY_MAX_SECONDS": "4"}
    yield from module_operator(
        cluster.kubeconfig, tmp_path_factory.mktemp("bosun-notify"), command=["-m", "bosun", "run"], env=env
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.stop()


@pytest.fixture
def bosun(api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess) -> Bosun:
    ensure_running(operator)
    found = Bosun(api, cluster, namespace)
    found.app("web")
    found.wait_all_finished()
    return found


def notifiers(bosun: Bosun, receiver: Receiver) -> None:
    """A CloudEvents and a Slack Notifier, made a second after the App's provision ended (times have
    seconds only): that operation, still in the watch, is not to be told to them."""
    ended = max(o["status"]["finishedAt"] for o in bosun.list("operations"))
    wait_for(lambda: stamp() > ended, what="the next second")
    bosun.core.create_namespaced_secret(
        bosun.namespace,
        {"metadata": {"name": "hook"}, "data": {"hmac": base64.b64encode(SECRET).decode()}},
    )
    for name, path, format_ in (("on-call", "/ce", "CloudEvents"), ("chat", "/slack", "Slack")):
        spec: dict[str, Any] = {"url": f"http://127.0.0.1:{receiver.port}{path}", "format": format_}
        if format_ == "CloudEvents":
            spec["signingSecret"] = {"name": "hook", "key": "hmac"}
        else:
            spec["events"] = ["Ended"]
        bosun.apply({"apiVersion": API_VERSION, "kind": "Notifier", "metadata": {"name": name}, "spec": spec})


def delivering(bosun: Bosun, value: str, notifier: str = "on-call") -> dict[str, Any] | None:
    """The Notifier's Delivering condition, if it has this status."""
    conditions = (bosun.get("notifiers", notifier).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Delivering" and c["status"] == value), None)


def uid_of(bosun: Bosun, name: str) -> str:
    return str(bosun.get("operations", name)["metadata"]["uid"])


def test_every_event_reaches_each_notifier_signed_in_order_with_the_final_state(
    bosun: Bosun, receiver: Receiver
) -> None:
    notifiers(bosun, receiver)
    bosun.operation("bounce", "web")
    assert bosun.wait_phase("bounce")["phase"] == "Succeeded"
    uid = uid_of(bosun, "bounce")
    want = {f"{uid}:created", f"{uid}:started", f"{uid}:ended"}
    wait_for(lambda: want <= receiver.ids(), what="created, started and ended at the receiver")
    assert {e["id"].split(":")[0] for e in receiver.events()} == {uid}  # nothing from before the Notifier
    mine = [e for e in receiver.events() if e["id"].startswith(uid)]
    assert len(mine) == len({e["id"] for e in mine}) == 3, mine  # at least once, and without a crash exactly once
    assert [e["type"] for e in mine] == [f"dev.bosun.operation.{k}" for k in ("created", "started", "ended")]
    ended = next(e for e in mine if e["id"] == f"{uid}:ended")
    assert ended["data"]["phase"] == "Succeeded" and ended["data"]["rollback"]["state"] == "NotNeeded"
    for path, headers, body in receiver.requests:
        if path == "/ce":
            assert verify(body, headers["X-Bosun-Signature"], SECRET)  # signed with the Secret's key
            assert headers["Idempotency-Key"] == json.loads(body)["id"]
    wait_for(
        lambda: any("ended" in json.loads(b)["text"] for p, _, b in receiver.requests if p == "/slack"), what="Slack"
    )
    slack = [json.loads(b)["text"] for p, _, b in receiver.requests if p == "/slack"]
    assert all("bounce" in t for t in slack) and not any(" started." in t for t in slack)  # only Ended, as asked
    recorded = wait_for(
        lambda: n if len(n := bosun.status("bounce").get("notified") or []) >= 4 else None, what="the record"
    )
    assert {"on-call/created", "on-call/started", "on-call/ended", "chat/ended"} <= set(recorded)
    assert delivering(bosun, "True") is not None


def ended_while_down(bosun: Bosun, receiver: Receiver, name: str) -> str:
    """An operation run to its end while the receiver is down; its uid."""
    notifiers(bosun, receiver)
    receiver.stop()
    bosun.operation(name, "web")
    assert bosun.wait_phase(name)["phase"] == "Succeeded"  # not held back by the receiver
    return uid_of(bosun, name)


def test_a_receiver_down_for_a_minute_gets_every_event_when_it_is_back_and_the_failure_is_visible(
    bosun: Bosun, receiver: Receiver, operator: OperatorProcess
) -> None:
    uid = ended_while_down(bosun, receiver, "while-down")
    failing = wait_for(lambda: delivering(bosun, "False"), what="Delivering False on the Notifier")
    assert "unreachable" in failing["message"]
    assert 'outcome="failed"' in operator.metrics()
    time.sleep(60)  # the receiver stays down for a minute
    assert not receiver.ids()
    receiver.start()
    want = {f"{uid}:created", f"{uid}:started", f"{uid}:ended"}
    wait_for(lambda: want <= receiver.ids(), timeout=60, what="every event once the receiver is back")
    wait_for(lambda: delivering(bosun, "True"), what="Delivering True again")


def test_an_operator_killed_between_the_end_and_the_notification_sends_it_after_restart(
    bosun: Bosun, receiver: Receiver, operator: OperatorProcess
) -> None:
    uid = ended_while_down(bosun, receiver, "then-killed")
    assert not (bosun.status("then-killed").get("notified") or [])
    operator.kill()  # the end is recorded, its notification not sent
    receiver.start()
    operator.start()
    wait_for(lambda: f"{uid}:ended" in receiver.ids(), timeout=90, what="the Ended event after the restart")
    ended = next(e for e in receiver.events() if e["id"] == f"{uid}:ended")
    assert ended["data"]["phase"] == "Succeeded"
    wait_for(lambda: "on-call/ended" in (bosun.status("then-killed").get("notified") or []), what="the record")
