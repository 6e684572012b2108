"""The dashboard's pages, rendered on the server from the objects as the API server gives them.

Plain HTML that reads without JavaScript: a table is a table, a log is a `<pre>`, a timeline is an
inline SVG. Two small scripts only add to it: times shown in the viewer's time zone (UTC stays in
the title, and is what a reader without JavaScript sees), and a running operation's log appended
live from the server's event stream. Everything that comes from the cluster is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from bosun.models.base import parse_time
from bosun.models.names import FINISHED_PHASES, HOLD_REASONS

NONCE = "__BOSUN_NONCE__"  # the server puts each response's Content-Security-Policy nonce here
DASH = "-"
NONE = f"<span class=muted>{DASH}</span>"

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em}header a{color:#fff;text-decoration:none}
main{padding:1em 1.2em;max-width:1200px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e6eb;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#eef0f3}nav.tabs a{margin-right:1em}.Succeeded{color:#17803d}.Failed{color:#b42318}
.Cancelled{color:#8a6d00}.Running,.RollingBack,.Queued,.Pending{color:#175cd3}pre{background:#10141c;
color:#e6e9ef;padding:1em;overflow:auto;max-height:60vh}button{font:inherit;padding:.3em .9em}
.muted{color:#667085}svg text{font:11px system-ui,sans-serif}
"""

LOCAL_TIMES = """
for (const t of document.querySelectorAll('time[datetime]')) {
  const d = new Date(t.getAttribute('datetime'));
  if (!isNaN(d)) { t.title = t.textContent; t.textContent = d.toLocaleString(); }
}
"""

FOLLOW_LOG = """
const log = document.getElementById('log');
const source = new EventSource(log.dataset.events);
source.addEventListener('line', e => { log.textContent += e.data + '\\n'; log.scrollTop = log.scrollHeight; });
source.addEventListener('end', e => { source.close(); location.reload(); });
"""


def page(title: str, body: str, crumbs: Sequence[tuple[str, str]] = (), script: str = "") -> str:
    trail = " / ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for href, text in crumbs)
    scripts = f"<script nonce={NONCE}>{LOCAL_TIMES}{script}</script>"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)} · Bosun</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style></head>"
        f"<body><header><a href='/'>Bosun</a>{' / ' + trail if trail else ''}</header>"
        f"<main><h1>{escape(title)}</h1>{body}</main>{scripts}</body></html>"
    )


def moment(stamp: str | None) -> str:
    """An RFC 3339 time, in UTC for a reader without JavaScript, local for the rest."""
    if not stamp:
        return NONE
    return f'<time datetime="{escape(stamp)}">{escape(stamp.replace("T", " ").replace("Z", " UTC"))}</time>'


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (parse_time(end) - parse_time(start)).total_seconds()


def duration(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str = "nothing here yet") -> str:
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f"<p class=muted>{escape(empty)}</p>"
    return "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + f"</tr>{body}</table>"


def link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def phase(text: str) -> str:
    return f'<span class="{escape(text)}">{escape(text or DASH)}</span>'


def environments(namespaces: Sequence[str], note: str = "") -> str:
    rows = [[link(f"/ns/{quote(ns)}", ns)] for ns in namespaces]
    intro = f"<p class=muted>{escape(note)}</p>" if note else ""
    return page("Environments", intro + table(["namespace"], rows, "no namespace where you may list Apps or Databases"))


def ready(body: dict[str, Any]) -> str:
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return escape(f"{condition.get('status')} ({condition.get('reason', '')})")
    return NONE


