"""`kubectl bosun cancel | logs | status | activity`: the caller's kubeconfig, the caller's rights.

The CLI talks only to the API server, as the person running it (kubectl's `--as` works too): it has
no store credentials. Activity reports are ConfigMaps in the namespace they describe, so what
someone can read is what Kubernetes RBAC lets them read.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sys
import time
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

from bosun.activity.report import COLUMNS, DIGEST, PARTS, csv_digest, report_name, week_of, weeks_between
from bosun.cli.render import (
    EXIT_ERROR,
    EXIT_REFUSED,
    dry_run_exit,
    dry_run_report,
    exit_code,
    progress_bar,
    step_table,
    table,
)
from bosun.models import logcopy
from bosun.models.base import now, parse_time
from bosun.models.names import FINISHED_PHASES, GROUP, PLURALS, REPORT_OPERATIONS, VERSION

OPERATIONS = PLURALS["Operation"]

CSV_KEY = "activity.csv"
TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\S+ ")


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
            lambda: conn.custom.get_namespaced_custom_object(GROUP, VERSION, conn.namespace, OPERATIONS, name),
        )
    )


def cancel(conn: Connection, name: str, out: TextIO) -> int:
    operation = get_operation(conn, name)
    phase = (operation.get("status") or {}).get("phase", "")
    if phase in FINISHED_PHASES:
        raise CliError(f"operation {name} has already ended ({phase}): nothing to cancel")
    _call(
        f"cancel operation {name}",
        lambda: conn.custom.patch_namespaced_custom_object(
            GROUP, VERSION, conn.namespace, OPERATIONS, name, {"spec": {"cancel": True}}
        ),
    )
    print(f"operation {name}: cancel requested (it rolls back what it changed)", file=out)
    return 0


def operation_name(given: str) -> str:
    """`op/NAME`, `operation/NAME`, `operations.bosun.dev/NAME` or `NAME`, as kubectl takes them."""
    kind, slash, name = given.partition("/")
    if not slash:
        return given
    if kind.split(".")[0] not in ("op", "ops", "operation", "operations"):
        raise CliError(f"{given!r} names no operation: give op/NAME or NAME")
    return name


def approve(conn: Connection, given: str, plan: str | None, out: TextIO) -> int:
    """Approve the plan the operation awaits approval of (the API server checks the verb approve)."""
    name = operation_name(given)
    operation = get_operation(conn, name)
    status_ = operation.get("status") or {}
    phase = status_.get("phase", "")
    if phase in FINISHED_PHASES:
        raise CliError(f"operation {name} has already ended ({phase}): nothing to approve")
    awaited = (status_.get("approval") or {}).get("plan", "")
    if not awaited:
        raise CliError(
            f"operation {name} awaits no approval (its target does not require one, or it is not planned yet)"
        )
    if plan and plan != awaited:
        raise CliError(
            f"operation {name} now awaits approval of plan {awaited}, not {plan}: read it again before approving"
        )
    summary = (status_.get("approval") or {}).get("summary", "")
    _call(
        f"approve operation {name}",
        lambda: conn.custom.patch_namespaced_custom_object(
            GROUP, VERSION, conn.namespace, OPERATIONS, name, {"spec": {"approval": {"plan": awaited}}}
        ),
    )
    print(f"operation {name}: plan {awaited} approved{': ' + summary if summary else ''}", file=out)
    return 0


def override(conn: Connection, given: str, window: bool, budget: bool, reason: str, out: TextIO) -> int:
    """Waive the target's maintenance window and/or downtime budget for one operation, with a reason."""
    name = operation_name(given)
    if not (window or budget):
        raise CliError("override what? give --window and/or --budget")
    if not reason.strip():
        raise CliError("an override needs --reason: it is recorded with who asked")
    operation = get_operation(conn, name)
    phase = (operation.get("status") or {}).get("phase", "")
    if phase in FINISHED_PHASES:
        raise CliError(f"operation {name} has already ended ({phase}): nothing to override")
    waived = {"maintenanceWindow": window, "downtimeBudget": budget, "reason": reason.strip()}
    _call(
        f"override on operation {name}",
        lambda: conn.custom.patch_namespaced_custom_object(
            GROUP, VERSION, conn.namespace, OPERATIONS, name, {"spec": {"override": waived}}
        ),
    )
    what = " and ".join(w for w, on in (("its maintenance window", window), ("its downtime budget", budget)) if on)
    print(f"operation {name}: {what} waived ({reason.strip()})", file=out)
    return 0


