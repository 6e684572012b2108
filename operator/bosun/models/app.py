"""The App resource: a stateless workload, reconciled into Deployments, Services and a PDB."""

from __future__ import annotations

from pydantic import Field

from bosun.models.base import (
    DNS_LABEL,
    LABELS,
    POD_ANNOTATIONS,
    RESERVED_LABELS,
    SPEC_TEXT_CHARS,
    UNIQUE_BY_NAME,
    AnnotationValue,
    Argument,
    Condition,
    EnvVar,
    KubeModel,
    LabelValue,
    LastOperation,
    Resources,
    TargetPhase,
    Toleration,
    env_text,
    map_text,
    words_text,
)
from bosun.models.terms import OperationPolicy

# On the App object (CEL at the schema's root can read metadata.name): names Bosun derives from it
# must be valid, or every deploy would fail half-way.
APP_RULES: list[dict[str, str]] = [
    {
        "rule": f"self.metadata.name.matches('{DNS_LABEL}')",
        "message": "an App's name must start with a letter and hold only lowercase letters, digits and '-' "
        "(it names Services, which are DNS labels)",
    },
    {
        "rule": "has(self.spec.processes) ? self.spec.processes.all(p, size(self.metadata.name) + size(p.name) <= 62) "
        ": size(self.metadata.name) <= 59",  # the default process is `web`
        "message": "the App's name and each process name together must fit in 62 characters: "
        "'<app>-<process>' names the process's Deployment and Service (a DNS label of at most 63)",
    },
]


APP_SPEC_TEXT = " + ".join(
    [
        words_text("self.command"),
        words_text("self.beforeRelease"),
        env_text("self.env"),
        map_text("self.podAnnotations"),
        f"(has(self.processes) ? self.processes.map(p, {words_text('p.command')} + {env_text('p.env')}).sum() : 0)",
    ]
)
APP_SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": f"{APP_SPEC_TEXT} <= {SPEC_TEXT_CHARS}",
        "message": f"the App's environment, commands and pod annotations hold over {SPEC_TEXT_CHARS} characters "
        "in all: Bosun records every spec it runs, so a spec must stay small (keep large files out of it)",
    }
]


class Port(KubeModel):
    """A port a process listens on."""

    name: str = Field(default="http", max_length=15, description="Port name (IANA service name).")
    port: int = Field(ge=1, le=65535, description="Container port.")
    protocol: str = Field(default="TCP", max_length=4, pattern=r"^(TCP|UDP|SCTP)$", description="TCP, UDP or SCTP.")


class HealthCheck(KubeModel):
    """How Bosun (and Kubernetes) know a pod is ready to serve."""

    path: str = Field(default="/", max_length=1024, description="HTTP path that answers 2xx when healthy.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Port (default: the first port).")
    period_seconds: int = Field(default=5, ge=1, le=300, description="Seconds between checks.")
    failure_threshold: int = Field(default=3, ge=1, le=30, description="Failures before unready.")


class Process(KubeModel):
    """One process type of the app (web, worker, ...): one Deployment."""

    name: str = Field(
        min_length=1, max_length=40, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="Process name."
    )
    command: list[Argument] | None = Field(
        default=None, max_length=64, description="Command (default: the App's command)."
    )
    replicas: int = Field(default=1, ge=0, le=1000, description="Number of pods.")
    ports: list[Port] = Field(
        default_factory=list, max_length=16, description="Ports; a process with ports gets a Service."
    )
    env: list[EnvVar] = Field(default_factory=list, max_length=64, description="Extra environment for this process.")
    resources: Resources | None = Field(default=None, description="CPU/memory requests and limits.")


class AppPlacement(KubeModel):
    """Where the App's pods may run: nodes with these labels, tainted as these tolerations allow."""

    node_selector: dict[str, LabelValue] | None = Field(
        default=None, description="Node labels to match.", json_schema_extra=LABELS
    )
    tolerations: list[Toleration] | None = Field(default=None, max_length=16, description="Taints the pods tolerate.")


class AppSpec(KubeModel):
    """The desired state of an App. Editing it makes Bosun run the matching Operation."""

    image: str = Field(min_length=1, max_length=1024, description="Container image.")
    command: list[Argument] | None = Field(default=None, max_length=64, description="Command for every process.")
    processes: list[Process] = Field(
        default_factory=lambda: [Process(name="web")],
        min_length=1,
        max_length=16,
        description="Process types, each a Deployment; names are unique.",
        json_schema_extra=UNIQUE_BY_NAME,
    )
    env: list[EnvVar] = Field(default_factory=list, max_length=256, description="Environment for every process.")
    health_check: HealthCheck | None = Field(default=None, description="Readiness check of serving processes.")
    resources: Resources | None = Field(default=None, description="Default CPU/memory for every process.")
    min_ready_seconds: int = Field(
        default=5,
        ge=0,
        le=3600,
        description="A new pod must stay Ready this long before an old one is stopped: a release that "
        "crashes right after starting never replaces the running one.",
    )
    termination_grace_period_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="How long a stopping pod may drain its requests; a deploy ends once old pods are gone.",
    )
    pod_labels: dict[str, LabelValue] | None = Field(
        default=None, description="Extra labels on every pod.", json_schema_extra=RESERVED_LABELS
    )
    pod_annotations: dict[str, AnnotationValue] | None = Field(
        default=None, description="Extra annotations on every pod.", json_schema_extra=POD_ANNOTATIONS
    )
    placement: AppPlacement | None = Field(
        default=None, description="Node selector and tolerations of every pod; changing it is a deploy."
    )
    before_release: list[Argument] | None = Field(
        default=None,
        max_length=64,
        description="Command run once, with the new image and config, before a release goes out "
        "(e.g. a database migration). Its effects cannot be rolled back.",
    )
    operation_policy: OperationPolicy | None = Field(
        default=None,
        description="Downtime budget, maintenance windows and approval for operations on this App; "
        "takes effect without an operation of its own.",
    )


class Release(KubeModel):
    """One release of the app, as deployed by an operation."""

    image: str = Field(description="Image of the release.")
    config_hash: str = Field(description="Hash of the release's configuration (all but the image).")
    operation: str = Field(description="The Operation that made it.")
    deployed_at: str | None = Field(default=None, description="When it went live.")
    restarted_at: str = Field(default="", description="Set by a restart: its pods were replaced at this time.")
    spec: AppSpec | None = Field(default=None, description="The App spec it runs; drift is repaired towards it.")


class AppStatus(KubeModel):
    """What Bosun observed of the App."""

    phase: TargetPhase | None = Field(default=None, description="Pending, Running or Deprovisioned.")
    observed_generation: int | None = Field(default=None, description="The spec generation seen.")
    image: str = Field(default="", description="Image running now.")
    releases: list[Release] = Field(default_factory=list, description="Recent releases, newest first.")
    last_operation: LastOperation | None = Field(default=None, description="The newest operation.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Reconciling, Stalled.")
