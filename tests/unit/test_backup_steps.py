"""The backup table's decisions: which snapshot class, what each engine needs to be consistent."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from bosun.cli.backups import database_of
from bosun.cli.commands import CliError
from bosun.engine.steps import Skipped
from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube, NotFound
from bosun.models.database import DatabaseSpec
from bosun.models.names import DEFAULT_SNAPSHOT_CLASS
from bosun.operations.database_backup import (
    BACKUP,
    CHECKPOINT_DONE,
    REDIS_SAVED,
    backup_first,
    consistency,
    snapshot_class,
)
from bosun.operations.database_ctx import DatabaseContext, DatabasePlan


def klass(name: str, driver: str, default: bool = False) -> dict[str, Any]:
    annotations = {DEFAULT_SNAPSHOT_CLASS: "true"} if default else {}
    return {"metadata": {"name": name, "annotations": annotations}, "driver": driver}


class FakeKube:
    def __init__(self, classes: list[dict[str, Any]] | None = None, exec_says: str | Exception = "") -> None:
        self.classes, self.exec_says = classes, exec_says
        self.ran: list[list[str]] = []

    async def snapshot_classes(self) -> list[dict[str, Any]]:
        if self.classes is None:
            raise NotFound("404 the server could not find the requested resource")
        return self.classes

    async def list_pods(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        return [{"metadata": {"name": "pg-abc"}, "status": {"phase": "Running"}}]

    async def exec_in_pod(self, namespace: str, pod: str, container: str, command: list[str], timeout: float) -> str:
        self.ran.append(command)
        if isinstance(self.exec_says, Exception):
            raise self.exec_says
        return self.exec_says


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_class_marked_default_for_the_driver_wins_else_the_first_by_name() -> None:
    classes = [klass("z", "csi.a"), klass("b", "csi.a"), klass("a", "csi.other", default=True)]
    assert run(snapshot_class(cast(Kube, FakeKube(classes)), "csi.a")) == "b"
    classes.append(klass("y", "csi.a", default=True))
    assert run(snapshot_class(cast(Kube, FakeKube(classes)), "csi.a")) == "y"


@pytest.mark.parametrize(
    ("classes", "said"),
    [(None, "does not serve the VolumeSnapshot API"), ([klass("a", "csi.other")], "no VolumeSnapshotClass serves")],
)
def test_no_way_to_snapshot_is_refused_before_anything_changes(classes: Any, said: str) -> None:
    with pytest.raises(PermanentError) as refused:
        run(snapshot_class(cast(Kube, FakeKube(classes)), "csi.a"))
    assert said in str(refused.value) and "nothing was changed" in str(refused.value)
    assert refused.value.reason == "SnapshotUnsupported"


def ctx(kube: FakeKube, engine: str) -> DatabaseContext:
    spec = DatabaseSpec.model_validate({"engine": engine, "version": "1"})
    plan = DatabasePlan(table="database-backup", from_node="n", to_node="n", next=spec, backup="b")
    return DatabaseContext(cast(Kube, kube), "ns", "pg", "uid", "op", plan)


def test_postgresql_checkpoints_first_and_is_crash_consistent_without_one() -> None:
    kube = FakeKube(exec_says=f"\n{CHECKPOINT_DONE}\n")
    said = run(consistency(ctx(kube, "postgresql")))
    assert not isinstance(said, Skipped) and "CHECKPOINT in pg-abc" in said
    assert "CHECKPOINT" in kube.ran[0][-1]
    for answer in ("psql: error: connection refused", TransientError("exec in pod ns/pg-abc: 500 no kubelet")):
        said = run(consistency(ctx(FakeKube(exec_says=answer), "postgresql")))
        assert isinstance(said, Skipped) and "crash-consistent all the same" in said


def test_redis_must_save_or_the_backup_fails_before_anything_is_made() -> None:
    kube = FakeKube(exec_says=f"{REDIS_SAVED}\n")
    assert "BGSAVE in pg-abc" in run(consistency(ctx(kube, "redis")))
    assert "bgsave" in kube.ran[0][-1] and "SAVE" not in kube.ran[0]  # never the SAVE that blocks every client
    for answer in ("", TransientError("500 no kubelet")):  # a save that failed prints no mark
        with pytest.raises(PermanentError) as refused:
            run(consistency(ctx(FakeKube(exec_says=answer), "redis")))
        assert refused.value.reason == "NotConsistent" and "nothing was changed" in str(refused.value)


def test_mysql_needs_nothing_run_first() -> None:
    kube = FakeKube()
    assert isinstance(run(consistency(ctx(kube, "mysql"))), Skipped) and kube.ran == []


def test_the_table_reads_its_target_and_its_only_change_is_the_record() -> None:
    assert not BACKUP.changes_target and not BACKUP.stops_service
    assert [s.name for s in BACKUP.steps if s.undo is not None] == ["snapshot"]


@pytest.mark.parametrize("given", ["db/pg", "database/pg", "databases/pg"])
def test_the_cli_takes_a_database_as_kubectl_writes_it(given: str) -> None:
    assert database_of(given) == "pg"
    with pytest.raises(CliError):
        database_of("app/pg")


def test_a_change_whose_volume_cannot_be_snapshotted_goes_on_without_a_backup_and_says_why() -> None:
    class NoSnapshots(FakeKube):
        async def read(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
            return {"spec": {"volumeName": "pv-1"}, "status": {"phase": "Bound"}}

        async def persistent_volume(self, name: str) -> dict[str, Any]:
            return {"spec": {"csi": {"driver": "csi.a"}}}

    context = ctx(NoSnapshots(classes=None), "postgresql")
    context.plan = context.plan.model_copy(update={"table": "database-resize-backup-first", "backup": "op-backup"})
    said = run(backup_first(context))
    assert isinstance(said, Skipped) and "does not serve the VolumeSnapshot API" in said
    assert "this change goes on without one" in said and "nothing was changed" not in said
    context.plan = context.plan.model_copy(update={"no_backup_first": "the Database opted out"})
    assert run(backup_first(context)) == "no backup first: the Database opted out"
