"""App release → Kubernetes objects, checked against a golden file (BOSUN_UPDATE_GOLDEN=1 rewrites it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from bosun.models.app import AppSpec
from bosun.models.names import INITIATOR_SOURCE
from bosun.workloads.app import config_hash, render, valid_image

GOLDEN = Path(__file__).parent / "golden" / "app-shop.yaml"

SPEC = AppSpec.model_validate(
    {
        "image": "registry.example.com/shop/web:1.4.2",
        "command": ["bin/serve"],
        "env": [{"name": "MODE", "value": "production"}],
        "healthCheck": {"path": "/healthz"},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "processes": [
            {"name": "web", "replicas": 3, "ports": [{"port": 8080}]},
            {"name": "worker", "replicas": 1, "command": ["bin/work"], "env": [{"name": "QUEUE", "value": "q"}]},
        ],
    }
)


def test_render_matches_golden() -> None:
    rendered = yaml.safe_dump_all(render("shop", "uid-1", SPEC, "shop-deploy-1"), sort_keys=True)
    if os.environ.get("BOSUN_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(rendered)
    assert rendered == GOLDEN.read_text()


def test_rollout_never_drops_below_desired_and_probes_serving_processes() -> None:
    objects = render("shop", "uid-1", SPEC, "r1")
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds == [
        ("Deployment", "shop-web"),
        ("Service", "shop-web"),
        ("PodDisruptionBudget", "shop-web"),
        ("Deployment", "shop-worker"),
        ("PodDisruptionBudget", "shop-worker"),
    ]
    web = objects[0]
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": 8080,
    }
    assert "readinessProbe" not in objects[3]["spec"]["template"]["spec"]["containers"][0]
    assert all(o["metadata"]["ownerReferences"][0]["kind"] == "App" for o in objects)
    assert web["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "1.4.2"


def test_config_hash_ignores_the_image_only() -> None:
    other_image = SPEC.model_copy(update={"image": "registry.example.com/shop/web:2"})
    assert config_hash(SPEC) == config_hash(other_image)
    other_env = SPEC.model_copy(update={"env": []})
    assert config_hash(SPEC) != config_hash(other_env)
    scaled = SPEC.model_copy(update={"processes": [p.model_copy(update={"replicas": 9}) for p in SPEC.processes]})
    assert config_hash(SPEC) == config_hash(scaled)  # scaling does not restart pods
    template = render("shop", "u", SPEC, "release-1")[0]["spec"]["template"]
    assert template == render("shop", "u", scaled, "release-2")[0]["spec"]["template"]


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("nginx", True),
        ("nginx:1.27", True),
        ("registry.example.com:5000/team/app:v1.2-rc1", True),
        ("app@sha256:" + "a" * 64, True),
        ("Nginx", False),
        ("nginx:", False),
        ("has space:1", False),
        ("", False),
    ],
)
def test_image_references(image: str, ok: bool) -> None:
    assert valid_image(image) is ok


def test_only_the_engine_says_an_operation_carries_a_spec_edit_not_an_annotation_anyone_can_write() -> None:
    from bosun.models.app import AppSpec
    from bosun.models.operation import Operation
    from bosun.operations.app import next_spec
    from bosun.workloads.app import Version

    def operation(initiator: dict[str, str] | None) -> Operation:
        return Operation.of(
            {
                "metadata": {
                    "name": "op",
                    "uid": "u",
                    "annotations": {INITIATOR_SOURCE: "AppSpec"},  # forged by whoever created it
                },
                "spec": {"target": {"kind": "App", "name": "web"}, "type": "deploy", "parameters": {"image": "web:3"}},
                "status": {"initiator": initiator} if initiator else {},
            }
        )

    running, edited = Version(AppSpec(image="web:1")), AppSpec(image="web:2")
    user = operation({"kind": "User", "source": "Operation", "username": "mallory"})
    assert next_spec(user, edited, running).image == "web:3"  # the running release with its parameters
    bosun = operation({"kind": "Bosun", "source": "AppSpec", "username": "alice"})
    assert next_spec(bosun, edited, running).image == "web:2"  # the edited spec, as the edit asked
