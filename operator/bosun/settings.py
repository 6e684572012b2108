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

    metrics_port: int = field(default_factory=lambda: int(os.environ.get("BOSUN_METRICS_PORT", "9090")))
    """Port of the Prometheus /metrics endpoint (0 disables it; the liveness port's number shares it)."""

    leader_election: bool = field(
        default_factory=lambda: (os.environ.get("BOSUN_LEADER_ELECTION") or "true").lower() not in ("0", "false", "no")
    )
    """Act only while holding the leader Lease. On by default, so two processes started the same way
    never both drive an operation; off only when asked (`--no-leader-elect`, for one process by hand)."""

    leader_election_namespace: str = field(
        default_factory=lambda: os.environ.get("BOSUN_LEADER_ELECTION_NAMESPACE", os.environ.get("POD_NAMESPACE", ""))
    )
    """Where the Lease lives (default: the pod's namespace, else the heartbeat's)."""

    leader_election_name: str = field(default_factory=lambda: os.environ.get("BOSUN_LEADER_ELECTION_NAME", "bosun"))

    lease_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_LEASE_SECONDS", "15")))
    """How long a Lease stays someone's after its last renewal (CloudNativePG and client-go: 15 s)."""

    renew_deadline_seconds: float = field(
        default_factory=lambda: float(os.environ.get("BOSUN_RENEW_DEADLINE_SECONDS", "10"))
    )
    """A leader that could not renew for this long stops acting (exits): 10 s."""

    lease_retry_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_LEASE_RETRY_SECONDS", "2")))
    """How often the Lease is renewed, or tried by a standby: 2 s."""

    log_format: str = field(default_factory=lambda: os.environ.get("BOSUN_LOG_FORMAT", "json"))
    """json (structured, one object a line) or plain."""

    log_level: str = field(default_factory=lambda: os.environ.get("BOSUN_LOG_LEVEL", "INFO"))

    database_image_registry: str = field(default_factory=lambda: os.environ.get("BOSUN_DATABASE_IMAGE_REGISTRY", ""))
    """Where Database images come from when a Database names none: `<this>/<engine>:<version>`
    (e.g. registry.example.com/library gives registry.example.com/library/postgres:16); empty:
    Docker Hub's names (postgres:16)."""

    kubeconfig: str | None = field(default_factory=lambda: os.environ.get("KUBECONFIG") or None)
    """Kubeconfig to use outside a cluster; in a pod the service account is used."""

    watch_timeout_seconds: int = field(default_factory=lambda: int(os.environ.get("BOSUN_WATCH_TIMEOUT_SECONDS", "60")))
    """Watch requests are re-opened at least this often, so a silently dead stream is replaced."""

    queue_poll_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_QUEUE_POLL_SECONDS", "1.0")))
    """How often a queued operation looks whether its turn has come."""

    queue_by_label: bool = field(
        default_factory=lambda: os.environ.get("BOSUN_QUEUE_BY_LABEL", "true").lower() in ("1", "true", "yes")
    )
    """Find a waiting operation's rivals by the target labels the chart's admission policy stamps
    (false without those policies: then every Operation of the namespace is read each time)."""

    max_running_operations: int = field(
        default_factory=lambda: int(os.environ.get("BOSUN_MAX_RUNNING_OPERATIONS", "100"))
    )
    """How many operations run steps at once (0: no limit); the others wait, Pending, for a slot.
    Without a limit, 2,500 operations started together on 2 cores: their requests queued in the
    client for more than a step's 30 s, and a third of them failed."""

    heartbeat_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_HEARTBEAT_SECONDS", "20")))
    """How often the operator touches its heartbeat ConfigMap; /healthz fails when the watch stops
    delivering those touches for three periods."""

    heartbeat_namespace: str = field(default_factory=lambda: os.environ.get("BOSUN_NAMESPACE", ""))
    """Where the heartbeat ConfigMap lives (default: the first watched namespace, else `default`)."""

    log_tail_lines: int = field(default_factory=lambda: int(os.environ.get("BOSUN_LOG_TAIL_LINES", "50")))
    """How many of an operation's last log lines its status shows (the whole log is in its namespace)."""

    repair_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_REPAIR_SECONDS", "600")))
    # How often each Database's backup schedule is looked at (a cron has minutes: one is enough).
    schedule_tick_seconds: float = field(
        default_factory=lambda: float(os.environ.get("BOSUN_SCHEDULE_TICK_SECONDS", "60"))
    )
    """How often every App is compared with its current release in one full round. In between,
    drift is repaired as it happens: the objects Bosun manages for Apps are watched."""

    trim_seconds: float = field(default_factory=lambda: float(os.environ.get("BOSUN_TRIM_SECONDS", "60")))
    """How often freed memory is handed back to the system (0: never; see `bosun.memory`)."""

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

    log_retention_seconds: float = field(
        default_factory=lambda: float(os.environ.get("BOSUN_LOG_RETENTION_SECONDS", str(90 * 86400)))
    )
    """How long an operation's log copy stays in its namespace after its last line (the store keeps it)."""

    notify_retry_max_seconds: float = field(
        default_factory=lambda: float(os.environ.get("BOSUN_NOTIFY_RETRY_MAX_SECONDS", "60"))
    )
    """The longest wait between two tries of a failing event delivery (they start at 1 s and double)."""

    notify_give_up_seconds: float = field(
        default_factory=lambda: float(os.environ.get("BOSUN_NOTIFY_GIVE_UP_SECONDS", "3600"))
    )
    """How long an event's delivery is retried before it is given up (counted in the Notifier's status)."""

    @property
    def lease_home(self) -> str:
        return self.leader_election_namespace or self.heartbeat_home

    @property
    def heartbeat_home(self) -> str:
        return self.heartbeat_namespace or (self.namespaces[0] if self.namespaces else "default")
