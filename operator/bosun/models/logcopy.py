"""The copy of each operation log kept in its namespace: ConfigMaps that whoever may `view` can read.

Why ConfigMaps, and not an aggregated API serving `operations/log` (the README weighs both): the
built-in `view` role already reads ConfigMaps, so RBAC decides who reads a log with nothing Bosun
must authorize itself; the copy stays readable while the operator is down or gone; it lives exactly
as long as its namespace, so retention removing the Operation leaves its log in place; and a
reader never reaches the operator, so reading logs cannot slow operations down. The price is
etcd space, kept small: the log is split into chunks of at most `CHUNK_BYTES` raw bytes, each
stored gzip-compressed (a 10,000-line log takes about one tenth of its size), and a chunk is
rewritten only while it is the last one.

One module for the operator (which writes) and `kubectl bosun logs` (which reads), so the two
cannot disagree on a name, a label or the encoding. The bytes are the log store's bytes: the
reader gets back exactly what the store holds.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from bosun.models.names import GROUP

CHUNK_BYTES = 512 * 1024  # raw; compressed and base64-encoded it stays under the 1 MiB ConfigMap limit
DATA_KEY = "log.gz"
UID_LABEL = f"{GROUP}/log-uid"  # the Operation's uid: one log, however many chunks
OF_LABEL = f"{GROUP}/log-of"  # the Operation's name (hashed when too long for a label value)
CHUNK_ANNOTATION = f"{GROUP}/log-chunk"  # "n": this chunk's place
OPERATION_ANNOTATION = f"{GROUP}/operation"  # the Operation's full name
MANAGED_BY = {"app.kubernetes.io/managed-by": "bosun", "app.kubernetes.io/component": "operation-log"}


def of_label(operation: str) -> str:
    """A label value naming the operation: its name, or a digest when the name is too long for one."""
    if len(operation) <= 63:
        return operation
    return "h-" + hashlib.sha256(operation.encode()).hexdigest()[:40]


def chunk_name(operation: str, uid: str, index: int) -> str:
    head = re.sub(r"[-.]+$", "", operation[:200])
    return f"{head}.log-{uid[:8]}-{index}"


def split(body: bytes) -> list[bytes]:
    """The chunks of a log: fixed byte ranges, so a line of any length spans as many as it needs."""
    return [body[at : at + CHUNK_BYTES] for at in range(0, len(body), CHUNK_BYTES)] or [b""]


def chunk_manifest(namespace: str, operation: str, uid: str, index: int, data: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": chunk_name(operation, uid, index),
            "namespace": namespace,
            "labels": {**MANAGED_BY, UID_LABEL: uid, OF_LABEL: of_label(operation)},
            "annotations": {CHUNK_ANNOTATION: str(index), OPERATION_ANNOTATION: operation},
        },
        "binaryData": {DATA_KEY: base64.b64encode(gzip.compress(data, mtime=0)).decode()},
    }


class DamagedLog(ValueError):
    """A chunk that cannot be decoded: the copy was altered or cut."""


def _chunk_index(config_map: Mapping[str, Any]) -> int:
    annotations = (config_map.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(CHUNK_ANNOTATION, "-1"))
    except ValueError:
        return -1


def assemble(config_maps: Iterable[Mapping[str, Any]], operation: str, uid: str) -> bytes:
    """One operation's log from its chunks, up to the first missing one.

    Only ConfigMaps with the names Bosun gives the chunks count (a name is unique in a namespace,
    so no second object can stand in for a chunk); one that cannot be decoded raises DamagedLog.
    """
    by_index: dict[int, Mapping[str, Any]] = {}
    for chunk in config_maps:
        index = _chunk_index(chunk)
        if index >= 0 and (chunk.get("metadata") or {}).get("name") == chunk_name(operation, uid, index):
            by_index[index] = chunk
    body = b""
    for index in range(len(by_index)):
        if index not in by_index:
            break
        chunk = by_index[index]
        encoded = (chunk.get("binaryData") or chunk.get("binary_data") or {}).get(DATA_KEY, "")
        try:
            body += gzip.decompress(base64.b64decode(encoded, validate=True)) if encoded else b""
        except (ValueError, OSError, EOFError, zlib.error) as error:
            raise DamagedLog(f"chunk {index} of the log cannot be read: {error}") from None
    return body


def lines_of(body: bytes) -> list[str]:
    """The log's lines: the store writes each followed by a newline, and only a newline ends one."""
    text = body.decode(errors="replace")
    return text.split("\n")[:-1] if text else []


def newest_uid(config_maps: Iterable[Mapping[str, Any]]) -> str:
    """Of chunks of several operations that bore one name, the uid of the last one created."""
    first = [c for c in config_maps if _chunk_index(c) == 0]
    first.sort(key=lambda c: str((c.get("metadata") or {}).get("creationTimestamp") or ""))
    return str(((first[-1].get("metadata") or {}).get("labels") or {}).get(UID_LABEL, "")) if first else ""
