"""The CRDs in crds/ are exactly what the models generate, and every field is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bosun.models.crd import all_crds

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_match_the_models() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "gen-crds"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def walk(schema: dict[str, Any], path: str) -> list[str]:
    """Paths of properties that have no description."""
    missing = []
    for name, prop in schema.get("properties", {}).items():
        here = f"{path}.{name}"
        if not prop.get("description") and name not in ("apiVersion", "kind", "metadata"):
            missing.append(here)
        missing += walk(prop, here)
        if prop.get("type") == "array":
            missing += walk(prop.get("items", {}), here + "[]")
    return missing


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_every_field_is_described_and_structural(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert walk(schema, crd["spec"]["names"]["kind"]) == []
    text = repr(schema)
    assert "$ref" not in text and "anyOf" not in text and "'title'" not in text
    names = crd["spec"]["names"]
    assert names["categories"] == ["bosun"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    # what kubectl get shows at a glance: where it stands (a Notifier: whether it delivers), and its age
    assert "Age" in columns and ("Phase" in columns or "Delivering" in columns)
