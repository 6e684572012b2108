"""Prometheus metrics: every metric Bosun exports, named in one place.

Why one module at the bottom of the layers: the engine, the kube adapter, the store and the
operation log each count what only they see, and none may import the others. The process that
ends an operation counts it (a resumed operation is counted by the process that finishes it), so
the counters of a fleet of replicas add up; `/metrics` is served by `bosun.serving`.

Names follow Prometheus conventions: the `bosun_` prefix, `_total` for counters, `_seconds` for
durations, and labels with few values (operation type, phase, step name, HTTP status).
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

# Operations take seconds to tens of minutes; steps milliseconds to minutes.
_LONG = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
_SHORT = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)

OPERATIONS = Counter(
    "bosun_operations_total",
    "Operations ended by this process, by type, final phase and rollback outcome.",
    ["kind", "type", "phase", "rollback"],
)
OPERATION_DURATION = Histogram(
    "bosun_operation_duration_seconds",
    "From an operation's start to its end (queue wait excluded), by type and final phase.",
    ["kind", "type", "phase"],
    buckets=_LONG,
)
STEP_DURATION = Histogram(
    "bosun_step_duration_seconds",
    "Duration of a step's run that ended (done, skipped or failed), by operation type and step.",
    ["type", "step", "state"],
    buckets=_SHORT,
)
STEP_TRANSITION = Histogram(
    "bosun_step_transition_seconds",
    "From a step's run ending to the next step's run starting in the same process: the engine's own "
    "overhead between two steps (one status write).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
QUEUE_WAIT = Histogram(
    "bosun_queue_wait_seconds",
    "From an operation's creation to its first step, by type.",
    ["kind", "type"],
    buckets=_SHORT,
)
RUN_SLOT_WAIT = Histogram(
    "bosun_run_slot_wait_seconds",
    "How long an operation whose turn had come waited for one of the process's run slots "
    "(maxRunningOperations); 0 when one was free.",
    buckets=_SHORT,
)
EVENT_LOOP_LAG = Histogram(
    "bosun_event_loop_lag_seconds",
    "How much later than due the operator's event loop woke a probe that sleeps 0.5 s: the time "
    "everything the operator does waits for its own CPU.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
GC_PAUSE = Histogram(
    "bosun_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation (2: a full collection); the event "
    "loop runs nothing meanwhile.",
    ["generation"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1),
)
MOVE_DOWNTIME = Histogram(
    "bosun_database_move_downtime_seconds",
    "Downtime of a database move, from stopping the old pod to the new one Ready.",
    buckets=(0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
RUNNING = Gauge("bosun_operations_running", "Operations this process is driving now (running or waiting their turn).")
LEADER = Gauge("bosun_leader", "1 while this replica holds the leader Lease (or runs without election), else 0.")
LEADER_TRANSITIONS = Counter("bosun_leader_acquired_total", "Times this replica became the leader.")
API_ERRORS = Counter(
    "bosun_kube_api_errors_total",
    "Kubernetes API calls that failed, by HTTP status (0: no answer) and whether they are retried "
    "(transient) or not (permanent); NotFound and AlreadyExists are answers, not counted.",
    ["code", "kind"],
)
RETRIES = Counter(
    "bosun_retries_total",
    "Work retried after a transient error, by where (read: an API read; step, undo, plan).",
    ["where"],
)
STORE_FAILURES = Counter(
    "bosun_store_failures_total",
    "Log store requests that failed, by request (put, get, list).",
    ["request"],
)
REPORT_REFUSED = Counter(
    "bosun_activity_report_refused_total",
    "Weekly activity reports the API server refused to store; the records are archived all the same.",
)
LOG_LINES_BUFFERED = Gauge(
    "bosun_log_lines_buffered",
    "Operation log lines held in memory because the log store has not taken them yet.",
)
LOG_LINES_DROPPED = Counter(
    "bosun_log_lines_dropped_total",
    "Operation log lines not kept because the log store was unreachable for too long.",
)
NOTIFICATIONS = Counter(
    "bosun_notifications_total",
    "Event deliveries to Notifiers, by namespace, Notifier and outcome (delivered, failed: retried, given-up).",
    ["namespace", "notifier", "outcome"],
)
BACKUP_OVERDUE = Gauge(
    "bosun_database_backup_overdue",
    "1 while a Database with a backup schedule has no backup completed since its last scheduled time "
    "(an hour's grace), else 0: alert on it.",
    ["namespace", "database"],
)
BACKUP_AGE = Gauge(
    "bosun_database_last_backup_age_seconds",
    "Age of the newest completed backup of a Database with a backup schedule, when last checked.",
    ["namespace", "database"],
)


def forget_database(namespace: str, database: str) -> None:
    """Drop a Database's backup series (its schedule is gone)."""
    for gauge in (BACKUP_OVERDUE, BACKUP_AGE):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, database)
