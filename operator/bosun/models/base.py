"""Shared pieces of the Bosun resource models.

Every model serialises with camelCase names, as Kubernetes users read and write them, and parses
either spelling. Descriptions come from field descriptions: `kubectl explain` shows them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from bosun.models.names import API_VERSION, GROUP, VERSION

__all__ = ["API_VERSION", "GROUP", "VERSION"]


def now() -> datetime:
    """The one clock of the operator: now, as an aware UTC datetime."""
    return datetime.now(UTC)


def stamp(moment: datetime | None = None) -> str:
    """A moment (now by default) as the API server writes times: RFC 3339, seconds, 'Z'."""
    return (moment or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(timestamp: str) -> datetime:
    """An RFC 3339 timestamp as the API server writes it ('...Z'), as an aware UTC datetime."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(UTC)


class KubeModel(BaseModel):
    """Base of every spec/status model: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class TargetPhase(StrEnum):
    """Where an App or Database stands, as the steps of its operations leave it. Whether an
    operation is under way is not a phase: `lastOperation` and the Reconciling condition say it."""

    PENDING = "Pending"  # nothing of it runs (not yet, or its first start was undone)
    RUNNING = "Running"
    DEPROVISIONED = "Deprovisioned"


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


# Shapes the API server checks at admission (CEL and schema), so bad input is refused before
# anything changes, with a message a person understands.
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
LABEL_KEY = (  # [DNS subdomain/]name; '[.]' rather than an escape, as it sits in a CEL string
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"
QUANTITIES: JsonDict = {
    "maxProperties": 8,
    "x-kubernetes-validations": [
        {
            "rule": "self.all(k, size(k) <= 63 && isQuantity(self[k]) && !quantity(self[k]).isLessThan(quantity('0')))",
            "message": "every amount must be a Kubernetes quantity of zero or more, such as 250m, 2, 512Mi or 10Gi",
        }
    ],
}
UNIQUE_BY_NAME: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
LABELS: JsonDict = {
    "maxProperties": 32,
    "x-kubernetes-validations": [
        {
            "rule": f"self.all(k, size(k) <= 253 && k.matches('{LABEL_KEY}'))",
            "message": "label keys must be [prefix/]name: name up to 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
        },
        {
            "rule": f"self.all(k, size(self[k]) <= 63 && self[k].matches('{LABEL_VALUE}'))",
            "message": "label values must be at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
        },
    ],
}
# On pods Bosun makes: the keys it sets itself (the pods' selector, its own bookkeeping) are its.
RESERVED_LABELS: JsonDict = {
    **LABELS,
    "x-kubernetes-validations": [
        *cast(list[JsonDict], LABELS["x-kubernetes-validations"]),
        {
            "rule": "self.all(k, !k.startsWith('app.kubernetes.io/') && !k.startsWith('bosun.dev/'))",
            "message": "podLabels cannot set app.kubernetes.io/* or bosun.dev/* labels: Bosun sets those "
            "(they select the App's pods)",
        },
    ],
}
ANNOTATIONS: JsonDict = {
    "maxProperties": 32,
    "x-kubernetes-validations": [
        {
            "rule": f"self.all(k, size(k) <= 253 && k.matches('{LABEL_KEY}') && size(self[k]) <= 4096)",
            "message": "annotation keys must be [prefix/]name (as label keys) and values at most 4096 characters",
        }
    ],
}
POD_ANNOTATIONS: JsonDict = {
    **ANNOTATIONS,
    "x-kubernetes-validations": [
        *cast(list[JsonDict], ANNOTATIONS["x-kubernetes-validations"]),
        {
            "rule": "self.all(k, !k.startsWith('bosun.dev/'))",
            "message": "podAnnotations cannot set bosun.dev/* annotations: Bosun sets those (release, config hash)",
        },
    ],
}


# Bounded map values: the API server estimates a CEL rule's cost from these bounds.
Quantity = Annotated[str, Field(max_length=64)]
Argument = Annotated[str, Field(max_length=4096)]  # one word of a command

# The free text a spec may hold in all (environment, commands, annotations), in characters: with
# every other field bounded by its schema, a spec of plain ASCII text stays under 128 KiB, so what
# is admitted can always be handled and recorded (an annotation of Kopf's holds a copy of it).
SPEC_TEXT_CHARS = 65536


def env_text(path: str) -> str:
    """CEL: the characters of the names and values of the environment list at `path`."""
    return f"(has({path}) ? {path}.map(e, size(e.name) + (has(e.value) ? size(e.value) : 0)).sum() : 0)"


def words_text(path: str) -> str:
    """CEL: the characters of the list of strings at `path`."""
    return f"(has({path}) ? {path}.map(w, size(w)).sum() : 0)"


def map_text(path: str) -> str:
    """CEL: the characters of the keys and values of the string map at `path`."""
    return f"(has({path}) ? {path}.map(k, size(k) + size({path}[k])).sum() : 0)"


LabelValue = Annotated[str, Field(max_length=63)]
AnnotationValue = Annotated[str, Field(max_length=4096)]


def quantity_rule(what: str) -> JsonDict:
    return {
        "x-kubernetes-validations": [
            {
                "rule": "isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",
                "message": f"{what} must be a positive Kubernetes quantity, such as 10Gi",
            }
        ]
    }


class EnvVar(KubeModel):
    """A plain environment variable."""

    name: str = Field(
        description="Variable name.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
    )
    value: str = Field(default="", max_length=4096, description="Variable value (at most 4096 characters).")


class Toleration(KubeModel):
    """A pod toleration, as in a pod's spec: lets the database run on nodes with that taint."""

    # The API server refuses a pod whose toleration breaks these rules: checked at admission, a bad
    # one never reaches a step that has already stopped a database.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                    "message": "a toleration with operator Exists takes no value",
                },
                {
                    "rule": "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
                    "message": "a toleration without a key must use operator Exists (it then tolerates every taint)",
                },
                {
                    "rule": "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                    "message": "tolerationSeconds applies only to effect NoExecute",
                },
            ]
        },
    )

    key: str | None = Field(default=None, max_length=317, description="Taint key; empty with Exists: every taint.")
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Exists or Equal.")
    value: LabelValue | None = Field(default=None, description="Taint value, for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect; empty: every effect."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="NoExecute: how long the pod stays after the taint."
    )

    def tolerates(self, taint: dict[str, str]) -> bool:
        """Kubernetes' matching rule (k8s.io/api/core/v1 Toleration.ToleratesTaint)."""
        if self.effect and self.effect != taint.get("effect"):
            return False
        if self.key and self.key != taint.get("key"):
            return False
        if self.operator == "Exists":
            return True
        return bool(self.key) and (self.value or "") == (taint.get("value") or "")


class Resources(KubeModel):
    """CPU and memory, as in a container's resources."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Guaranteed amounts, e.g. {cpu: 250m, memory: 256Mi}.", json_schema_extra=QUANTITIES
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="Upper bounds, e.g. {memory: 512Mi}.", json_schema_extra=QUANTITIES
    )


class LastOperation(KubeModel):
    """The newest Operation on a resource, so `kubectl get` shows it at a glance."""

    name: str = Field(description="Name of the Operation.")
    type: str = Field(description="Its type.")
    phase: str = Field(description="Its phase.")
