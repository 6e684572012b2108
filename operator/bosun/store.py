"""Where operation logs and archived operation records are kept: S3 or a local directory.

One small interface, two implementations. The operator is the only one holding store
credentials: people read activity through the Kubernetes API (reports are ConfigMaps in their
namespace), so access follows RBAC and nobody is handed a key to the bucket.

S3 (boto3) takes bucket, prefix, region and an endpoint URL for S3-compatible servers; credentials
come the standard AWS ways (environment, shared files, instance or pod identity). boto3 blocks, so
every call runs in a worker thread: the event loop never waits on the network.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from bosun import metrics


class StoreUnavailable(Exception):
    """The store could not be reached or refused the request; the caller keeps its data and retries."""


class NotInStore(StoreUnavailable):
    """The object asked for is not there (a streamed read: a missing object is no answer of None)."""


class StillUnsure(StoreUnavailable):
    """A write of unknown outcome is too recent to trust a read of the store: ask again in `seconds`."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class StoreOutcomeUnknown(StoreUnavailable):
    """A write was sent but no answer came (a read timeout, a dropped connection): the store may
    still carry it out later, after a newer write of the same key, and so undo that newer write."""


class Store(Protocol):
    def url(self, key: str) -> str: ...

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def keys(self, prefix: str) -> list[str]: ...

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> int: ...

    def read_stream(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...


PART_BYTES = 8 * 2**20  # a streamed object is uploaded in parts this large (S3's least is 5 MiB)
READ_BYTES = 2**20


class LocalStore:
    """A directory, for a single operator with a volume (and for development)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def url(self, key: str) -> str:
        return (self.root / key).resolve().as_uri()

    def _write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # readers never see half a file

    async def put(self, key: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._write, key, data)
        except OSError as error:
            metrics.STORE_FAILURES.labels("put").inc()
            raise StoreUnavailable(f"cannot write {self.url(key)}: {error}") from error

    async def get(self, key: str) -> bytes | None:
        path = self.root / key
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as error:
            metrics.STORE_FAILURES.labels("get").inc()
            raise StoreUnavailable(f"cannot read {self.url(key)}: {error}") from error

    async def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix

        def walk() -> list[str]:
            if not base.exists():
                return []
            return sorted(
                str(p.relative_to(self.root))
                for p in base.rglob("*")
                if p.is_file() and not p.name.endswith(".partial")
            )

        return await asyncio.to_thread(walk)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Written as it comes, under a partial name until whole: readers never see half of it."""
        path = self.root / key
        partial = path.with_name(path.name + ".partial")
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            written = 0
            with await asyncio.to_thread(partial.open, "wb") as out:
                async for chunk in chunks:
                    await asyncio.to_thread(out.write, chunk)
                    written += len(chunk)
            await asyncio.to_thread(os.replace, partial, path)
            return written
        except OSError as error:
            metrics.STORE_FAILURES.labels("put").inc()
            raise StoreUnavailable(f"cannot write {self.url(key)}: {error}") from error
        finally:
            partial.unlink(missing_ok=True)

    async def read_stream(self, key: str) -> AsyncIterator[bytes]:
        try:
            source = await asyncio.to_thread((self.root / key).open, "rb")
        except FileNotFoundError:
            raise NotInStore(f"{self.url(key)} does not exist") from None
        with source:
            while chunk := await asyncio.to_thread(source.read, READ_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        await asyncio.to_thread((self.root / key).unlink, missing_ok=True)


class S3Store:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        # Short timeouts and no long retry loops: the caller buffers and retries on its own schedule.
        config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1, "mode": "standard"})
        self.client = client or boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    async def _call(self, what: str, work: Any, *, writes: bool = False) -> Any:
        """One request. A write that failed after it was sent (an error answer, a timeout, a dropped
        connection) may still be carried out: StoreOutcomeUnknown. Only a refused connection
        means the store never got it."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

        unsent = (EndpointConnectionError, ConnectTimeoutError)
        try:
            return await asyncio.to_thread(work)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            metrics.STORE_FAILURES.labels(what.split(" ", 1)[0]).inc()
            raise (StoreOutcomeUnknown if writes else StoreUnavailable)(f"{what}: {error}") from error
        except BotoCoreError as error:
            metrics.STORE_FAILURES.labels(what.split(" ", 1)[0]).inc()
            unknown = writes and not isinstance(error, unsent)
            raise (StoreOutcomeUnknown if unknown else StoreUnavailable)(f"{what}: {error}") from error

    async def put(self, key: str, data: bytes) -> None:
        await self._call(
            f"put {self.url(key)}",
            lambda: self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data),
            writes=True,
        )

    async def get(self, key: str) -> bytes | None:
        answer = await self._call(
            f"get {self.url(key)}", lambda: self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        )
        return None if answer is None else bytes(await asyncio.to_thread(answer["Body"].read))

    async def keys(self, prefix: str) -> list[str]:
        def listing() -> list[str]:
            found: list[str] = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                found.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents") or [])
            return sorted(found)

        return list(await self._call(f"list {self.url(prefix)}", listing) or [])

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """A multipart upload, a part each PART_BYTES: never more than a part in memory, and an
        object that appears whole or not at all (an upload that fails is aborted)."""
        where, full = self.url(key), self.prefix + key
        started = await self._call(
            f"put {where}", lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=full), writes=True
        )
        upload, buffer, written = started["UploadId"], bytearray(), 0
        parts: list[dict[str, Any]] = []

        async def send(data: bytes) -> None:
            number = len(parts) + 1
            answer = await self._call(
                f"put {where} (part {number})",
                lambda: self.client.upload_part(
                    Bucket=self.bucket, Key=full, UploadId=upload, PartNumber=number, Body=data
                ),
                writes=True,
            )
            parts.append({"ETag": answer["ETag"], "PartNumber": number})

        try:
            async for chunk in chunks:
                buffer += chunk
                written += len(chunk)
                if len(buffer) >= PART_BYTES:
                    await send(bytes(buffer))
                    buffer.clear()
            if buffer or not parts:
                await send(bytes(buffer))
            await self._call(
                f"put {where}",
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload, MultipartUpload={"Parts": parts}
                ),
                writes=True,
            )
        except BaseException:
            await asyncio.to_thread(self._abort, full, upload)
            raise
        return written

    def _abort(self, key: str, upload: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
        except Exception:  # the store will expire it; the caller's error is the one that matters
            metrics.STORE_FAILURES.labels("abort").inc()

    async def read_stream(self, key: str) -> AsyncIterator[bytes]:
        answer = await self._call(
            f"get {self.url(key)}", lambda: self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        )
        if answer is None:
            raise NotInStore(f"{self.url(key)} does not exist")
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, READ_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await self._call(
            f"delete {self.url(key)}",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key),
            writes=True,
        )


def store_from(url: str, endpoint_url: str = "", region: str = "") -> Store:
    """s3://bucket/prefix (endpoint URL for S3-compatible servers) or a directory (file:// or a path)."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        return S3Store(bucket, prefix, region=region or None, endpoint_url=endpoint_url or None)
    return LocalStore(url.removeprefix("file://"))