def status(conn: Connection, name: str, out: TextIO) -> int:
    operation = get_operation(conn, name)
    if (operation.get("spec") or {}).get("dryRun"):
        print(dry_run_report(operation), file=out)
        return dry_run_exit(operation)
    print(step_table(operation), file=out)
    code = exit_code(operation.get("status") or {})
    return 0 if code is None else code


def _unless_missing(what: str, work: Any) -> Any:
    """The answer of a read, or None when the object does not exist; any other error is one line."""
    from kubernetes.client.exceptions import ApiException

    try:
        return work()
    except ApiException as error:
        if error.status == 404:
            return None
        raise _api_error(error, what) from None
    except Exception as error:
        raise _api_error(error, what) from None


def find_operation(conn: Connection, name: str) -> dict[str, Any] | None:
    return _find(conn, OPERATIONS, name)


def _log_chunks(conn: Connection, name: str, selector: str) -> list[dict[str, Any]]:
    found = _call(
        f"log of operation {name} in namespace {conn.namespace}",
        lambda: conn.core.list_namespaced_config_map(conn.namespace, label_selector=selector),
    )
    return [conn.core.api_client.sanitize_for_serialization(item) for item in found.items]


def copied_lines(conn: Connection, name: str, uid: str, chunks: list[dict[str, Any]] | None = None) -> list[str]:
    """The operation's whole log as its namespace's copy holds it (`bosun.models.logcopy`)."""
    if chunks is None:
        chunks = _log_chunks(conn, name, f"{logcopy.UID_LABEL}={uid}")
    try:
        return logcopy.lines_of(logcopy.assemble(chunks, name, uid))
    except logcopy.DamagedLog as error:
        raise CliError(f"log of operation {name} in namespace {conn.namespace}: {error}") from None


def _shown(line: str, timestamps: bool) -> str:
    return line if timestamps or not TIMESTAMPED.match(line) else line.split(" ", 1)[1]


@dataclass
class _LogCursor:
    """Which line comes next, and since when the copy has been behind the status (if it is)."""

    printed: int
    behind_since: float | None = None


def _next_lines(
    conn: Connection, name: str, uid: str, log: dict[str, Any], cursor: _LogCursor, wait: float
) -> tuple[list[str], str]:
    """Lines from the cursor on: from the status tail, and from the copy for what the tail no longer shows.

    Returns the lines and, when the copy stayed behind longer than `wait`, a notice of the lines skipped.
    """
    tail, total = list(log.get("lines") or []), int(log.get("total") or 0)
    first = total - len(tail)
    if cursor.printed >= first:
        cursor.behind_since = None
        return tail[cursor.printed - first :], ""
    copied = copied_lines(conn, name, uid)
    lines = copied[cursor.printed :]
    if len(copied) >= first:
        cursor.behind_since = None
        return lines + tail[max(0, len(copied) - first) :], ""
    now = time.monotonic()
    cursor.behind_since = cursor.behind_since or now
    if now - cursor.behind_since < wait:  # the operator copies new lines about every second
        return lines, ""
    missing = f"{max(cursor.printed, len(copied)) + 1}-{first}"
    notice = f"lines {missing} are not in the namespace's copy of the log (the log store has them)"
    cursor.printed = first - len(lines)  # the caller adds every line returned: it ends at `total`
    cursor.behind_since = None
    return lines + tail, notice


def _copy_wait(status: dict[str, Any], follow: bool, wait: float) -> float:
    """How long to wait for the copy to catch up: not for an operation that ended a while ago."""
    finished = status.get("finishedAt")
    if follow or not finished:
        return wait
    ended = (now() - parse_time(finished)).total_seconds()
    return wait if ended < wait else 0.0


def logs(
    conn: Connection,
    name: str,
    follow: bool,
    out: TextIO,
    err: TextIO,
    *,
    tail: int | None = None,
    timestamps: bool = False,
    poll: float = 0.5,
    copy_wait: float = 30.0,
) -> int:
    """Print the operation's whole log; with follow, until it ends, with a progress bar on stderr."""
    operation = find_operation(conn, name)
    if operation is None:
        return removed_log(conn, name, out, tail=tail, timestamps=timestamps)
    uid = str(operation["metadata"].get("uid", ""))
    cursor: _LogCursor | None = None
    last_bar = ""
    tty = err.isatty()
    while True:
        current = operation.get("status") or {}
        log = current.get("log") or {}
        if cursor is None:
            cursor = _LogCursor(max(0, int(log.get("total") or 0) - tail) if tail is not None else 0)
        lines, notice = _next_lines(conn, name, uid, log, cursor, _copy_wait(current, follow, copy_wait))
        if (lines or notice) and tty and last_bar:
            err.write("\r\033[K")
        if notice:
            print(f"warning: {notice}", file=err)
        for line in lines:
            print(_shown(line, timestamps), file=out)
        out.flush()
        cursor.printed += len(lines)
        code = exit_code(current)
        if follow:
            bar = progress_bar(current)
            if bar != last_bar or (lines and tty):
                err.write(("\r\033[K" + bar) if tty else bar + "\n")
                err.flush()
                last_bar = bar
        complete = cursor.printed >= int(log.get("total") or 0)
        if complete and (not follow or code is not None):
            if follow and tty:
                err.write("\n")
            return 0 if code is None else code
        time.sleep(poll)
        operation = get_operation(conn, name)


def removed_log(conn: Connection, name: str, out: TextIO, *, tail: int | None, timestamps: bool) -> int:
    """The log of an operation retention removed: its namespace keeps the copy."""
    chunks = [
        c
        for c in _log_chunks(conn, name, f"{logcopy.OF_LABEL}={logcopy.of_label(name)}")
        if ((c.get("metadata") or {}).get("annotations") or {}).get(logcopy.OPERATION_ANNOTATION) == name
    ]
    uid = logcopy.newest_uid(chunks)
    if not uid:
        raise CliError(f"operation {name} in namespace {conn.namespace}: not found, and no log of it is kept")
    lines = copied_lines(conn, name, uid, chunks)
    for line in lines[len(lines) - tail :] if tail is not None else lines:
        print(_shown(line, timestamps), file=out)
    return 0


def _weeks(week: str | None, since: date | None, today: date) -> list[str]:
    if week:
        return [week]
    if since:
        return weeks_between(week_of(since), week_of(today))
    return [week_of(today)]


def activity(conn: Connection, week: str | None, since: date | None, output: str, out: TextIO, err: TextIO) -> int:
    """The namespace's activity reports, as CSV (the report itself) or a table."""
    today = now().date()
    rows: list[dict[str, str]] = []
    missing = []
    for name in _weeks(week, since, today):
        week_rows = _read_week(conn, name, err)
        if week_rows is None:
            missing.append(name)
            continue
        rows.extend(week_rows)
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
        for row in rows:
            row["type"] += " (dry run)" if row.get("dry_run") == "true" else ""
        print(
            table(
                [c.upper() for c in shown] + ["TOOK"], [[r[c] for c in shown] + [r["duration_seconds"]] for r in rows]
            ),
            file=out,
        )
    return EXIT_ERROR if missing and not rows and week else 0


MAX_PARTS = 1000  # a report of 2.5 million operations in one namespace's week


def _read_week(conn: Connection, week: str, err: TextIO) -> list[dict[str, str]] | None:
    """A week's report, every part; read again if a rewrite came in between (the row count its
    first part gives disagrees), at most three times. None if there is no report for the week."""
    for _ in range(3):
        first = _read_report(conn, report_name(week))
        if first is None:
            return None
        annotations = first.metadata.annotations or {}
        count, expected = _number(annotations.get(PARTS), 1), _number(annotations.get(REPORT_OPERATIONS), -1)
        rows = report_rows(first, err)
        for part in range(2, min(count, MAX_PARTS) + 1):
            more = _read_report(conn, report_name(week, part))
            if more is None:
                print(f"part {part} of the activity report for {week} is missing", file=err)
                continue
            rows.extend(report_rows(more, err))
        if expected < 0 or len(rows) == expected:
            return rows
    print(f"the activity report for {week} changed while it was read: {len(rows)} rows of {expected}", file=err)
    return rows


def report_rows(config_map: Any, err: TextIO) -> list[dict[str, str]]:
    """The rows of one report part, whatever it holds: a field of any length, a row cut short or
    an extra column (an altered or truncated report) costs a warning, never the reader."""
    csv.field_size_limit(sys.maxsize)  # Bosun caps what it writes; a report Bosun did not write may not be
    name = getattr(config_map.metadata, "name", "?")
    text = (config_map.data or {}).get(CSV_KEY) or ""
    digest = (getattr(config_map.metadata, "annotations", None) or {}).get(DIGEST)
    if digest is None:
        print(
            f"warning: activity report {name} carries no digest (Bosun did not write it, or a Bosun before "
            "digests did): its rows cannot be checked",
            file=err,
        )
    elif digest != csv_digest(text):
        print(f"warning: activity report {name} was altered after Bosun wrote it: its rows may be forged", file=err)
    rows: list[dict[str, str]] = []
    reader = csv.DictReader(io.StringIO(text))
    try:
        for row in reader:
            rows.append({column: str(row.get(column) or "") for column in COLUMNS})
    except csv.Error as error:
        print(f"warning: activity report {name} is damaged after {len(rows)} rows ({error}): showing those", file=err)
    return rows


