"""The namespace copy of a log: chunks any log fits in, names the API server accepts, bytes back whole."""

from __future__ import annotations

import base64
import os
import re

import pytest

from bosun.models import logcopy

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


UID = "0123456789abcdef"


def chunks_of(body: bytes, operation: str = "pg-move", uid: str = UID) -> list[dict[str, object]]:
    return [logcopy.chunk_manifest("ns", operation, uid, index, data) for index, data in enumerate(logcopy.split(body))]


def test_ten_thousand_lines_and_a_100_kb_line_come_back_byte_for_byte() -> None:
    lines = [f"2026-11-26T07:00:00.000Z INFO    line {n} " + "x" * 80 for n in range(10_000)]
    body = (
        "\n".join([*lines[:5000], "2026-11-26T07:00:00.000Z INFO    " + "é" * 50_000, *lines[5000:]]) + "\n"
    ).encode()
    chunks = chunks_of(body)
    assert len(chunks) == 3  # about 1.1 MB raw: the 100 KB line crosses a chunk boundary or not, either way
    assert logcopy.assemble(reversed(chunks), "pg-move", UID) == body  # the order on the server does not matter
    assert len(logcopy.lines_of(body)) == 10_001


def test_incompressible_chunks_stay_under_the_configmap_limit() -> None:
    chunk = chunks_of(os.urandom(logcopy.CHUNK_BYTES))[0]
    encoded = chunk["binaryData"][logcopy.DATA_KEY]  # type: ignore[index]
    assert len(base64.b64decode(encoded)) < 1024 * 1024 and len(encoded) < 1024 * 1024


def test_names_and_labels_are_valid_for_any_operation_name() -> None:
    long_name = "a" * 120 + "-x." + "b" * 130  # 253 characters, the most the API server allows
    for name in ("pg-move", long_name, "x" * 199 + "-y", "x" * 199 + ".y"):
        manifest = chunks_of(b"x\n", operation=name)[0]
        meta = manifest["metadata"]
        assert SUBDOMAIN.match(meta["name"]) and len(meta["name"]) <= 253, meta["name"]  # type: ignore[index]
        assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in meta["labels"].values())  # type: ignore[index]
    assert logcopy.of_label(long_name) != logcopy.of_label(long_name + "c")


def test_a_missing_chunk_ends_the_log_there_rather_than_joining_around_it() -> None:
    body = b"a" * logcopy.CHUNK_BYTES + b"b" * 10 + b"\n"
    first, second = chunks_of(body)
    assert logcopy.assemble([second], "pg-move", UID) == b""
    assert logcopy.assemble([first], "pg-move", UID) == b"a" * logcopy.CHUNK_BYTES


def test_only_chunks_named_as_bosun_names_them_count_and_damage_is_reported() -> None:
    real, forged = chunks_of(b"real\n")[0], chunks_of(b"forged\n")[0]
    forged["metadata"]["name"] = "pg-move.log-forged-0"  # type: ignore[index]
    assert logcopy.assemble([forged, real], "pg-move", UID) == b"real\n"
    real["binaryData"] = {logcopy.DATA_KEY: "not base64 at all!"}
    with pytest.raises(logcopy.DamagedLog, match="chunk 0"):
        logcopy.assemble([real], "pg-move", UID)


def test_of_several_operations_that_bore_one_name_the_newest_is_chosen() -> None:
    old, new = chunks_of(b"old\n", uid="old-uid")[0], chunks_of(b"new\n", uid="new-uid")[0]
    old["metadata"]["creationTimestamp"] = "2026-11-20T10:00:00Z"  # type: ignore[index]
    new["metadata"]["creationTimestamp"] = "2026-11-25T10:00:00Z"  # type: ignore[index]
    assert logcopy.newest_uid([new, old]) == "new-uid"
    assert logcopy.lines_of(b"") == [] and logcopy.lines_of(b"a\n\nb\n") == ["a", "", "b"]
