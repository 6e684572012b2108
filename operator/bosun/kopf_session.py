"""Kopf's HTTP session, made by Bosun: a connection limit, and a 409 on a merge-patch tried again.

Why Bosun makes Kopf's session at all: Kopf's default has no connection limit. 10,000 Operations
created at once opened hundreds of TLS connections for their finalizers, each with a 256 KiB
buffer, and the memory stayed with the process.

Why a 409 Conflict is retried here: Kopf retries a 5xx, a 429 and a 403 itself, but a 409 on one of
its own merge-patches (its progress and last-handled annotations) fails the processing of the event
it was handling: Kopf logs "Throttling ... due to an unexpected error" and drops it, and an object
that sees no later event waits for the next re-listing. A merge-patch carries no resourceVersion,
so a 409 on it only says that the API server gave up its own retries under contention: sending it
again is what the API server would have done. The fault harness found this: one injected 409 on
Kopf's patch of a new Database, whose provision had not started 60 s later. Other writes are left
as they are: a 409 on a create is AlreadyExists, an answer; Kopf's finalizer changes are JSON
patches tested against a resourceVersion, whose conflicts Kopf handles itself; and Bosun's own
client maps its 409s itself.
"""

from __future__ import annotations

import asyncio
import logging
import warnings

import aiohttp
import kopf

from bosun.models.names import KOPF_USER_AGENT

logger = logging.getLogger(__name__)

# Kopf's own short requests (finalizers, events) share this many connections, on top of one per
# watch it holds open (4 per watched namespace: Operations, Apps, Databases, the heartbeat).
KOPF_CONNECTIONS = 32
CONFLICT_RETRIES = (0.2, 0.5, 1.0, 2.0, 4.0)  # seconds before each new try of a conflicted merge-patch
MERGE_PATCH = "application/merge-patch+json"


async def retry_merge_patch_conflicts(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """A merge-patch answered 409 is sent again, a few times; every other answer is returned as is."""
    response = await handler(request)
    if request.method != "PATCH" or request.headers.get("Content-Type", "").split(";")[0] != MERGE_PATCH:
        return response
    for delay in CONFLICT_RETRIES:
        if response.status != 409:
            return response
        logger.warning("merge-patch of %s conflicted (409): trying again in %.1fs", request.url.path, delay)
        response.release()
        await asyncio.sleep(delay)
        response = await handler(request)
    return response


def bounded(info: kopf.ConnectionInfo, *, watches: int) -> kopf.AiohttpSession:
    """Kopf's session for these credentials, as Kopf makes it, with a connection limit and retried conflicts."""
    with warnings.catch_warnings():  # as Kopf does: aiohttp warns of any BasicAuth
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="kopf")
        auth = info.as_aiohttp_basic_auth()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=KOPF_CONNECTIONS + watches, ssl=info.as_ssl_context()),
        headers={**info.as_http_headers(), "User-Agent": KOPF_USER_AGENT},
        auth=auth,
        proxy=info.proxy_url,
        trust_env=info.trust_env,
        middlewares=(retry_merge_patch_conflicts,),
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )
