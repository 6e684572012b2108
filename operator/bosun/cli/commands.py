"""`kubectl bosun cancel | logs | status | activity`: the caller's kubeconfig, the caller's rights.

The CLI talks only to the API server, as the person running it (kubectl's `--as` works too): it has
no store credentials. Activity reports are ConfigMaps in the namespace they describe, so what
someone can read is what Kubernetes RBAC lets them read.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TextIO

from bosun.activity.report import COLUMNS, report_name, week_of, weeks_between
from bosun.cli.render import EXIT_ERROR, exit_code, new_log_lines, progress_bar, step_table, table

GROUP, VERSION = "bosun.dev", "v1alpha1"
CSV_KEY = "activity.csv"


class CliError(Exception):
    """One clear line for the user; exit code 1."""


@dataclass
class Connection:
    custom: Any
    core: Any
    namespace: str


def connect(kubeconfig: str | None, context: str | None, namespace: str | None, as_user: str | None) -> Connection:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    except (ConfigException, FileNotFoundError, OSError) as error:
        raise CliError(f"cannot load kubeconfig: {error}") from None
    if as_user:
        api.set_default_header("Impersonate-User", as_user)
    default_namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Connection(client.CustomObjectsApi(api), client.CoreV1Api(api), namespace or default_namespace)


def _api_error(error: Exception, what: str) -> CliError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(error, ApiException):
        try:
            message = json.loads(error.body or "{}").get("message") or error.reason
        except ValueError:
            message = error.reason
        return CliError(f"{what}: {message}")
    return CliError(f"{what}: cannot reach the API server ({type(error).__name__}: {error})")


def _call(what: str, work: Any) -> Any:
    try:
        return work()
    except Exception as error:
        raise _api_error(error, what) from None


def get_operation(conn: Connection, name: str) -> dict[str, Any]:
    return dict(
        _call(
            f"operation {name} in namespace {conn.namespace}",
            lambda: conn.custom.get_namespaced_custom_object(GROUP, VERSION, conn.namespace, "operations", name),
        )
    )


def cancel(conn: Connection, name: str, out: TextIO) -> int:
    operation = get_operation(conn, name)
    phase = (operation.get("status") or {}).get("phase", "")
    if phase in ("Succeeded", "Failed", "Cancelled"):
        raise CliError(f"operation {name} has already ended ({phase}): nothing to cancel")
    _call(
        f"cancel operation {name}",
        lambda: conn.custom.patch_namespaced_custom_object(
            GROUP, VERSION, conn.namespace, "operations", name, {"spec": {"cancel": True}}
        ),
    )
    print(f"operation {name}: cancel requested (it rolls back what it changed)", file=out)
    return 0


def status(conn: Connection, name: str, out: TextIO) -> int:
    operation = get_operation(conn, name)
    print(step_table(operation), file=out)
    code = exit_code(operation.get("status") or {})
    return 0 if code is None else code


def logs(conn: Connection, name: str, follow: bool, out: TextIO, err: TextIO, poll: float = 0.5) -> int:
    """Print the operation's log; with follow, until it ends, with a progress bar on stderr."""
    printed, last_bar = 0, ""
    tty = err.isatty()
    while True:
        operation = get_operation(conn, name)
        current = operation.get("status") or {}
        lines, total, skipped = new_log_lines(current, printed)
        if lines and tty and last_bar:
            err.write("\r\033[K")
        if skipped:
            where = (current.get("log") or {}).get("url", "the log store")
            print(f"... {skipped} earlier lines are in {where}", file=out)
        for line in lines:
            print(line, file=out)
        out.flush()
        printed = max(printed, total)
        code = exit_code(current)
        if follow:
            bar = progress_bar(current)
            if bar != last_bar or (lines and tty):
                err.write(("\r\033[K" + bar) if tty else bar + "\n")
                err.flush()
                last_bar = bar
        if not follow or code is not None:
            if follow and tty:
                err.write("\n")
            return 0 if code is None else code
        time.sleep(poll)


def _weeks(week: str | None, since: date | None, today: date) -> list[str]:
    if week:
        return [week]
    if since:
        return weeks_between(week_of(since), week_of(today))
    return [week_of(today)]


def activity(conn: Connection, week: str | None, since: date | None, output: str, out: TextIO, err: TextIO) -> int:
    """The namespace's activity reports, as CSV (the report itself) or a table."""
    today = datetime.now(UTC).date()
    rows: list[dict[str, str]] = []
    missing = []
    for name in _weeks(week, since, today):
        config_map = _read_report(conn, report_name(name))
        if config_map is None:
            missing.append(name)
            continue
        rows.extend(csv.DictReader(io.StringIO((config_map.data or {}).get(CSV_KEY, ""))))
    if since:
        rows = [r for r in rows if r["created"][:10] >= since.isoformat()]
    if missing:
        print(f"no activity report in namespace {conn.namespace} for {', '.join(missing)}", file=err)
    if output == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        shown = ["created", "operation", "type", "target_kind", "target_name", "initiator", "phase", "rollback"]
        print(
            table(
                [c.upper() for c in shown] + ["TOOK"], [[r[c] for c in shown] + [r["duration_seconds"]] for r in rows]
            ),
            file=out,
        )
    return EXIT_ERROR if missing and not rows and week else 0


def _read_report(conn: Connection, name: str) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return conn.core.read_namespaced_config_map(name, conn.namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise _api_error(error, f"activity report {name} in namespace {conn.namespace}") from None
    except Exception as error:
        raise _api_error(error, f"activity report {name}") from None
