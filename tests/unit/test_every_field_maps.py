"""Every field of the App and Database specs takes effect: through an Operation, or as documented.

The test walks the schema: a field added to a model later, without a mapping to an operation (or
a documented reason it needs none), makes it fail.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel

from bosun.models.app import AppSpec
from bosun.models.database import DatabaseSpec
from bosun.operations.changes import (
    APP_WITHOUT_OPERATION,
    DATABASE_IMMUTABLE,
    DATABASE_WITHOUT_OPERATION,
    app_changes,
    database_changes,
)

APP = {
    "image": "example.com/shop:1",
    "command": ["serve"],
    "processes": [
        {
            "name": "web",
            "command": ["web"],
            "replicas": 2,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "1"}],
            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}},
        }
    ],
    "env": [{"name": "B", "value": "2"}],
    "healthCheck": {"path": "/health", "port": 8080, "periodSeconds": 5, "failureThreshold": 3},
    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}},
    "minReadySeconds": 5,
    "terminationGracePeriodSeconds": 30,
    "podLabels": {"team": "shop"},
    "podAnnotations": {"example.com/owner": "shop"},
    "placement": {
        "nodeSelector": {"zone": "a"},
        "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 1}],
    },
    "beforeRelease": ["migrate"],
    "operationPolicy": {
        "maxDowntimeSeconds": 0,
        "requireApproval": True,
        "maintenanceWindows": [{"days": ["Sun"], "start": "02:00", "durationMinutes": 120, "timeZone": "UTC"}],
    },
}
DATABASE = {
    "engine": "postgresql",
    "version": "16",
    "image": "registry.example.com/library/postgres:16",
    "storage": {"size": "1Gi", "storageClassName": "fast", "reclaim": "Retain"},
    "resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}},
    "placement": {
        "node": "kwok-zone-a-1",
        "nodeSelector": {"zone": "a"},
        "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 1}],
    },
    "minReadySeconds": 5,
    "source": {"backup": "nightly"},
    "backup": {
        "schedule": "0 3 * * *",
        "timeZone": "Europe/Paris",
        "method": "Dump",
        "retention": {"count": 7, "maxAgeDays": 30},
        "beforeChanges": True,
    },
    "operationPolicy": {
        "maxDowntimeSeconds": 30,
        "requireApproval": False,
        "maintenanceWindows": [{"days": ["Sun"], "start": "02:00", "durationMinutes": 120, "timeZone": "UTC"}],
    },
}


def schema_paths(model: type[BaseModel]) -> set[str]:
    """Every field of the model, dotted, camelCase; list items as `[0]`, maps as leaves."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node or "anyOf" in node:
            if "$ref" in node:
                node = defs[node["$ref"].split("/")[-1]]
            else:
                node = next(o for o in node["anyOf"] if o.get("type") != "null")
        return node

    def walk(node: dict[str, Any], prefix: str) -> set[str]:
        node = resolve(node)
        if node.get("type") == "array" and "properties" in resolve(node.get("items", {})):
            return walk(node["items"], f"{prefix}[0]")
        if "properties" not in node:
            return {prefix}
        out: set[str] = set()
        for name, child in node["properties"].items():
            out |= walk(child, f"{prefix}.{name}" if prefix else name)
        return out

    return walk(schema, "")


def example_paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict) and prefix not in MAPS:
        out: set[str] = set()
        for key, child in value.items():
            out |= example_paths(child, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return example_paths(value[0], f"{prefix}[0]")
    return {prefix}


MAPS = {
    "podLabels",
    "podAnnotations",
    "resources.requests",
    "resources.limits",
    "processes[0].resources.requests",
    "processes[0].resources.limits",
    "placement.nodeSelector",
}


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return {"Retain": "Delete", "TCP": "UDP", "postgresql": "mysql"}.get(value, value + "2")
    if isinstance(value, list):
        return [*value, value[0]] if value else ["x"]
    if isinstance(value, dict):
        return {**value, "extra": "1"}
    raise AssertionError(f"no change for {value!r}")


def edited(spec: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    node: Any = out
    parts = path.replace("[0]", ".0").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    node[parts[-1]] = changed(node[parts[-1]])
    return out


def test_the_examples_cover_every_field_of_the_schemas() -> None:
    assert example_paths(APP) == schema_paths(AppSpec), "a new App field: add it to APP (and map it)"
    assert example_paths(DATABASE) == schema_paths(DatabaseSpec), "a new Database field: add it to DATABASE"


@pytest.mark.parametrize("path", sorted(example_paths(APP)))
def test_every_app_field_edit_makes_an_operation_or_is_documented(path: str) -> None:
    made = app_changes(APP, edited(APP, path))
    if path in APP_WITHOUT_OPERATION:
        assert not made  # takes effect without one, as the README says
    else:
        assert made, f"editing {path} would be silently ignored"


@pytest.mark.parametrize("path", sorted(example_paths(DATABASE)))
def test_every_database_field_edit_makes_an_operation_or_is_documented(path: str) -> None:
    if path in DATABASE_IMMUTABLE:
        return  # refused at admission (tests/cluster/test_admission.py)
    made = database_changes(DATABASE, edited(DATABASE, path))
    if path in DATABASE_WITHOUT_OPERATION:
        assert not made  # takes effect without one, as the README says
    else:
        assert made, f"editing {path} would be silently ignored"
