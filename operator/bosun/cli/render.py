"""What the CLI prints, as pure functions of Operation objects: step tables, progress bars, exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bosun.models.base import parse_time
from bosun.models.names import FINISHED_PHASES

# Exit codes of `logs -f` and `status`: scripts can tell the outcomes apart.
EXIT_SUCCEEDED = 0
EXIT_ERROR = 1
EXIT_ROLLED_BACK = 3  # failed or cancelled, and the rollback put everything back
EXIT_ROLLBACK_FAILED = 4  # failed or cancelled, and something stays changed: look at it
FINISHED = FINISHED_PHASES


def exit_code(status: dict[str, Any]) -> int | None:
    """None while the operation runs."""
    phase = status.get("phase", "")
    if phase not in FINISHED:
        return None
    if phase == "Succeeded":
        return EXIT_SUCCEEDED
    rollback = (status.get("rollback") or {}).get("state", "")
    return EXIT_ROLLBACK_FAILED if rollback == "Failed" else EXIT_ROLLED_BACK


def _seconds(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    return f"{(parse_time(end) - parse_time(start)).total_seconds():.1f}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    lines = []
    for row in [headers, *rows]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
    return "\n".join(lines)


def step_table(operation: dict[str, Any]) -> str:
    """`bosun status`: the steps with timings, then the outcome and the rollback."""
    status = operation.get("status") or {}
    spec = operation.get("spec") or {}
    target = spec.get("target") or {}
    rows = [
        [
            str(n),
            s.get("name", ""),
            s.get("state", ""),
            s.get("startedAt") or "",
            _seconds(s.get("startedAt"), s.get("finishedAt")),
            str(s.get("attempts", 0)),
            s.get("message", ""),
        ]
        for n, s in enumerate(status.get("steps") or [], start=1)
    ]
    head = [
        f"Operation: {operation['metadata']['name']} ({spec.get('type', '')} of {target.get('kind', '')} "
        f"{target.get('name', '')})",
        f"Phase:     {status.get('phase') or 'Pending'} {status.get('progress', '')}".rstrip(),
    ]
    if status.get("reason"):
        head.append(f"Reason:    {status['reason']}: {status.get('message', '')}")
    body = table(["#", "STEP", "STATE", "STARTED", "TOOK", "TRIES", "MESSAGE"], rows) if rows else "(no steps yet)"
    tail = []
    rollback = status.get("rollback") or {}
    if rollback:
        tail.append(f"Rollback:  {rollback.get('state', '')}: {rollback.get('message', '')}")
        for item in rollback.get("notUndone") or []:
            tail.append(f"  not undone: {item.get('step')}: {item.get('reason')}")
    took = _seconds(status.get("startedAt"), status.get("finishedAt"))
    if took:
        tail.append(f"Took:      {took}")
    if (status.get("log") or {}).get("url"):
        tail.append(f"Log:       {status['log']['url']}")
    return "\n".join([*head, "", body, *(["", *tail] if tail else [])])


def progress_bar(status: dict[str, Any], width: int = 24) -> str:
    """[#########---------------] 3/7 stop-old Running"""
    steps = status.get("steps") or []
    done = sum(1 for s in steps if s.get("state") in ("Succeeded", "Skipped"))
    total = len(steps) or 1
    filled = round(width * done / total)
    current = next((s for s in steps if s.get("state") not in ("Succeeded", "Skipped", "Pending")), None)
    where = f" {current['name']} {current['state']}" if current else ""
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{len(steps)}{where} ({status.get('phase') or 'Pending'})"


EXIT_REFUSED = 5  # `plan`: the real operation would be refused


def _estimate(found: dict[str, Any] | None) -> str:
    found = found or {}
    if not found.get("runs"):
        return "no history"
    median, worst = float(found.get("medianSeconds") or 0), float(found.get("worstSeconds") or 0)
    sure = "" if found.get("confidence") == "high" else ", low confidence"
    return f"{median:.1f}s / {worst:.1f}s ({found['runs']} runs{sure})"


def dry_run_report(operation: dict[str, Any]) -> str:
    """`bosun plan` and `bosun status` of a dry run: what the real operation would do."""
    status = operation.get("status") or {}
    spec = operation.get("spec") or {}
    target = spec.get("target") or {}
    report = status.get("dryRun") or {}
    changed = "nothing was changed" if "dryRun" in status else "NOT planned by a dry run: see kubectl bosun status"
    head = [
        f"Dry run:   {spec.get('type', '')} of {target.get('kind', '')} {target.get('name', '')} "
        f"(operation {operation['metadata']['name']}): {changed}",
    ]
    if report.get("plan"):
        head.append(f"Plan:      {report['plan']}")
    rows = [
        [
            str(n),
            step.get("name", ""),
            (step.get("refusal") and f"REFUSED: {step['refusal']}")
            or step.get("checked")
            or step.get("description", ""),
            _estimate(step.get("expected")),
        ]
        for n, step in enumerate(report.get("steps") or [], start=1)
    ]
    body = [table(["#", "STEP", "WOULD DO, OR FOUND", "TOOK BEFORE (MEDIAN / WORST)"], rows)] if rows else []
    tail = [
        f"Duration:  {_estimate(report.get('expectedSeconds'))} (whole operation)" if rows else "",
        f"Downtime:  {report['downtime']}" if report.get("downtime") else "",
        f"Undo:      cannot be undone: {'; '.join(report['irreversible'])}"
        if report.get("irreversible")
        else ("Undo:      every step can be undone" if rows else ""),
        f"Queue:     would wait behind {report['waitsBehind']}" if report.get("waitsBehind") else "",
        *(f"Terms:     {line}" for line in report.get("terms") or []),
    ]
    refusals = report.get("refusals") or []
    verdict = f"Verdict:   REFUSED: {refusals[0]}" if refusals else "Verdict:   would run"
    if status.get("phase") not in FINISHED:
        verdict = f"Verdict:   not finished ({status.get('phase') or 'Pending'})"
    elif status.get("phase") != "Succeeded" and not refusals:
        verdict = f"Verdict:   dry run failed: {status.get('message', '')}"
    return "\n".join([*head, "", *body, "", *(t for t in tail if t), verdict])


def dry_run_exit(operation: dict[str, Any]) -> int:
    status = operation.get("status") or {}
    if (status.get("dryRun") or {}).get("refusals"):
        return EXIT_REFUSED
    return 0 if status.get("phase") == "Succeeded" else EXIT_ERROR