def namespace_page(namespace: str, apps: Sequence[dict[str, Any]], databases: Sequence[dict[str, Any]]) -> str:
    def rows(kind: str, items: Sequence[dict[str, Any]]) -> list[list[str]]:
        found = []
        for item in sorted(items, key=lambda i: i["metadata"]["name"]):
            name, status = item["metadata"]["name"], item.get("status") or {}
            last = status.get("lastOperation") or {}
            latest = link(f"/ns/{quote(namespace)}/operations/{quote(last['name'])}", last["name"]) if last else DASH
            found.append(
                [
                    link(f"/ns/{quote(namespace)}/{kind}/{quote(name)}", name),
                    phase(str(status.get("phase") or "")),
                    ready(item),
                    latest + (f" ({phase(str(last.get('phase', '')))})" if last else ""),
                ]
            )
        return found

    headers = ["name", "phase", "Ready", "last operation"]
    body = (
        f"<nav class=tabs>{link(f'/ns/{quote(namespace)}/reports', 'Activity Reports')} "
        f"{link(f'/ns/{quote(namespace)}/backups', 'Backups')}</nav>"
        f"<h2>Apps</h2>{table(headers, rows('apps', apps), 'no App')}"
        f"<h2>Databases</h2>{table(headers, rows('databases', databases), 'no Database')}"
    )
    return page(namespace, body, [(f"/ns/{quote(namespace)}", namespace)])


def downtime_of(operation: dict[str, Any], downtime_steps: dict[str, Sequence[str]]) -> tuple[str, str] | None:
    """The window during which the target did not serve: the first downtime step's start to the
    last one's end (None for an operation whose table has no downtime, an App's roll-out)."""
    status = operation.get("status") or {}
    try:
        table_name = str(json.loads(status.get("plan") or "{}").get("table") or "")
    except (ValueError, AttributeError):
        return None
    names = set(downtime_steps.get(table_name, ()))
    spans = [s for s in status.get("steps") or [] if s.get("name") in names and s.get("startedAt")]
    if not spans:
        return None
    ends = [s.get("finishedAt") or s.get("undoFinishedAt") or "" for s in spans]
    return min(s["startedAt"] for s in spans), max(ends) if all(ends) else ""


def activity_rows(
    namespace: str, operations: Sequence[dict[str, Any]], downtime_steps: dict[str, Sequence[str]]
) -> list[list[str]]:
    rows = []
    for op in operations:
        meta, status = op["metadata"], op.get("status") or {}
        window = downtime_of(op, downtime_steps)
        down = duration(seconds_between(*window)) if window and window[1] else (DASH if not window else "running")
        who = (status.get("initiator") or {}).get("username") or (meta.get("annotations") or {}).get(
            "bosun.dev/created-by", ""
        )
        rows.append(
            [
                link(f"/ns/{quote(namespace)}/operations/{quote(meta['name'])}", meta["name"]),
                escape(str((op.get("spec") or {}).get("type", ""))),
                phase(str(status.get("phase") or "Pending"))
                + (f" <span class=muted>{escape(waiting_words(status))}</span>" if waiting_words(status) else ""),
                escape(who or DASH),
                moment(meta.get("creationTimestamp")),
                duration(seconds_between(status.get("startedAt"), status.get("finishedAt"))),
                down,
                escape(str((status.get("rollback") or {}).get("state") or DASH)),
            ]
        )
    return rows


def target_page(
    namespace: str,
    kind: str,
    body: dict[str, Any],
    operations: Sequence[dict[str, Any]],
    downtime_steps: dict[str, Sequence[str]],
    page_number: int,
    pages: int,
    token: str = "",
    backups: Sequence[dict[str, Any]] | str = (),
) -> str:
    """An App's or a Database's page; a Database's lists its `backups` (or says why it cannot)."""
    name, status = body["metadata"]["name"], body.get("status") or {}
    facts = [
        ["phase", phase(str(status.get("phase") or ""))],
        ["Ready", ready(body)],
        *([["image", escape(str(status.get("image")))]] if status.get("image") else []),
        *([["node", escape(str(status.get("node")))]] if status.get("node") else []),
        *([["endpoint", escape(str(status.get("endpoint")))]] if status.get("endpoint") else []),
        *(
            [["last move's downtime", escape(f"{status['lastMoveDowntimeSeconds']} s")]]
            if status.get("lastMoveDowntimeSeconds") is not None
            else []
        ),
    ]
    base = f"/ns/{quote(namespace)}/{kind}/{quote(name)}"
    pager = " ".join(
        link(f"{base}?page={n}", f"{n}") if n != page_number else f"<b>{n}</b>" for n in range(1, pages + 1)
    )
    headers = ["operation", "type", "phase", "started by", "created", "took", "downtime", "rollback"]
    activity = table(headers, activity_rows(namespace, operations, downtime_steps), "no operation yet")
    editable = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {"name": name, "namespace": namespace},
        "spec": body.get("spec") or {},
    }
    plan_form = (
        f'<h2>Plan an edit</h2><form method=post action="{base}/plan">'
        f'<input type=hidden name=token value="{escape(token)}">'
        f"<textarea name=manifest rows=12 cols=100>{escape(yaml_text(editable))}</textarea><br>"
        "<button>Plan</button> <span class=muted>a dry run, as <code>kubectl bosun plan -f</code>: "
        "nothing changes</span></form>"
    )
    body_html = (
        table(["", ""], facts)
        + "<h2>Activity</h2><p class=muted>Operations, newest first.</p>"
        + activity
        + (f"<p>Page {pager}</p>" if pages > 1 else "")
        + (backups_section(namespace, backups) if kind == "databases" else "")
        + plan_form
    )
    title = f"{'App' if kind == 'apps' else 'Database'} {name}"
    return page(title, body_html, [(f"/ns/{quote(namespace)}", namespace), (base, name)])


