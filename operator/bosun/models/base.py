"""Shared pieces of the Bosun resource models.

Every model serialises with camelCase names, as Kubernetes users read and write them, and parses
either spelling. Descriptions come from field descriptions: `kubectl explain` shows them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "bosun.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


def parse_time(timestamp: str) -> datetime:
    """An RFC 3339 timestamp as the API server writes it ('...Z'), as an aware UTC datetime."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(UTC)


class KubeModel(BaseModel):
    """Base of every spec/status model: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(KubeModel):
    """A condition in the shape kstatus, Argo CD and `kubectl wait` read."""

    type: str = Field(description="Ready, Reconciling or Stalled.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="One CamelCase word that says why.")
    message: str = Field(default="", description="A sentence a person can act on.")
    last_transition_time: str | None = Field(default=None, description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(default=None, description="The spec generation this condition describes.")


class EnvVar(KubeModel):
    """A plain environment variable."""

    name: str = Field(
        description="Variable name.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
    )
    value: str = Field(default="", description="Variable value.")


class Resources(KubeModel):
    """CPU and memory, as in a container's resources."""

    requests: dict[str, str] | None = Field(
        default=None, description="Guaranteed amounts, e.g. {cpu: 250m, memory: 256Mi}."
    )
    limits: dict[str, str] | None = Field(default=None, description="Upper bounds, e.g. {memory: 512Mi}.")


class LastOperation(KubeModel):
    """The newest Operation on a resource, so `kubectl get` shows it at a glance."""

    name: str = Field(description="Name of the Operation.")
    type: str = Field(description="Its type.")
    phase: str = Field(description="Its phase.")
