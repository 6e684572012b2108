"""How every call of the Kubernetes client is made and what its errors become.

API errors become the engine's two kinds: transient (5xx, 429, 409 conflicts, timeouts, dropped
connections: retry) and permanent (everything else), with `NotFound` and `AlreadyExists` kept
apart because steps use them to work out what is already done. `bosun.kube` (the one adapter) and
its watches (`bosun.kube_watch`) call through `call`; nothing else imports this module directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.client.rest import RESTResponse

from bosun import metrics
from bosun.errors import PermanentError, TransientError

T = TypeVar("T")

# The generated client's stubs do not declare _content_type; it is a documented keyword.
MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
APPLY_PATCH: dict[str, Any] = {"_content_type": "application/apply-patch+yaml"}
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class NotFound(PermanentError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "NotFound")


class NamespaceTerminating(PermanentError):
    """Nothing can be created in a namespace being deleted: for Bosun, as good as gone."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "NamespaceTerminating")


class AlreadyExists(PermanentError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "AlreadyExists")


class TooLarge(PermanentError):
    """The API server (or etcd behind it) refuses a write for its size: the same write never lands."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "TooLarge")


TOO_LARGE = ("request is too large", "Request entity too large", "Too long: ")


def _message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "{}")
        return str(body.get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


def map_error(error: BaseException, what: str) -> Exception:
    """Translate a client error into TransientError or PermanentError (NotFound, AlreadyExists)."""
    if isinstance(error, ApiException):
        text = f"{what}: {error.status} {_message(error)}"
        if error.status == 404:
            return NotFound(text)
        if error.status == 403 and "because it is being terminated" in (error.body or ""):
            return NamespaceTerminating(text)
        if error.status == 409 and "AlreadyExists" in (error.body or ""):
            return AlreadyExists(text)
        if error.status == 413 or any(sign in text for sign in TOO_LARGE):
            return TooLarge(text)
        if error.status in (409, 429) or (error.status or 0) >= 500:
            return TransientError(text)
        return PermanentError(text, "ApiRefused")
    if isinstance(error, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)):
        return TransientError(f"{what}: {type(error).__name__}: {error}")
    return error if isinstance(error, Exception) else RuntimeError(str(error))


READS = ("get ", "read ", "list ", "review ")  # what a call does, by the first word of its `what`
READ_RETRIES = 4  # within about 1.5 s; past that the caller's own retry (a step's, say) takes over


async def call(what: str, work: Callable[[], Awaitable[T]]) -> T:
    """Await one API call, translating its errors; a read that failed transiently is tried again.

    Reads are retried here because they are safe to repeat and a polling step makes many: one in
    ten failing (an API server under load) would otherwise fail nearly every attempt of such a
    step. Writes are not: whether a write happened is the step's to find out (it re-runs).
    """
    attempt = 0
    while True:
        try:
            return await work()
        except (TimeoutError, ApiException, aiohttp.ClientError, ConnectionError) as error:
            mapped = map_error(error, what)
            if not isinstance(mapped, (NotFound, AlreadyExists)):  # answers steps expect, not failures
                code = str(error.status or 0) if isinstance(error, ApiException) else "0"
                kind = "transient" if isinstance(mapped, TransientError) else "permanent"
                metrics.API_ERRORS.labels(code, kind).inc()
            if isinstance(mapped, TransientError) and what.startswith(READS) and attempt < READ_RETRIES:
                metrics.RETRIES.labels("read").inc()
                await asyncio.sleep(0.1 * 2**attempt)
                attempt += 1
                continue
            raise mapped from error


async def _json(response: Any) -> dict[str, Any]:
    """The body of a response asked for with `_preload_content=False`, as plain JSON.

    The generated client would build typed models from it, which Bosun turns straight back into
    dicts: under load that round trip (dates parsed, then printed) was a third of the operator's
    CPU. Errors are raised as the client raises them, so `call` maps them the same way.
    """
    data = await response.read()
    if not 200 <= response.status <= 299:
        raise ApiException(http_resp=cast(Any, RESTResponse(response, data.decode("utf-8", "replace"))))
    try:
        return cast(dict[str, Any], json.loads(data))
    except ValueError as error:  # not the API server's JSON (a proxy's page, a cut answer): try again
        raise aiohttp.ClientPayloadError(f"unreadable answer: {error}") from error