def timeline(operation: dict[str, Any], window: tuple[str, str] | None, now: datetime) -> str:
    """The steps as bars on one time axis (their undo beside them), the downtime window shaded."""
    status = operation.get("status") or {}
    steps = status.get("steps") or []
    times = [parse_time(t) for s in steps for t in (s.get("startedAt"), s.get("undoStartedAt")) if t]
    if not times:
        return "<p class=muted>no step has started yet</p>"
    begin = min(times)
    ends = [parse_time(t) for s in steps for t in (s.get("finishedAt"), s.get("undoFinishedAt")) if t]
    end = max([*ends, *times]) if status.get("phase") in FINISHED_PHASES else max([now, *ends, *times])
    span = max((end - begin).total_seconds(), 1.0)
    width, label, row = 900, 150, 22
    scale = (width - label - 10) / span

    def x(stamp: str | None, fallback: datetime) -> float:
        moment_ = parse_time(stamp) if stamp else fallback
        return label + max(0.0, (moment_ - begin).total_seconds()) * scale

    parts = []
    if window:
        left, right = x(window[0], end), x(window[1] or None, end)
        parts.append(
            f'<rect x="{left:.1f}" y="0" width="{max(right - left, 1):.1f}" height="{row * len(steps) + 6}" '
            f'fill="#fde2e1"><title>downtime</title></rect>'
        )
    for i, step in enumerate(steps):
        y = i * row + 4
        parts.append(f'<text x="0" y="{y + 13}">{escape(step.get("name", ""))}</text>')
        if step.get("startedAt"):
            left, right = x(step["startedAt"], end), x(step.get("finishedAt"), end)
            took = seconds_between(step["startedAt"], step.get("finishedAt"))
            tip = f"{step.get('name')}: {step.get('state')}, {'' if took is None else f'{took:.0f} s'}"
            parts.append(
                f'<rect x="{left:.1f}" y="{y}" width="{max(right - left, 2):.1f}" height="14" '
                f'fill="{"#b42318" if step.get("state") == "Failed" else "#2e6fdb"}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        if step.get("undoStartedAt"):
            left, right = x(step["undoStartedAt"], end), x(step.get("undoFinishedAt"), end)
            parts.append(
                f'<rect x="{left:.1f}" y="{y + 8}" width="{max(right - left, 2):.1f}" height="6" fill="#8a6d00">'
                f"<title>{escape(step.get('name', ''))}: undone</title></rect>"
            )
    height = row * len(steps) + 24
    axis = f'<text x="{label}" y="{height - 4}">0 s</text><text x="{width - 60}" y="{height - 4}">{span:.0f} s</text>'
    return (
        f'<svg role="img" aria-label="timeline of the steps" width="100%" viewBox="0 0 {width} {height}">'
        + "".join(parts)
        + axis
        + "</svg><p class=muted>Blue: a step's run; brown: its undo; shaded red: the downtime.</p>"
    )


def waiting_words(status: dict[str, Any]) -> str:
    """`WaitingForWindow until 2026-12-13T01:00:00Z`, for an operation held before its first step."""
    reason = str(status.get("reason") or "")
    if status.get("phase") != "Pending" or reason not in HOLD_REASONS:
        return ""
    return reason + (f" until {status['startsAt']}" if status.get("startsAt") else "")


def terms_facts(status: dict[str, Any]) -> list[list[str]]:
    """The terms the operation ran under: its wait, downtime budget, approval and override."""
    rows = []
    if waiting_words(status):
        rows.append(["waiting", escape(waiting_words(status))])
    downtime = status.get("downtime") or {}
    if downtime.get("budgetSeconds") is not None or downtime.get("predictedSeconds") is not None:
        figures = [
            f"budget {downtime['budgetSeconds']} s ({downtime.get('budgetFrom', '')})"
            if downtime.get("budgetSeconds") is not None
            else "no budget",
            f"predicted up to {downtime['predictedSeconds']} s"
            if downtime.get("predictedSeconds") is not None
            else "no prediction (no history)",
        ]
        if downtime.get("measuredSeconds") is not None:
            figures.append(f"measured {downtime['measuredSeconds']} s")
        rows.append(["downtime terms", escape(", ".join(figures))])
    approval = status.get("approval") or {}
    if approval.get("plan"):
        given = f"approved by {approval['approvedBy']}" if approval.get("approvedBy") else "awaiting approval"
        rows.append(["approval", escape(f"plan {approval['plan']}: {given}")])
    override = status.get("override") or {}
    if override.get("waived"):
        waived = " and ".join(override["waived"])
        rows.append(
            ["override", escape(f"{waived} waived by {override.get('by') or DASH}: {override.get('reason', '')}")]
        )
    return rows


def operation_page(
    namespace: str,
    operation: dict[str, Any],
    lines: Sequence[str],
    window: tuple[str, str] | None,
    now: datetime,
    cancel_token: str | None,
) -> str:
    meta, spec, status = operation["metadata"], operation.get("spec") or {}, operation.get("status") or {}
    name = meta["name"]
    target = spec.get("target") or {}
    plural = "apps" if target.get("kind") == "App" else "databases"
    base = f"/ns/{quote(namespace)}/operations/{quote(name)}"
    rollback = status.get("rollback") or {}
    kept = [[escape(k.get("step", "")), escape(k.get("reason", ""))] for k in rollback.get("notUndone") or []]
    facts = [
        ["type", escape(str(spec.get("type", "")))],
        ["target", link(f"/ns/{quote(namespace)}/{plural}/{quote(target.get('name', ''))}", target.get("name", ""))],
        ["phase", phase(str(status.get("phase") or "Pending"))],
        ["progress", escape(str(status.get("progress") or DASH))],
        ["message", escape(str(status.get("message") or ""))],
        ["started by", escape(str((status.get("initiator") or {}).get("username") or DASH))],
        ["created", moment(meta.get("creationTimestamp"))],
        ["started", moment(status.get("startedAt"))],
        ["finished", moment(status.get("finishedAt"))],
        ["downtime", duration(seconds_between(*window)) if window and window[1] else DASH],
        ["rollback", escape(str(rollback.get("state") or DASH)) + (f" : {escape(rollback['message'])}"
                                                                    if rollback.get("message") else "")],
    ]  # fmt: skip
    facts += terms_facts(status)
    running = status.get("phase") not in FINISHED_PHASES
    cancel = ""
    if running and cancel_token is not None:
        cancel = (
            f'<form method=post action="{base}/cancel"><input type=hidden name=token value="{escape(cancel_token)}">'
            "<button>Cancel</button> <span class=muted>it stops and rolls back what it changed</span></form>"
        )
    steps = table(
        ["#", "step", "state", "took", "message"],
        [
            [
                str(i + 1),
                escape(s.get("name", "")),
                phase(str(s.get("state", ""))),
                duration(seconds_between(s.get("startedAt"), s.get("finishedAt"))),
                escape(str(s.get("message", ""))),
            ]
            for i, s in enumerate(status.get("steps") or [])
        ],
    )
    events = f' data-events="{base}/events?from={len(lines)}"' if running else ""  # the stream sends what follows
    body = (
        cancel
        + table(["", ""], facts)
        + ("<h2>Not undone</h2>" + table(["step", "why"], kept) if kept else "")
        + "<h2>Timeline</h2>"
        + timeline(operation, window, now)
        + "<h2>Steps</h2>"
        + steps
        + f"<h2>Log</h2><p>{link(f'{base}/log', 'Download log')}</p>"
        + f"<pre id=log{events}>{escape(chr(10).join(lines))}\n</pre>"
    )
    crumbs = [(f"/ns/{quote(namespace)}", namespace), (base, name)]
    return page(f"Operation {name}", body, crumbs, FOLLOW_LOG if running else "")


def yaml_text(document: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(document, sort_keys=False))


def plan_result(namespace: str, kind: str, name: str, said: str, code: int) -> str:
    verdict = {0: "would run", 5: "would be refused"}.get(code, f"could not be planned (exit {code})")
    base = f"/ns/{quote(namespace)}/{kind}/{quote(name)}"
    body = f"<p>The edit {escape(verdict)}.</p><pre>{escape(said)}</pre><p>{link(base, 'back')}</p>"
    return page(f"Plan for {name}", body, [(f"/ns/{quote(namespace)}", namespace), (base, name)])


def reports_page(namespace: str, weeks: Sequence[str]) -> str:
    rows = [[escape(w), link(f"/ns/{quote(namespace)}/reports/{quote(w)}.csv", "download CSV")] for w in weeks]
    body = "<p class=muted>Every operation created that week, deleted Apps and Databases included.</p>" + table(
        ["week", ""], rows, "no activity report yet"
    )
    return page("Activity Reports", body, [(f"/ns/{quote(namespace)}", namespace)])


BACKUP_HEADERS = ["backup", "database", "phase", "trigger", "size", "completed", "version", "operation"]


def backup_rows(namespace: str, backups: Sequence[dict[str, Any]], live: set[str] | None = None) -> list[list[str]]:
    """Records newest first; with `live` (the uids of the Databases there now), a record whose
    Database is gone says so: its backups outlive it, and a restore can still start from them."""
    rows = []
    ordered = sorted(backups, key=lambda b: (b["metadata"].get("creationTimestamp") or "", b["metadata"]["name"]))
    for record in reversed(ordered):
        spec, status = record.get("spec") or {}, record.get("status") or {}
        database = escape(str(spec.get("database") or ""))
        if live is not None and spec.get("databaseUid") not in live:
            database += " <span class=muted>(deleted)</span>"
        operation = str(spec.get("operation") or "")
        said = f" {escape(str(status['message']))}" if status.get("message") else ""
        rows.append(
            [
                escape(record["metadata"]["name"]),
                database,
                phase(str(status.get("phase") or "")) + said,
                escape(str(spec.get("trigger") or "")),
                escape(str(status.get("size") or DASH)),
                moment(status.get("completedAt")),
                escape(f"{spec.get('engine', '')} {spec.get('version', '')}".strip()),
                link(f"/ns/{quote(namespace)}/operations/{quote(operation)}", operation) if operation else DASH,
            ]
        )
    return rows


def backups_section(namespace: str, backups: Sequence[dict[str, Any]] | str) -> str:
    if isinstance(backups, str):  # why they cannot be shown
        return f"<h2>Backups</h2><p class=muted>{escape(backups)}</p>"
    return (
        "<h2>Backups</h2><p class=muted>Newest first; restore one into a new Database with "
        "<code>spec.source.backup</code>.</p>" + table(BACKUP_HEADERS, backup_rows(namespace, backups), "no backup yet")
    )


def backups_page(namespace: str, backups: Sequence[dict[str, Any]], live: set[str]) -> str:
    body = (
        "<p class=muted>Every backup record of the namespace, newest first, those of deleted Databases "
        "included (records outlive their Database until deleted or pruned by its retention).</p>"
        + table(BACKUP_HEADERS, backup_rows(namespace, backups, live), "no backup yet")
    )
    return page("Backups", body, [(f"/ns/{quote(namespace)}", namespace)])


def forbidden_page(missing: str) -> str:
    """What a person without access sees: the right they lack, and nothing about what is there."""
    body = f"<p>You may not {escape(missing)}.</p><p class=muted>Ask for that right (a Role or RoleBinding).</p>"
    return page("403", body)


def error_page(status: int, message: str) -> str:
    return page(f"{status}", f"<p>{escape(message)}</p>")
