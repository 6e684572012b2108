"""The names Bosun shares with its users, its CLI and its tests: API group, annotations, labels.

One module, so that the operator, `kubectl bosun` and the tests cannot disagree on a spelling.
Which of these can be trusted matters: annotations are writable by anyone who may edit the
object, so Bosun reads its own decisions (plan, archive marker) from the status subresource, and
the initiator annotations only from Operations the operator itself created (see `engine.service`).
"""

from __future__ import annotations

from bosun import __version__

GROUP = "bosun.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURALS = {
    "App": "apps",
    "Database": "databases",
    "Operation": "operations",
    "Notifier": "notifiers",
    "Backup": "backups",
}
FINISHED_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})  # an Operation in one never changes again

# Stamped by the API server's admission policies (manifests/admission-policies.yaml): users cannot
# set them, the policies overwrite whatever a request carries.
CREATED_BY = f"{GROUP}/created-by"  # every Operation: the user who created it
SPEC_EDITED_BY = f"{GROUP}/spec-edited-by"  # App/Database: the user who last changed the spec
CANCELLED_BY = f"{GROUP}/cancelled-by"  # Operation: the user who set spec.cancel
APPROVED_BY = f"{GROUP}/approved-by"  # Operation: the user who set spec.approval (with the verb approve)
OVERRIDDEN_BY = f"{GROUP}/overridden-by"  # Operation: the user who set spec.override

# Why an Operation waits Pending before its first step (status.reason); its deadline counts from
# the end of the wait, so an operation held for Sunday's window does not fail on Tuesday.
WAITING_FOR_WINDOW = "WaitingForWindow"
AWAITING_APPROVAL = "AwaitingApproval"
NOT_BEFORE = "NotBefore"
HOLD_REASONS = frozenset({WAITING_FOR_WINDOW, AWAITING_APPROVAL, NOT_BEFORE})

# Written by the operator on the Operations it creates for a spec edit. Trusted only when the
# Operation's `created-by` is the operator's own identity.
INITIATOR_SOURCE = f"{GROUP}/initiator-source"
INITIATOR_USER = f"{GROUP}/initiator"
INITIATOR_MANAGER = f"{GROUP}/initiator-manager"
TARGET_GENERATION = f"{GROUP}/target-generation"
EDIT_PART = f"{GROUP}/edit-part"  # "i/n": the i-th of the n operations one spec edit made

# Kopf's bookkeeping, kept under Bosun's prefix.
FINALIZER = f"{GROUP}/finalizer"

# Labels on the Operations Bosun creates, for `kubectl get ops -l`.
TARGET_KIND_LABEL = f"{GROUP}/target-kind"
TARGET_LABEL = f"{GROUP}/target"
# What a label value may be (Kubernetes' rule): the target names the admission policy stamps into
# TARGET_LABEL, and so the ones the queue may select by. Any other name is left unlabelled.
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def labellable(name: str) -> bool:
    """Whether `name` can be a label value (at most 63 characters of the label alphabet)."""
    import re

    return len(name) <= 63 and re.fullmatch(LABEL_VALUE, name) is not None


# On Operations whose record is archived (status.archived) and whose finalizer is gone: the operator
# watches only Operations without it, so finished records cost it nothing, however many are kept.
# An admission policy refuses it on any Operation whose status does not say archived.
ARCHIVED_LABEL = f"{GROUP}/archived"

# On objects a step created: which operation made them (so a re-run knows its own work).
CREATED_BY_OPERATION = f"{GROUP}/created-by-operation"
RESIZED_BY_OPERATION = f"{GROUP}/resized-by-operation"

# Backups: kubernetes-csi/external-snapshotter's VolumeSnapshot API (snapshot-controller and a CSI
# driver that can snapshot), and what marks a snapshot class as the one to use for its driver.
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
SNAPSHOT_VERSION = "v1"
DEFAULT_SNAPSHOT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"
BACKUP_LABEL = f"{GROUP}/backup"  # on a backup's VolumeSnapshot: the Backup record it belongs to
BACKUP_TRIGGER = f"{GROUP}/backup-trigger"  # on a backup Operation the schedule made: "Scheduled"

# On what Bosun runs for a target: pods, their templates and their placeholders.
DATABASE_LABEL = f"{GROUP}/database"  # every pod, Secret and claim of a Database: its name
SERVING_LABEL = f"{GROUP}/serving"  # the Database pod its Service sends clients to
PREPULL_LABEL = f"{GROUP}/prepull"  # the placeholder that pulls the image and holds room on a move target
RELEASE_ANNOTATION = f"{GROUP}/release"  # an App's pod template: the release it belongs to
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"  # an App's pod template: the digest of its configuration
RESTARTED_AT_ANNOTATION = f"{GROUP}/restarted-at"  # an App's pod template: when a restart asked for new pods

# The recommended labels on every workload object Bosun makes (Deployments, pods, Services...).
INSTANCE_LABEL = "app.kubernetes.io/instance"  # the App's or Database's name
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"  # "bosun"

# How the operator's requests name themselves in the API server's audit log: its own client, and
# the Kopf framework's (watches, finalizers) with Kopf's part marked.
USER_AGENT = f"bosun/{__version__}"
KOPF_USER_AGENT = f"{USER_AGENT} kopf"

# On the ConfigMaps of a week's activity report (bosun.activity): read by `kubectl bosun activity`.
REPORT_PARTS = f"{GROUP}/parts"  # on the first part: how many parts the report has
REPORT_DIGEST = f"{GROUP}/sha256"  # on every part: the digest of its CSV as Bosun wrote it
REPORT_FINAL = f"{GROUP}/final"  # the week is over and every operation of it archived
REPORT_OPERATIONS = f"{GROUP}/operations"  # how many operations the report lists
REPORT_LABEL = f"{GROUP}/activity-report"  # "true" on every part of every week's report
REPORT_WEEK = f"{GROUP}/week"  # the report's ISO week, e.g. 2026-W49
