"""Maps (target kind, operation type) to the function that plans it.

An operation whose type has no table in this version fails at once, before any change, with a
reason saying so, rather than sitting Pending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bosun.engine.service import Plan
from bosun.errors import PermanentError
from bosun.kube import Kube
from bosun.models.operation import Operation, OperationType, TargetKind
from bosun.store import Store

PlanFn = Callable[[Kube, Operation, dict[str, Any]], Awaitable[Plan[Any]]]


class Registry:
    def __init__(self, tables: dict[tuple[TargetKind, OperationType], PlanFn] | None = None) -> None:
        self.tables = dict(tables or {})

    def add(self, kind: TargetKind, type_: OperationType, plan: PlanFn) -> None:
        self.tables[(kind, type_)] = plan

    async def plan(self, kube: Kube, operation: Operation, target: dict[str, Any]) -> Plan[Any]:
        key = (operation.spec.target.kind, operation.spec.type)
        plan = self.tables.get(key)
        if plan is None:
            raise PermanentError(
                f"{operation.spec.type.value} of a {operation.spec.target.kind.value} is not implemented "
                "in this version of Bosun; nothing was changed",
                "NotImplemented",
            )
        return await plan(kube, operation, target)


def default_registry(database_image_registry: str = "", store: Store | None = None) -> Registry:
    """The operation types this version of Bosun carries out; Database images come from
    `database_image_registry` when a Database names none (empty: Docker Hub's names), and logical
    dumps go to `store` (the one operation logs go to)."""
    import functools

    from bosun.operations.app import plan_app
    from bosun.operations.database import plan_database

    registry = Registry()
    for type_ in (
        OperationType.DEPLOY,
        OperationType.CONFIGURE,
        OperationType.SCALE,
        OperationType.RESTART,
        OperationType.DEPROVISION,
    ):
        registry.add(TargetKind.APP, type_, plan_app)
    for type_ in (
        OperationType.PROVISION,
        OperationType.DEPROVISION,
        OperationType.RESTART,
        OperationType.SCALE,
        OperationType.REDEPLOY,
        OperationType.RESIZE,
        OperationType.BACKUP,
    ):
        registry.add(
            TargetKind.DATABASE,
            type_,
            functools.partial(plan_database, image_registry=database_image_registry, store=store),
        )
    return registry
