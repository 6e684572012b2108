"""The API requests an ideal operator needs for each operation the `api` benchmark runs.

Written down from what each operation must do and promise, not from what Bosun does: an operator
that keeps a durable, per-step record of an operation, archives it, keeps the target's status
true, and acts on the workload, with one read of each object it must know and one watch of each
thing it waits for. Where Bosun needs more, the difference is Bosun's cost, and the benchmark's
ratio shows it; where Bosun needs fewer, the list is wrong, and the benchmark says so too.

Counted alike for every operation (`record`): the Operation's own life. Its creation when a spec
edit calls for it (one created by a person is not the operator's request), a finalizer on and off
(its record is archived before it can go), a status write when it starts and one as each step
ends (the promise is steps n/m that survive a crash), the archive marker, and the label that takes
it out of the operator's watch. Two Events (started, ended), one write of its log copy and one of
its week's activity report.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    request: str  # "verb resource", as the audit log names it
    count: int
    why: str


def record(steps: int, *, created_by_edit: bool) -> list[Need]:
    """An operation's own life, whatever it changes (see the module docstring)."""
    made = [Need("create operations", 1, "the Operation the spec edit calls for")] if created_by_edit else []
    return [
        *made,  # an Operation someone else created costs the operator nothing to create
        Need("patch operations", 2, "a finalizer on and off: the record is archived before the object can go"),
        Need("patch operations/status", steps + 1, "started, then one write as each step ends (steps n/m)"),
        Need("patch operations/status", 1, "the archive marker: the record is in the store"),
        Need("patch operations", 1, "the label that takes an archived Operation out of the watch"),
        Need("create events", 2, "started and ended, for `kubectl describe`"),
        Need("patch configmaps", 1, "the log copy, written once"),
        Need("patch configmaps", 1, "the week's activity report"),
    ]


def target(kind: str, *, status_writes: int = 2) -> list[Need]:
    return [
        Need(f"get {kind}", 1, "the target, once"),
        Need(f"patch {kind}/status", status_writes, "Progressing as it starts, the outcome as it ends"),
    ]


IDEAL: dict[str, list[Need]] = {
    "App deploy (2 replicas)": [
        *record(4, created_by_edit=True),
        Need("patch apps", 1, "the spec edit marked handled (a restart must not make it twice)"),
        *target("apps"),
        Need("patch deployments", 1, "the process's Deployment, applied"),
        Need("patch services", 1, "its Service"),
        Need("patch poddisruptionbudgets", 1, "its disruption budget (2 replicas)"),
        Need("watch deployments", 1, "the roll-out, followed until it is available"),
    ],
    "Database provision": [
        *record(5, created_by_edit=True),
        Need("patch databases", 1, "the spec edit marked handled"),
        *target("databases"),
        Need("create secrets", 1, "the credentials"),
        Need("create persistentvolumeclaims", 1, "the volume"),
        Need("patch services", 1, "the Service"),
        Need("create pods", 1, "the database pod"),
        Need("watch pods", 1, "the pod, followed until Ready"),
        Need("get persistentvolumeclaims", 1, "the bound volume, for the status"),
    ],
    "Database move (Bosun chooses the node)": [
        *record(9, created_by_edit=False),
        *target("databases"),
        Need("get persistentvolumeclaims", 1, "the volume: its zone"),
        Need("get persistentvolumes", 1, "the volume's zone and driver"),
        Need("list nodes", 1, "the candidate nodes: the volume's zone only"),
        Need("list pods", 1, "what runs on the chosen node: does the database fit"),
        Need("create pods", 1, "the placeholder that pulls the image and holds the room"),
        Need("watch pods", 1, "the placeholder, until the image is in"),
        Need("get nodes", 1, "the target, checked again just before the stop"),
        Need("delete pods", 2, "the old pod, then the placeholder"),
        Need("watch pods", 1, "the old pod, until it is gone"),
        Need("create pods", 1, "the new pod"),
        Need("get volumeattachments", 2, "the volume: gone from the old node, attached to the new one"),
        Need("watch pods", 1, "the new pod, until Ready"),
    ],
    "Database restart": [
        *record(3, created_by_edit=False),
        *target("databases"),
        Need("list pods", 1, "the database's pod (by its label)"),
        Need("delete pods", 1, "the old pod"),
        Need("watch pods", 1, "the old pod, until it is gone"),
        Need("create pods", 1, "the new pod"),
        Need("watch pods", 1, "the new pod, until Ready"),
        Need("get persistentvolumeclaims", 1, "the volume, for the status"),
    ],
}


def ideal(label: str) -> int:
    return sum(n.count for n in IDEAL[label])
