"""Backups as the tests and the real-node benchmark drive them: policies, scheduled backups made
by hand, the schedule's own operations, and whether a copy holds one moment of the rows."""

from __future__ import annotations

from typing import Any

from bosun.models.names import BACKUP_TRIGGER, GROUP, VERSION
from tests.support.bosun_objects import Bosun
from tests.support.databases import ops_of


def scheduled_by_hand(bosun: Bosun, name: str, database: str = "pg", timeout: float = 120) -> dict[str, Any]:
    """A backup that says it is a scheduled one, as the schedule's own operations do; its status."""
    bosun.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Operation",
            "metadata": {"name": name, "annotations": {BACKUP_TRIGGER: "Scheduled"}},
            "spec": {"target": {"kind": "Database", "name": database}, "type": "backup"},
        }
    )
    return bosun.wait_phase(name, timeout=timeout)


def set_backup_policy(bosun: Bosun, policy: dict[str, Any] | None, database: str = "pg") -> None:
    bosun.custom.patch_namespaced_custom_object(
        GROUP, VERSION, bosun.namespace, "databases", database, {"spec": {"backup": policy}}
    )


def scheduled(bosun: Bosun, database: str = "pg") -> list[str]:
    """The backup Operations the schedule made (named after their time), oldest first."""
    return sorted(o for o in ops_of(bosun, database, "backup") if o.startswith(f"{database}-scheduled-"))


def one_moment(acknowledged: list[int], present: set[int], before: int, after: int) -> dict[str, int]:
    """How a copy of a table differs from one moment between two points of a writer's history:
    rows acknowledged before `before` must all be there, none acknowledged from `after` on, and
    no row missing below the newest one present (a hole would mean no single moment)."""
    newest = max(present & set(acknowledged), default=0)
    return {
        "missing_before": len(set(acknowledged[:before]) - present),
        "present_after": len(present & set(acknowledged[after:])),
        "holes": len({n for n in acknowledged if n <= newest} - present),
        "rows": len(present),
    }
