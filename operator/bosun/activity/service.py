"""Keeps the activity history: archives records, writes weekly reports, removes old Operations.

Why reports are ConfigMaps in the namespace they describe: a ConfigMap lives exactly as long as its
namespace, and reading it is ordinary Kubernetes RBAC (the built-in `view` role grants it, with
Bosun's own resources aggregated into `view` by `manifests/rbac.yaml`). People therefore get their
namespaces' reports, and no other's, through the API server, and nobody but the operator holds
credentials to the store where the archived records live.

When the operator was down over a week's end, `catch_up` generates every missing or unfinished
week when it comes back; an Operation object is removed after the retention time only once its
record is in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bosun import metrics
from bosun.activity.report import (
    DIGEST,
    PART_BYTES,
    PARTS,
    OperationRecord,
    csv_digest,
    parse,
    render_parts,
    report_name,
    week_of,
    week_start,
    weeks_between,
)
from bosun.errors import PermanentError
from bosun.kube import Kube, NamespaceTerminating, NotFound
from bosun.kube_status import StatusWrites
from bosun.models import logcopy
from bosun.models.base import now as clock_now
from bosun.models.names import REPORT_FINAL, REPORT_LABEL, REPORT_OPERATIONS, REPORT_WEEK
from bosun.models.operation import Operation
from bosun.store import Store

logger = logging.getLogger(__name__)
REAPPLY_SECONDS = 300.0
FINAL = REPORT_FINAL
CSV_KEY = "activity.csv"


def archived_at(body: Mapping[str, Any]) -> str:
    """Where the operation's record was archived ('' if not yet), as only the operator records it."""
    return str((body.get("status") or {}).get("archived") or "")


