"""CustomResourceDefinitions generated from the pydantic models.

The models are the one source of truth: `hack/gen-crds` writes `crds/*.yaml` from here and a test
fails when the committed files drift. Pydantic's JSON Schema is turned into a *structural* schema
the API server accepts: references inlined, optional-null unions collapsed, titles dropped, and
Kubernetes extensions (list-map keys, CEL rules) carried over from `json_schema_extra`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from bosun.models.app import APP_RULES, APP_SPEC_RULES, AppSpec, AppStatus
from bosun.models.backup import BACKUP_SPEC_RULES, BackupSpec, BackupStatus
from bosun.models.base import GROUP, VERSION
from bosun.models.database import DATABASE_RULES, DATABASE_SPEC_RULES, DatabaseSpec, DatabaseStatus
from bosun.models.notifier import NotifierSpec, NotifierStatus
from bosun.models.operation import OPERATION_SPEC_RULES, OperationSpec, OperationStatus

_DROP = {"title", "discriminator"}


def _inline(node: Any, defs: dict[str, Any], in_status: bool) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, in_status) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    while "$ref" in node or "anyOf" in node:
        if "$ref" in node:
            target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
            target.update(node)  # a field's own description wins over the model's
            node = target
        if "anyOf" in node:
            non_null = [option for option in node["anyOf"] if option.get("type") != "null"]
            if len(non_null) != 1:
                raise ValueError(f"a union is not structural: {node}")
            merged = dict(non_null[0])
            merged.update({k: v for k, v in node.items() if k != "anyOf"})
            node = merged
            if node.get("default", 0) is None:
                node.pop("default")
    if node.get("x-kubernetes-preserve-unknown-fields"):
        node.pop("additionalProperties", None)  # free-form: not a structural map of one type
    out: dict[str, Any] = {}
    for key, value in node.items():
        # Status is written by Bosun alone: admission rules there would only cost CEL budget.
        if key in _DROP or (in_status and key in ("default", "x-kubernetes-validations")):
            continue
        if key == "properties":
            out[key] = {name: _inline(prop, defs, in_status) for name, prop in value.items()}
        else:
            out[key] = _inline(value, defs, in_status)
    return out


def structural_schema(model: type[BaseModel], *, status: bool = False) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, as a CRD version's schema wants it."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _inline(raw, defs, in_status=status)
    schema["type"] = "object"
    return schema


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: list[str]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: list[dict[str, Any]]
    spec_rules: list[dict[str, str]] = field(default_factory=list)
    root_rules: list[dict[str, str]] = field(default_factory=list)  # may read metadata.name


def _age() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


KINDS = [
    Kind(
        kind="Operation",
        plural="operations",
        short_names=["op", "ops"],
        spec=OperationSpec,
        status=OperationStatus,
        description="One change to one App or Database: its steps, progress, logs and rollback outcome.",
        spec_rules=OPERATION_SPEC_RULES,
        columns=[
            {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
            {"name": "Target", "type": "string", "jsonPath": ".spec.target.name"},
            {"name": "Kind", "type": "string", "jsonPath": ".spec.target.kind", "priority": 1},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
            {"name": "Rollback", "type": "string", "jsonPath": ".status.rollback.state"},
            {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
            {"name": "Starts", "type": "string", "jsonPath": ".status.startsAt"},
            {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
            _age(),
        ],
    ),
    Kind(
        kind="App",
        plural="apps",
        short_names=["bapp"],
        spec=AppSpec,
        status=AppStatus,
        root_rules=APP_RULES,
        spec_rules=APP_SPEC_RULES,
        description="A stateless workload Bosun deploys with zero downtime.",
        columns=[
            {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
            {"name": "Last-Op", "type": "string", "jsonPath": ".status.lastOperation.name"},
            _age(),
        ],
    ),
    Kind(
        kind="Database",
        plural="databases",
        short_names=["db"],
        spec=DatabaseSpec,
        status=DatabaseStatus,
        root_rules=DATABASE_RULES,
        spec_rules=DATABASE_SPEC_RULES,
        description="A single-instance database Bosun provisions and moves between nodes.",
        columns=[
            {"name": "Engine", "type": "string", "jsonPath": ".spec.engine"},
            {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
            {"name": "Size", "type": "string", "jsonPath": ".spec.storage.size"},
            {"name": "Node", "type": "string", "jsonPath": ".status.node"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Last-Op", "type": "string", "jsonPath": ".status.lastOperation.name"},
            _age(),
        ],
    ),
]


NOTIFIER = Kind(
    kind="Notifier",
    plural="notifiers",
    short_names=["notifier"],
    spec=NotifierSpec,
    status=NotifierStatus,
    description="Where this namespace's operation events go: a CloudEvents or Slack-compatible webhook.",
    columns=[
        {"name": "Format", "type": "string", "jsonPath": ".spec.format"},
        {"name": "URL", "type": "string", "jsonPath": ".spec.url", "priority": 1},
        {"name": "Delivering", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Delivering')].status"},
        {"name": "Last-Error", "type": "string", "jsonPath": ".status.lastError", "priority": 1},
        _age(),
    ],
)
KINDS.append(NOTIFIER)

BACKUP = Kind(
    kind="Backup",
    plural="backups",
    short_names=["bbackup"],
    spec=BackupSpec,
    status=BackupStatus,
    spec_rules=BACKUP_SPEC_RULES,
    description="The record of one backup of a Database (made by Bosun; outlives the Database).",
    columns=[
        {"name": "Database", "type": "string", "jsonPath": ".spec.database"},
        {"name": "Engine", "type": "string", "jsonPath": ".spec.engine"},
        {"name": "Version", "type": "string", "jsonPath": ".spec.version", "priority": 1},
        {"name": "Trigger", "type": "string", "jsonPath": ".spec.trigger"},
        {"name": "Size", "type": "string", "jsonPath": ".status.size"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Completed", "type": "string", "jsonPath": ".status.completedAt"},
        {"name": "Operation", "type": "string", "jsonPath": ".spec.operation", "priority": 1},
        _age(),
    ],
)
KINDS.append(BACKUP)


def _without(node: Any, keys: set[str]) -> Any:
    if isinstance(node, list):
        return [_without(item, keys) for item in node]
    if not isinstance(node, dict):
        return node
    # A property may be named like a key dropped here: only schema keywords go, never properties.
    return {
        k: ({name: _without(p, keys) for name, p in v.items()} if k == "properties" else _without(v, keys))
        for k, v in node.items()
        if k not in keys
    }


def proposed_schema() -> dict[str, Any]:
    """`spec.proposed` of a dry run: an App's or a Database's spec, bounded as theirs are.

    One schema holds the fields of both (a field both have is the App's), with no defaults and no
    top-level field required: the CLI sends a spec the API server already admitted as the App or
    Database it is, and the dry run validates it again as that kind. Fields of neither are
    dropped. Free-form, it was the one unbounded field an Operation had.
    """
    app, database = structural_schema(AppSpec), structural_schema(DatabaseSpec)
    merged = {**database["properties"], **app["properties"]}
    schema: dict[str, Any] = _without({"type": "object", "properties": merged}, {"default"})
    schema["description"] = (
        "Dry runs only: the target's spec as it would be after an edit (kubectl bosun plan -f), planned "
        "instead of the spec in the cluster; the target need not exist yet."
    )
    schema["x-kubernetes-validations"] = APP_SPEC_RULES
    return schema


def crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec_schema = structural_schema(kind.spec)
    if kind.spec_rules:
        spec_schema["x-kubernetes-validations"] = kind.spec_rules
    if "proposed" in spec_schema.get("properties", {}):
        spec_schema["properties"]["proposed"] = proposed_schema()
    status_schema = structural_schema(kind.status, status=True)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": kind.short_names,
                "categories": ["bosun"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind.columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            **({"x-kubernetes-validations": kind.root_rules} if kind.root_rules else {}),
                            "properties": {
                                "apiVersion": {"type": "string", "description": "bosun.dev/v1alpha1"},
                                "kind": {"type": "string", "description": kind.kind},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(kind) for kind in KINDS]