def _number(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.isdigit() else default


def _read_report(conn: Connection, name: str) -> Any:
    return _unless_missing(
        f"activity report {name} in namespace {conn.namespace}",
        lambda: conn.core.read_namespaced_config_map(name, conn.namespace),
    )


KINDS = {"app": "App", "apps": "App", "database": "Database", "databases": "Database", "db": "Database"}


def target_of(text: str) -> tuple[str, str]:
    """`database/pg` or `app/web` (kubectl's kind/name)."""
    kind, _, name = text.partition("/")
    if kind.lower() not in KINDS or not name:
        raise CliError(f"--target {text!r}: write it as app/NAME or database/NAME")
    return KINDS[kind.lower()], name


def dry_run_manifest(
    kind: str, name: str, type_: str, parameters: dict[str, Any], proposed: dict[str, Any] | None
) -> dict[str, Any]:
    # cancel: true as well, so that an operator too old to know dry runs cancels it rather than runs it
    spec: dict[str, Any] = {"target": {"kind": kind, "name": name}, "type": type_, "dryRun": True, "cancel": True}
    if parameters:
        spec["parameters"] = parameters
    if proposed is not None:
        spec["proposed"] = proposed
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Operation",
        "metadata": {"generateName": f"{re.sub(r'[-.]+$', '', name[:40])}-{type_}-plan-"},
        "spec": spec,
    }


def _run_dry(conn: Connection, manifest: dict[str, Any], out: TextIO, wait: float) -> int:
    created = _call(
        "create the dry-run Operation",
        lambda: conn.custom.create_namespaced_custom_object(GROUP, VERSION, conn.namespace, OPERATIONS, manifest),
    )
    name = created["metadata"]["name"]
    if not (created.get("spec") or {}).get("dryRun"):
        raise CliError(
            f"the cluster's Bosun does not know dry runs (its Operation CRD dropped spec.dryRun): {name} was "
            "created cancelled, so nothing runs; upgrade Bosun's CRDs and operator to plan"
        )
    deadline = time.monotonic() + wait
    operation = created
    while (operation.get("status") or {}).get("phase") not in FINISHED_PHASES:
        if time.monotonic() > deadline:
            raise CliError(f"dry run {name} did not end within {wait:.0f}s: is the Bosun operator running?")
        time.sleep(0.3)
        operation = get_operation(conn, name)
    print(dry_run_report(operation), file=out)
    return dry_run_exit(operation)


def plan_operation(
    conn: Connection, type_: str, target: str, parameters: dict[str, Any], out: TextIO, wait: float = 120.0
) -> int:
    """`kubectl bosun plan --type T --target kind/name [...]`: one dry run, as that Operation would run."""
    kind, name = target_of(target)
    return _run_dry(conn, dry_run_manifest(kind, name, type_, parameters, None), out, wait)