class ActivityService:
    def __init__(
        self,
        kube: Kube,
        store: Store,
        *,
        retention_seconds: float,
        log_retention_seconds: float = 90 * 86400,
        clock: Callable[[], datetime] = clock_now,
        namespaces: Sequence[str] = (),
        live: Callable[[str], Iterable[Operation]] | None = None,
        part_bytes: int = PART_BYTES,
        status_writes: StatusWrites | None = None,
    ) -> None:
        self.kube = kube
        self.status_writes = status_writes or StatusWrites(kube)
        self.store = store
        self.retention = timedelta(seconds=retention_seconds)
        self.log_retention = timedelta(seconds=log_retention_seconds)
        self.clock = clock
        self.namespaces = list(namespaces)  # watched; empty: all (the operator's rights end there)
        # The unfinished Operations of a namespace as the watch shows them: this week's report
        # takes its live rows from here, not from a list of every Operation of the namespace (that
        # list, made for each report write, was the quadratic cost of a burst of archives).
        self.live = live
        self._asked: dict[tuple[str, str], int] = {}  # report refreshes asked for, per (namespace, week)
        self._covered: dict[tuple[str, str], int] = {}  # of those, how many a finished write covers
        self._report_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._stored: dict[tuple[str, str], dict[str, OperationRecord]] = {}  # records read, by store key
        # (namespace, week, part) -> digest and time of the last apply: an unchanged part is not
        # applied again for REAPPLY_SECONDS (a part deleted or edited by hand is restored then).
        self._parts_written: dict[tuple[str, str, int], tuple[str, float]] = {}
        self.part_bytes = part_bytes

    def _watched(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces

    async def _operations(self) -> list[dict[str, Any]]:
        if not self.namespaces:
            return await self.kube.list_all("Operation")
        return [body for namespace in self.namespaces for body in await self.kube.list_labelled(namespace, "Operation")]

    async def archive(self, body: Mapping[str, Any]) -> OperationRecord:
        """Store a finished operation's record (idempotent), refresh its week's report, mark it archived.

        Operations that end together share report writes (see `refresh_report`): rewriting the
        report once per archive read the whole week each time, and 1,000 operations ending
        together kept the operator busy for minutes.
        """
        record = OperationRecord.of(body)
        if archived_at(body) != self.store.url(record.key):
            await self.store.put(record.key, record.model_dump_json(by_alias=True).encode())
            await self._refresh_for_archive(record)
            # Last: `status.archived` releases the Operation (see bosun.lifecycle), so it comes after
            # everything it stands for. Status, because users cannot write it (a forged marker would
            # let retention delete an Operation that was never archived).
            await self.status_writes.patch_status(
                "Operation", record.namespace, record.name, {"archived": self.store.url(record.key)}
            )
            return record
        await self._refresh_for_archive(record)
        return record

    async def _refresh_for_archive(self, record: OperationRecord) -> None:
        """The report is derived from the stored records: one the API server refuses must not hold
        every archive of its week back (the next archive, or the hourly catch-up, writes it again)."""
        try:
            await self.refresh_report(record.namespace, record.week)
        except PermanentError as error:
            metrics.REPORT_REFUSED.inc()  # an alert can tell: `kubectl bosun activity` reads an old report
            logger.error("activity report %s/%s not written: %s", record.namespace, record.week, error)

    async def refresh_report(self, namespace: str, week: str) -> None:
        """Rewrite the week's report so that it includes everything archived before this call.

        One write at a time per report; a caller whose request a write already covers (the write
        began after the request) returns without writing. Under a burst, writes batch themselves.
        """
        key = (namespace, week)
        self._asked[key] = asked = self._asked.get(key, 0) + 1
        async with self._report_locks.setdefault(key, asyncio.Lock()):
            if self._covered.get(key, 0) >= asked:
                return
            covers = self._asked[key]
            await self.write_report(namespace, week)
            self._covered[key] = covers

    async def records(self, namespace: str, week: str) -> list[OperationRecord]:
        """Archived records of the week, and the week's Operations not archived yet.

        A stored record is final (only finished operations are archived), so it wins over a live
        row of the same operation. This week's records once read are kept (they never change): a
        rewrite lists the week's keys and reads only the new ones. This week's live rows come from
        the watch when it is wired (`live`); past weeks (a catch-up) read the Operations.
        """
        current = week_of(self.clock())
        for old in [k for k in self._stored if k[1] != current]:  # only this week's are kept
            del self._stored[old]
        stored = self._stored.setdefault((namespace, week), {}) if week == current else {}
        keys = await self.store.keys(f"records/{namespace}/{week}/")
        for key in keys:
            if key not in stored:
                data = await self.store.get(key)
                if data:
                    stored[key] = OperationRecord.model_validate_json(data)
        found = {stored[key].uid: stored[key] for key in keys if key in stored}
        if self.live is not None and week == current:
            live = [OperationRecord.of_operation(o) for o in self.live(namespace)]
        else:
            live = [OperationRecord.of(body) for body in await self.kube.list_labelled(namespace, "Operation")]
        for record in live:
            if record.created and record.week == week and record.uid not in found:
                found[record.uid] = record
        return list(found.values())

    async def write_report(self, namespace: str, week: str) -> bool:
        """(Re)write the namespace's report for the week; False if the namespace is gone."""
        records = await self.records(namespace, week)
        final = week_start(week) + timedelta(days=7) <= self.clock()
        parts = render_parts(records, self.part_bytes)
        first = {FINAL: "true" if final else "false", REPORT_OPERATIONS: str(len(records)), PARTS: str(len(parts))}
        now = time.monotonic()
        for old in [k for k, (_, at) in self._parts_written.items() if now - at > REAPPLY_SECONDS]:
            del self._parts_written[old]
        before = max((k[2] for k in self._parts_written if k[:2] == (namespace, week)), default=0)
        # The first part last: the count it carries never names a part not written yet.
        for number in range(len(parts), 0, -1):
            annotations = {
                **(first if number == 1 else {"bosun.dev/part": str(number)}),
                DIGEST: csv_digest(parts[number - 1]),
            }
            config_map = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": report_name(week, number),
                    "labels": {REPORT_LABEL: "true", REPORT_WEEK: week},
                    "annotations": annotations,
                },
                "data": {CSV_KEY: parts[number - 1]},
            }
            digest = hashlib.sha256(json.dumps(config_map, sort_keys=True).encode()).hexdigest()
            if self._parts_written.get((namespace, week, number), ("", 0.0))[0] == digest:
                continue  # applied with these bytes lately: earlier parts rarely change (rows append)
            try:
                await self.kube.apply(namespace, config_map)
            except (NotFound, NamespaceTerminating):
                for gone in [k for k in self._parts_written if k[0] == namespace]:
                    del self._parts_written[gone]
                return False
            self._parts_written[(namespace, week, number)] = (digest, now)
        for number in range(len(parts) + 1, before + 1):  # a report that shrank: no stale part left
            await self.kube.delete_config_map(namespace, report_name(week, number))
            self._parts_written.pop((namespace, week, number), None)
        return True

    async def catch_up(self) -> list[tuple[str, str]]:
        """Write every past week's report that is missing or was written before its week ended."""
        last_complete = week_of(self.clock() - timedelta(days=7))
        first_week: dict[str, str] = {}
        for key in await self.store.keys("records/"):
            parts = key.split("/")
            if len(parts) >= 4 and self._watched(parts[1]):
                first_week[parts[1]] = min(first_week.get(parts[1], parts[2]), parts[2])
        for body in await self._operations():
            record = OperationRecord.of(body)
            if record.created:
                first_week[record.namespace] = min(first_week.get(record.namespace, record.week), record.week)
        written = []
        for namespace, first in sorted(first_week.items()):
            if first > last_complete:
                continue
            try:
                for week in weeks_between(first, last_complete):
                    current = await self.kube.read(namespace, "ConfigMap", report_name(week))
                    if current and (current["metadata"].get("annotations") or {}).get(FINAL) == "true":
                        continue
                    # The week's lock, as an archive's rewrite takes: two writers of one report's
                    # parts at once could leave a first part that counts the other's rows.
                    async with self._report_locks.setdefault((namespace, week), asyncio.Lock()):
                        for part in [k for k in self._parts_written if k[:2] == (namespace, week)]:
                            del self._parts_written[part]  # missing or stale: every part is written again
                        if not await self.write_report(namespace, week):
                            break  # the namespace is gone, and its reports with it
                    written.append((namespace, week))
            except PermanentError as error:  # e.g. a namespace being deleted: the others still get theirs
                logger.warning("activity reports of namespace %s not written: %s", namespace, error)
        if written:
            logger.info("activity reports written on catch-up: %s", ", ".join(f"{n}/{w}" for n, w in written))
        return written

    async def tidy(self) -> list[str]:
        """Remove finished Operations past the retention time, once their record is archived.

        Archiving itself is each Operation's daemon's work (bosun.lifecycle): it also makes sure the
        store holds the whole log first.
        """
        removed = []
        cutoff = self.clock() - self.retention
        for body in await self._operations():
            finished = (body.get("status") or {}).get("finishedAt")
            if not finished:
                continue
            namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
            if not archived_at(body) or archived_at(body).startswith("not archived"):
                continue
            try:
                if parse(finished) <= cutoff:
                    await self.kube.delete(namespace, "Operation", name)
                    removed.append(f"{namespace}/{name}")
            except PermanentError as error:  # this one is retried next time; the others go on
                logger.warning("operation %s/%s not archived or removed: %s", namespace, name, error)
        if removed:
            logger.info("removed %d finished operations past retention (records archived)", len(removed))
        return removed + await self.tidy_logs()

    async def tidy_logs(self) -> list[str]:
        """Remove the namespace copies of logs whose last line is older than the log retention.

        The copies are what people read with `kubectl bosun logs`; the store keeps every log for
        its own retention. A log goes whole: its chunks are judged by the newest write among them
        (a long operation's first chunks are older than its last). Read as metadata only.
        """
        cutoff = self.clock() - self.log_retention
        removed = []
        for namespace in self.namespaces or [""]:
            logs: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for chunk in await self.kube.config_map_metadata(namespace, logcopy.MANAGED_BY):
                meta = chunk.get("metadata") or {}
                uid = (meta.get("labels") or {}).get(logcopy.UID_LABEL, "")
                logs.setdefault((meta.get("namespace", namespace), uid), []).append(meta)
            for (where, uid), chunks in logs.items():
                if not uid or max(written_at(c) for c in chunks) > cutoff:
                    continue
                try:
                    for meta in chunks:
                        await self.kube.delete(where, "ConfigMap", meta["name"])
                    removed.append(f"{where}/log {uid}")
                except PermanentError as error:  # retried next time; the others go on
                    logger.warning("log copy %s in %s not removed: %s", uid, where, error)
        if removed:
            logger.info("removed %d operation log copies past log retention (the store keeps them)", len(removed))
        return removed


def written_at(meta: Mapping[str, Any]) -> datetime:
    """When an object was last written: its newest managedFields entry, else its creation."""
    times = [m.get("time") for m in meta.get("managedFields") or [] if m.get("time")]
    stamp = max(times) if times else meta.get("creationTimestamp") or ""
    return parse(stamp) if stamp else datetime.max.replace(tzinfo=UTC)
