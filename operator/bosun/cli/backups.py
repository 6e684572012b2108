"""`kubectl bosun backup db/NAME` and `kubectl bosun backups db/NAME`.

A backup is an Operation like any other, so `backup` only creates one (type backup) and, unless
told not to wait, follows its log until it ends with the exit code `logs -f` gives. `backups` lists
the records (`Backup`) of one Database by name, its earlier incarnations' included: records
outlive the Database they were taken of.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TextIO

from bosun.cli.commands import OPERATIONS, CliError, Connection, _call, logs
from bosun.models.names import API_VERSION, DATABASE_LABEL, GROUP, PLURALS, VERSION

BACKUPS = PLURALS["Backup"]


def database_of(text: str) -> str:
    """`db/pg`, `database/pg` or `databases/pg`: the Database's name."""
    kind, _, name = text.partition("/")
    if kind.lower() not in ("db", "database", "databases") or not name:
        raise CliError(f"{text!r}: write it as db/NAME")
    return name


def backup(conn: Connection, target: str, wait: bool, out: TextIO, err: TextIO, dump: bool = False) -> int:
    name = database_of(target)
    _call(
        f"database {name} in namespace {conn.namespace}",
        lambda: conn.custom.get_namespaced_custom_object(GROUP, VERSION, conn.namespace, PLURALS["Database"], name),
    )
    operation = {
        "apiVersion": API_VERSION,
        "kind": "Operation",
        "metadata": {"name": f"{name}-backup-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"},
        "spec": {
            "target": {"kind": "Database", "name": name},
            "type": "backup",
            **({"parameters": {"method": "Dump"}} if dump else {}),
        },
    }
    made = _call(
        f"create a backup operation of {name}",
        lambda: conn.custom.create_namespaced_custom_object(GROUP, VERSION, conn.namespace, OPERATIONS, operation),
    )
    op_name = made["metadata"]["name"]
    what = "a dump" if dump else "backup"
    print(f"operation/{op_name} created: {what} of database/{name}; its record will be backup/{op_name}", file=out)
    if not wait:
        return 0
    return logs(conn, op_name, True, out, err)


def records(conn: Connection, database: str) -> list[dict[str, Any]]:
    listed = _call(
        f"backups of {database} in namespace {conn.namespace}",
        lambda: conn.custom.list_namespaced_custom_object(
            GROUP, VERSION, conn.namespace, BACKUPS, label_selector=f"{DATABASE_LABEL}={database}"
        ),
    )
    items = [i for i in listed.get("items") or [] if (i.get("spec") or {}).get("database") == database]
    return sorted(items, key=lambda i: (i["metadata"].get("creationTimestamp") or "", i["metadata"]["name"]))


def backups(conn: Connection, target: str, out: TextIO) -> int:
    database = database_of(target)
    found = records(conn, database)
    if not found:
        print(f"no backups of database/{database} in namespace {conn.namespace}", file=out)
        return 0
    rows = [("NAME", "PHASE", "TRIGGER", "SIZE", "COMPLETED", "VERSION", "OPERATION")]
    for item in found:
        spec, status = item.get("spec") or {}, item.get("status") or {}
        rows.append(
            (
                item["metadata"]["name"],
                status.get("phase") or "-",
                spec.get("trigger") or "-",
                status.get("size") or "-",
                status.get("completedAt") or "-",
                f"{spec.get('engine', '')} {spec.get('version', '')}".strip(),
                spec.get("operation") or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
    return 0