def _admission(
    conn: Connection, document: dict[str, Any], current: dict[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """The API server's answer to the manifest (schema, CEL rules, policies), by a server-side dry run.

    Returns its refusal ('' when it takes it) and the spec as it would be stored, with the schema's
    defaults filled in, so that a default left out of the file is not mistaken for a change.
    """
    from kubernetes.client.exceptions import ApiException

    plural, name = PLURALS[document["kind"]], document["metadata"]["name"]
    body = {**document, "metadata": {**document["metadata"], "namespace": conn.namespace}}
    try:
        if current is None:
            stored = conn.custom.create_namespaced_custom_object(
                GROUP, VERSION, conn.namespace, plural, body, dry_run="All"
            )
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            stored = conn.custom.replace_namespaced_custom_object(
                GROUP, VERSION, conn.namespace, plural, name, body, dry_run="All"
            )
    except ApiException as error:
        if error.status in (400, 403, 422):
            return str(_api_error(error, f"the API server refuses {document['kind']} {name}")), {}
        raise _api_error(error, f"check {document['kind']} {name} with the API server") from None
    return "", dict(stored.get("spec") or {})


def plan_file(conn: Connection, path: str, out: TextIO, err: TextIO, wait: float = 120.0) -> int:
    """`kubectl bosun plan -f FILE`: the operations applying the file's Apps and Databases would run."""
    import yaml

    from bosun.operations.changes import app_changes, database_changes

    try:
        with open(path) if path != "-" else contextlib.nullcontext(sys.stdin) as source:
            text = source.read(MAX_PLAN_BYTES + 1)
        if len(text) > MAX_PLAN_BYTES:
            raise CliError(f"{path} is over {MAX_PLAN_BYTES // 2**20} MiB: not a set of App and Database manifests")
        loaded = [d for d in yaml.load_all(text, Loader=_bounded_loader()) if d]
        if _expanded_nodes(loaded, MAX_PLAN_NODES) > MAX_PLAN_NODES:
            raise CliError(f"{path} expands (through its YAML aliases) to over {MAX_PLAN_NODES} values: refused")
        documents = _objects(loaded, path)
    except (OSError, yaml.YAMLError, RecursionError) as error:
        raise CliError(f"cannot read {path}: {' '.join(str(error).split())[:300]}") from None
    worst, planned = 0, 0
    for document in documents:
        kind, name = document.get("kind"), document["metadata"].get("name", "")
        if str(document.get("apiVersion", "")).split("/")[0] == GROUP and (kind not in PLURALS or not name):
            raise CliError(f"{path}: {document.get('apiVersion')} {kind} {name!r} is not an App or Database to plan")
        if document.get("apiVersion") != f"{GROUP}/{VERSION}" or kind not in ("App", "Database"):
            print(f"skipped {kind or 'a document'} {name}: not a Bosun App or Database", file=err)
            continue
        at = Connection(conn.custom, conn.core, (document.get("metadata") or {}).get("namespace") or conn.namespace)
        current = _find(at, PLURALS[kind], name)
        refused, new = _admission(at, document, current)
        if refused:
            print(f"Verdict:   REFUSED at admission: {refused}", file=out)
            worst = max(worst, EXIT_REFUSED)
            continue
        changes = (app_changes if kind == "App" else database_changes)((current or {}).get("spec"), new)
        if not changes:
            print(f"{kind} {name}: no change that needs an operation", file=out)
            continue
        for n, (type_, parameters) in enumerate(changes, start=1):
            if len(changes) > 1:
                print(f"--- {kind} {name}: operation {n} of {len(changes)}, in this order", file=out)
            manifest = dry_run_manifest(kind, name, type_.value, _present(parameters), new)
            worst = max(worst, _run_dry(at, manifest, out, wait))
            planned += 1
    if not planned and not worst:
        print("nothing to plan: applying this would start no operation", file=out)
    return worst


MAX_PLAN_BYTES = 4 * 2**20  # the API server takes no object over 3 MiB
MAX_ALIASES = 100  # YAML aliases in one file: a few are anchors' use, thousands are a bomb


MAX_PLAN_NODES = 1_000_000  # values once aliases are expanded, as sending the objects would


def _expanded_nodes(value: Any, limit: int) -> int:
    """How many values `value` holds with every alias expanded, counting no further than `limit`."""
    count, pending = 0, [value]
    while pending and count <= limit:
        item = pending.pop()
        count += 1
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def _bounded_loader() -> Any:
    """A safe YAML loader that refuses a file with more than MAX_ALIASES aliases, at once: a few
    nested anchors ("billion laughs") otherwise expand to more than the machine can hold."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise yaml.YAMLError(f"more than {MAX_ALIASES} YAML aliases: refused (kubectl refuses it too)")
            return super().compose_node(parent, index)

    return BoundedLoader


def _objects(documents: list[Any], path: str) -> list[dict[str, Any]]:
    """The objects of a manifest file, with the items of a `kind: List` (as `kubectl get -o yaml` writes)."""
    objects: list[dict[str, Any]] = []
    for document in documents:
        if not isinstance(document, dict) or not isinstance(document.get("metadata", {}), dict):
            raise CliError(f"{path}: a document is not a Kubernetes object (kind, metadata, spec)")
        if document.get("kind") == "List":
            objects.extend(_objects(list(document.get("items") or []), path))
        else:
            objects.append({**document, "metadata": document.get("metadata") or {}})
    return objects


def _present(parameters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parameters.items() if v not in (None, [], {})}


def _find(conn: Connection, plural: str, name: str) -> dict[str, Any] | None:
    found = _unless_missing(
        f"{plural.rstrip('s')} {name} in namespace {conn.namespace}",
        lambda: conn.custom.get_namespaced_custom_object(GROUP, VERSION, conn.namespace, plural, name),
    )
    return None if found is None else dict(found)
