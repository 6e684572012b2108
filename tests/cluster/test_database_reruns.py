"""A database step run again after a crash tells its own earlier work from someone else's.

The rollback undoes only steps recorded as having changed something, so a step that finds its own
work already done (the operator died after the change, before recording it) must count it as
changed, and only work found done by someone else is Skipped. Run against the real API server,
with the steps called directly, as a restarted operator calls them.
"""

from __future__ import annotations

import pytest

from bosun.engine.steps import Skipped
from bosun.kube import Kube
from bosun.models.database import DatabaseSpec
from bosun.operations.database_ctx import DatabaseContext, DatabasePlan
from bosun.operations.database_steps import credentials, drop_credentials, expand
from bosun.workloads import database as build
from tests.support.bosun_objects import Bosun

pytestmark = pytest.mark.cluster


def context(kube: Kube, namespace: str, operation: str, size: str = "1Gi") -> DatabaseContext:
    spec = DatabaseSpec.model_validate({"engine": "postgresql", "version": "16", "storage": {"size": size}})
    plan = DatabasePlan(table="database-provision", to_node="", next=spec, previous=spec)
    return DatabaseContext(kube, namespace, "pg", "0000", operation, plan)


async def test_a_secret_this_operation_made_counts_as_made_when_found_again(kube: Kube, namespace: str) -> None:
    mine = context(kube, namespace, "pg-provision-1")
    assert not isinstance(await credentials(mine), Skipped)
    again = await credentials(mine)  # the operator died after creating it, before recording it
    assert not isinstance(again, Skipped) and "found after a restart" in again
    assert isinstance(await credentials(context(kube, namespace, "someone-else")), Skipped)
    await drop_credentials(mine)  # so its rollback removes it
    assert await kube.read(namespace, "Secret", build.secret_name("pg")) is None


async def test_a_claim_this_operation_raised_counts_as_raised_when_found_again(pg: Bosun, kube: Kube) -> None:
    mine = context(kube, pg.namespace, "pg-resize-1", size="3Gi")
    assert "raised" in await expand(mine)
    again = await expand(mine)
    assert not isinstance(again, Skipped) and "found after a restart" in again
    assert isinstance(await expand(context(kube, pg.namespace, "pg-resize-2", size="3Gi")), Skipped)
