"""Operator configuration, from flags first, then BOSUN_* environment variables, then defaults.

One frozen object, built once at start-up, so every part reads the same values and tests can
build their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


@dataclass(frozen=True)
class Settings:
    namespaces: list[str] = field(default_factory=lambda: _env_list("BOSUN_NAMESPACES"))
    """Namespaces to watch; empty means all namespaces."""

    liveness_port: int = field(default_factory=lambda: int(os.environ.get("BOSUN_LIVENESS_PORT", "8080")))
    """Port of the /healthz endpoint (0 disables it)."""

    log_format: str = field(default_factory=lambda: os.environ.get("BOSUN_LOG_FORMAT", "json"))
    """json (structured, one object a line) or plain."""

    log_level: str = field(default_factory=lambda: os.environ.get("BOSUN_LOG_LEVEL", "INFO"))

    kubeconfig: str | None = field(default_factory=lambda: os.environ.get("KUBECONFIG") or None)
    """Kubeconfig to use outside a cluster; in a pod the service account is used."""

    watch_timeout_seconds: int = field(default_factory=lambda: int(os.environ.get("BOSUN_WATCH_TIMEOUT_SECONDS", "60")))
    """Watch requests are re-opened at least this often, so a silently dead stream is replaced."""

    queue_poll_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_QUEUE_POLL_SECONDS", "1.0")))
    """How often a queued operation looks whether its turn has come."""

    heartbeat_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_HEARTBEAT_SECONDS", "20")))
    """How often the operator touches its heartbeat ConfigMap; /healthz fails when the watch stops
    delivering those touches for three periods."""

    heartbeat_namespace: str = field(default_factory=lambda: os.environ.get("BOSUN_NAMESPACE", ""))
    """Where the heartbeat ConfigMap lives (default: the first watched namespace, else `default`)."""

    repair_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_REPAIR_SECONDS", "30")))
    """How often an idle App is compared with its current release and hand-made drift repaired."""

    store_url: str = field(
        default_factory=lambda: os.environ.get(
            "BOSUN_STORE_URL", os.path.join(os.path.expanduser("~"), ".local", "share", "bosun")
        )
    )
    """Where operation logs, archived records and reports' sources go: s3://bucket/prefix or a directory."""

    s3_endpoint_url: str = field(default_factory=lambda: os.environ.get("BOSUN_S3_ENDPOINT_URL", ""))
    """Endpoint of an S3-compatible server (MinIO, Ceph, ...); empty for AWS S3."""

    s3_region: str = field(
        default_factory=lambda: os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", ""))
    )

    activity_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_ACTIVITY_SECONDS", "3600")))
    """How often missed weekly reports are caught up and old Operations tidied away."""

    operation_retention_seconds: float = field(
        default_factory=lambda: float(os.environ.get("BOSUN_OPERATION_RETENTION_SECONDS", str(30 * 86400)))
    )
    """How long a finished Operation object stays (its record stays in the store for good)."""

    @property
    def heartbeat_home(self) -> str:
        return self.heartbeat_namespace or (self.namespaces[0] if self.namespaces else "default")
