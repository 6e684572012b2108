"""The one writer of Operation status keeps it small whatever a message holds, and a status the
API server refuses for its size is written again smaller: an operation is never left unrecorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bosun.engine.oplog import capped
from bosun.engine.status import StatusWriter
from bosun.engine.target import TargetFields, TargetStatus
from bosun.errors import TransientError
from bosun.kube import TooLarge, map_error
from bosun.models.operation import OperationLogStatus, OperationStatus, Phase, StepStatus


class SizeLimitedKube:
    """Refuses, as etcd does, any status write over `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.written: list[dict[str, Any]] = []
        self.refused = 0

    async def patch_status(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        if len(json.dumps(body)) > self.limit:
            self.refused += 1
            raise TooLarge(f"patch {kind} {namespace}/{name}: 500 etcdserver: request is too large")
        self.written.append(body)


def test_capped_says_how_much_the_log_holds() -> None:
    assert capped("short", 100) == "short"
    long = "é" * 3000  # 6000 bytes of UTF-8
    cut = capped(long, 1024)
    assert len(cut.encode()) <= 1024 and cut.endswith("more bytes in the log)")


async def test_a_huge_refusal_is_recorded_capped_in_message_and_conditions() -> None:
    kube = SizeLimitedKube(limit=1_000_000)
    writer = StatusWriter(kube, "ns", "op", 1)  # type: ignore[arg-type]
    refusal = "process name " + "web\n" * 100_000 + " is not in the App"
    status = OperationStatus(phase=Phase.FAILED, reason="InvalidParameters", message=refusal)
    status.steps = [StepStatus(name="check", message=refusal)]
    await writer.save(status)
    body = kube.written[-1]
    assert len(json.dumps(body)) < 20_000
    assert body["message"].endswith("more bytes in the log)") and len(body["message"].encode()) <= 2048
    assert all(len(c["message"].encode()) <= 2048 for c in body["conditions"])


async def test_a_status_refused_for_its_size_is_written_again_smaller() -> None:
    kube = SizeLimitedKube(limit=6_000)
    writer = StatusWriter(kube, "ns", "op", 1)  # type: ignore[arg-type]
    writer.log = lambda: OperationLogStatus(lines=["x" * 4000], total=1)
    status = OperationStatus(phase=Phase.FAILED, reason="StepFailed", message="m" * 1500)
    await writer.save(status)
    assert kube.refused == 1 and kube.written and kube.written[-1]["phase"] == "Failed"
    assert "log" not in kube.written[-1]


def test_etcd_s_size_refusal_is_permanent_not_retried_forever() -> None:
    from kubernetes_asyncio.client.exceptions import ApiException

    error = ApiException(status=500, reason="Internal Server Error")
    error.body = json.dumps({"message": "etcdserver: request is too large"})
    assert isinstance(map_error(error, "patch status"), TooLarge)
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = json.dumps({"message": "status.plan: Too long: may not be more than 262144 bytes"})
    assert isinstance(map_error(error, "patch status"), TooLarge)


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(_: float) -> None:
        return None

    monkeypatch.setattr("bosun.engine.status.asyncio.sleep", instant)


class Target:
    """One Database as the API server keeps it: a status, a resourceVersion, and conflicts on
    writes made onto a version that is no longer current."""

    def __init__(self, status: dict[str, Any], *, intruders: int = 0) -> None:
        self.status, self.version, self.intruders = dict(status), 1, intruders
        self.writes: list[dict[str, Any]] = []

    async def read(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        return {"metadata": {"resourceVersion": str(self.version)}, "status": dict(self.status)}

    async def patch_status(self, kind: str, namespace: str, name: str, body: dict[str, Any], version: str) -> None:
        if self.intruders:  # someone else wrote in between this read and this write
            self.intruders -= 1
            self.version += 1
        if version != str(self.version):
            raise TransientError(f"409 Conflict: {kind} {name} was modified")
        self.status.update(body)
        self.version += 1
        self.writes.append(body)


async def test_the_target_writer_writes_only_what_differs_and_nothing_when_nothing_does() -> None:
    target = Target({"phase": "Running", "node": "a-1"})
    fields = TargetFields(TargetStatus(target, writes=target), "Database", "ns", "pg")  # type: ignore[arg-type]
    assert await fields.set(phase="Running", node="a-2")
    assert target.writes == [{"node": "a-2"}]
    assert await fields.set(phase="Running", node="a-2")
    assert len(target.writes) == 1  # nothing changed: no write at all


async def test_the_target_writer_reads_again_after_a_conflict_and_gives_up_only_when_they_never_stop() -> None:
    target = Target({"phase": "Pending"}, intruders=2)
    funnel = TargetStatus(target, writes=target)  # type: ignore[arg-type]
    assert await funnel.change("Database", "ns", "pg", {"phase": "Running"})
    assert target.writes == [{"phase": "Running"}] and target.status["phase"] == "Running"
    endless = Target({"phase": "Pending"}, intruders=1_000)
    with pytest.raises(TransientError, match="kept changing"):
        await TargetStatus(endless, writes=endless).change("Database", "ns", "pg", {"phase": "Running"})  # type: ignore[arg-type]


async def test_the_target_writer_says_when_the_target_is_gone() -> None:
    class Gone(Target):
        async def read(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
            return None

    gone = Gone({})
    assert not await TargetStatus(gone, writes=gone).change("App", "ns", "web", {"phase": "Running"})  # type: ignore[arg-type]
    assert gone.writes == []
