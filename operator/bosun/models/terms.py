"""The terms a team sets for operations on an App or a Database: when, how much downtime, who agrees.

Why on the target and not on each Operation: most operations come from spec edits (Argo CD, a
`kubectl apply`), and nobody writes a budget into those. The team that owns a database states once
that it may be down at most 30 s, only on Sunday nights, and only once someone on call agreed; every
operation on it then inherits those terms. An Operation may still carry its own budget (stricter or
looser) and ask for a later start, and an override records who waived a term, and why.

Time zones are checked at admission against the IANA names of the pinned `tzdata` package, so a
typo is refused with a clear message instead of surfacing days later as a window that never opens.
"""

from __future__ import annotations

import functools
import importlib.resources
from enum import StrEnum

from pydantic import Field
from pydantic.config import JsonDict

from bosun.models.base import KubeModel

MAX_WINDOWS = 14


class Weekday(StrEnum):
    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"


WEEKDAYS = list(Weekday)  # Monday first, as datetime.weekday() counts


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name the pinned tzdata knows (the same list on every machine)."""
    names = importlib.resources.files("tzdata").joinpath("zones").read_text().split()
    return tuple(sorted(set(names)))


def zone_rule() -> JsonDict:
    zones = ", ".join(f"'{z}'" for z in time_zones())
    return {
        "x-kubernetes-validations": [
            {
                "rule": f"self in [{zones}]",
                "message": "timeZone must be an IANA time zone name, such as UTC, Europe/Paris or America/New_York",
            }
        ]
    }


class MaintenanceWindow(KubeModel):
    """A weekly stretch of time when operations that stop the service may start."""

    days: list[Weekday] = Field(
        min_length=1,
        max_length=7,
        description="The days the window opens on: Mon, Tue, Wed, Thu, Fri, Sat, Sun.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    start: str = Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Local time the window opens, HH:MM (24 h). A time the clocks skip opens it when they "
        "jump; a time they repeat opens it the first time.",
    )
    duration_minutes: int = Field(
        ge=15, le=1440, description="How long it stays open, in elapsed minutes (15 to 1440)."
    )
    time_zone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone of `start`, e.g. Europe/Paris (daylight saving applies).",
        json_schema_extra=zone_rule(),
    )


class OperationPolicy(KubeModel):
    """The terms every operation on this App or Database runs under (spec.operationPolicy)."""

    max_downtime_seconds: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="Downtime budget of each operation: one predicted to stop the service longer is refused "
        "before it changes anything (an Operation's own maxDowntimeSeconds wins).",
    )
    maintenance_windows: list[MaintenanceWindow] | None = Field(
        default=None,
        max_length=MAX_WINDOWS,
        description="When operations that stop the service may start; outside them they wait (Pending, "
        "WaitingForWindow). Unset: any time.",
    )
    require_approval: bool = Field(
        default=False,
        description="Operations that stop the service or cannot be undone wait for `kubectl bosun approve` "
        "(Pending, AwaitingApproval) by someone with the verb approve on operations.",
    )
