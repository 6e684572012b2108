"""The one adapter around the asynchronous Kubernetes client.

Nothing else in Bosun imports `kubernetes_asyncio` (an import-linter contract keeps it so). Here
API errors become the engine's two kinds: transient (5xx, 429, 409 conflicts, timeouts, dropped
connections: retry) and permanent (everything else), with `NotFound` and `AlreadyExists` kept
apart because steps use them to work out what is already done.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
import urllib.request
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.client.rest import RESTResponse

from bosun import metrics
from bosun.errors import PermanentError, TransientError
from bosun.models.base import GROUP, VERSION
from bosun.models.base import now as clock_now
from bosun.models.names import PLURALS, USER_AGENT

T = TypeVar("T")
logger = logging.getLogger(__name__)

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


def _without_proxy_lookups(api: client.ApiClient) -> client.ApiClient:
    """Stop the HTTP session from reading proxy settings and ~/.netrc again for every request.

    The generated client always asks aiohttp to trust the environment, which costs a netrc lookup
    per request (a tenth of the operator's CPU under load). When no proxy is configured there is
    nothing to find, so the lookup is switched off; with one, it stays as it was.
    """
    session: Any = getattr(api.rest_client, "pool_manager", None)
    if not urllib.request.getproxies() and hasattr(session, "_trust_env"):
        session._trust_env = False  # aiohttp has no public setter
    api.user_agent = USER_AGENT  # so that an audit log tells Bosun's requests apart
    return api


class Kube:
    """Typed helpers over one shared ApiClient."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.events = client.EventsV1Api(api)
        self._watch_api: client.ApiClient | None = None
        self._shared: dict[tuple[str, str, str], Shared] = {}

    @property
    def watch_api(self) -> client.ApiClient:
        """A client for watches only, with no connection limit.

        A watch holds its connection for up to a minute, and the shared client has 100: with 200
        roll-outs each watching two sets, every other request of the operator queued behind the
        watches (a two-request step timed out after 30 s). Watches get connections of their own.
        """
        if self._watch_api is None:
            configuration = copy.copy(self.api.configuration)
            configuration.connection_pool_maxsize = 0  # aiohttp: no limit
            self._watch_api = _without_proxy_lookups(client.ApiClient(configuration))
        return self._watch_api

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> Kube:
        if kubeconfig is None:
            with contextlib.suppress(config.ConfigException):
                config.load_incluster_config()  # type: ignore[no-untyped-call]
                return cls(_without_proxy_lookups(client.ApiClient()))
        await config.load_kube_config(config_file=kubeconfig, context=context)
        return cls(_without_proxy_lookups(client.ApiClient()))

    async def close(self) -> None:
        for shared in list(self._shared.values()):
            shared.stop()
        await self.api.close()
        if self._watch_api is not None:
            await self._watch_api.close()

    async def whoami(self) -> str:
        """The user name the API server knows this client as (SelfSubjectReview); '' if unknown."""
        auth = client.AuthenticationV1Api(self.api)
        try:
            review = await call(
                "review own identity", lambda: auth.create_self_subject_review(client.V1SelfSubjectReview())
            )
        except (PermanentError, TransientError):
            return ""
        info = review.status.user_info if review.status else None
        return str(info.username or "") if info else ""

    async def _raw(self, response: Awaitable[Any]) -> dict[str, Any]:
        return await _json(await response)

    # Bosun's own resources ----------------------------------------------------------------
    # One vocabulary for every kind: `read`, `create`, `create_object`, `patch_object`, `delete`,
    # `list_labelled` (namespace first, then kind) reach App, Database and Operation through the
    # custom-objects API and everything else through its typed API.

    async def _own(self, verb: str, kind: str, namespace: str, name: str, *args: Any, **kwargs: Any) -> Any:
        """One call of the custom-objects API on a Bosun kind (`verb`: get, list, create, patch, delete)."""
        method = getattr(self.custom, f"{verb}_namespaced_custom_object")
        what = f"{verb} {kind} {namespace}/{name}" if name else f"{verb} {kind} in {namespace}"
        return await call(what, lambda: method(GROUP, VERSION, namespace, PLURALS[kind], *args, **kwargs))

    async def list_all(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a Bosun kind, in every namespace."""
        result = await call(
            f"list {kind} in all namespaces",
            lambda: self.custom.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind]),
        )
        return list(result.get("items", []))

    # core ---------------------------------------------------------------------------------

    async def create_config_map(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)
        result = await call(
            f"create ConfigMap {namespace}/{name}", lambda: self.core.create_namespaced_config_map(namespace, body)
        )
        return dict(self.api.sanitize_for_serialization(result))

    async def read_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result = await call(
                f"read ConfigMap {namespace}/{name}", lambda: self.core.read_namespaced_config_map(name, namespace)
            )
        except NotFound:
            return None
        return dict(self.api.sanitize_for_serialization(result))

    async def replace_config_map(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a ConfigMap; its resourceVersion makes this fail (409: retry) if it changed meanwhile."""
        name = body["metadata"]["name"]
        result = await call(
            f"replace ConfigMap {namespace}/{name}",
            lambda: self.core.replace_namespaced_config_map(name, namespace, cast(Any, body)),
        )
        return dict(self.api.sanitize_for_serialization(result))

    async def delete_config_map(self, namespace: str, name: str) -> None:
        with contextlib.suppress(NotFound):
            await call(
                f"delete ConfigMap {namespace}/{name}",
                lambda: self.core.delete_namespaced_config_map(name, namespace),
            )

    async def emit_event(
        self, involved: dict[str, Any], *, reason: str, message: str, warning: bool = False, action: str = "Operate"
    ) -> None:
        """Record a Kubernetes Event on an object (best effort: Events are never the only record)."""
        meta = involved["metadata"]
        now = clock_now()
        body = client.EventsV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta['name'][:200]}.{uuid.uuid4().hex[:16]}", namespace=meta["namespace"]
            ),
            event_time=now,
            action=action,
            reason=reason,
            note=message[:1024],
            type="Warning" if warning else "Normal",
            reporting_controller="bosun.dev/operator",
            reporting_instance="bosun",
            regarding=client.V1ObjectReference(
                api_version=involved.get("apiVersion"),
                kind=involved.get("kind"),
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
            ),
        )
        try:
            await call(
                "emit event",
                lambda: self._raw(self.events.create_namespaced_event(meta["namespace"], body, _preload_content=False)),
            )
        except NamespaceTerminating:
            pass  # the namespace, and its events, are going
        except (TransientError, PermanentError) as error:
            logger.warning("could not record an event on %s %s: %s", involved.get("kind"), meta["name"], error)

    # workloads --------------------------------------------------------------------------------

    def _typed(self, kind: str, api: client.ApiClient | None = None) -> tuple[Any, str]:
        """The typed API and method suffix for a workload kind (on `api`, else the shared client)."""
        api = api or self.api
        core = client.CoreV1Api(api)
        apis = {
            "Deployment": (client.AppsV1Api(api), "deployment"),
            "Service": (core, "service"),
            "PodDisruptionBudget": (client.PolicyV1Api(api), "pod_disruption_budget"),
            "Job": (client.BatchV1Api(api), "job"),
            "Pod": (core, "pod"),
            "PersistentVolumeClaim": (core, "persistent_volume_claim"),
            "Secret": (core, "secret"),
            "ConfigMap": (core, "config_map"),
            "Lease": (client.CoordinationV1Api(api), "lease"),
        }
        if kind not in apis:
            raise PermanentError(f"Bosun does not manage {kind} objects", "InternalError")
        return apis[kind]

    async def apply(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as field manager `bosun` (forcing: Bosun owns these objects)."""
        api, suffix = self._typed(manifest["kind"])
        name = manifest["metadata"]["name"]
        method = getattr(api, f"patch_namespaced_{suffix}")
        return await call(
            f"apply {manifest['kind']} {namespace}/{name}",
            lambda: self._raw(
                method(
                    name, namespace, manifest, field_manager="bosun", force=True, _preload_content=False, **APPLY_PATCH
                )
            ),
        )

    async def read(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        if kind in PLURALS:
            try:
                return cast(dict[str, Any], await self._own("get", kind, namespace, name, name))
            except NotFound:
                return None
        api, suffix = self._typed(kind)
        method = getattr(api, f"read_namespaced_{suffix}")
        try:
            return await call(
                f"read {kind} {namespace}/{name}", lambda: self._raw(method(name, namespace, _preload_content=False))
            )
        except NotFound:
            return None

    async def delete(self, namespace: str, kind: str, name: str) -> None:
        if kind in PLURALS:
            with contextlib.suppress(NotFound):
                await self._own("delete", kind, namespace, name, name)
            return
        api, suffix = self._typed(kind)
        method = getattr(api, f"delete_namespaced_{suffix}")
        with contextlib.suppress(NotFound):
            await call(
                f"delete {kind} {namespace}/{name}",
                lambda: method(name, namespace, propagation_policy="Background"),
            )

    async def replace(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Replace an object; its resourceVersion makes this fail (409: TransientError) if it changed."""
        api, suffix = self._typed(manifest["kind"])
        name = manifest["metadata"]["name"]
        method = getattr(api, f"replace_namespaced_{suffix}")
        return await call(
            f"replace {manifest['kind']} {namespace}/{name}",
            lambda: self._raw(method(name, namespace, manifest, _preload_content=False)),
        )

    async def patch_object(self, namespace: str, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of fields Bosun does not apply (a claim's size, an Operation's label)."""
        if kind in PLURALS:
            return cast(dict[str, Any], await self._own("patch", kind, namespace, name, name, patch, **MERGE_PATCH))
        api, suffix = self._typed(kind)
        method = getattr(api, f"patch_namespaced_{suffix}")
        return await call(
            f"patch {kind} {namespace}/{name}",
            lambda: self._raw(method(name, namespace, patch, _preload_content=False, **MERGE_PATCH)),
        )

    def watched(self, namespace: str, kind: str, *, labels: dict[str, str] | None = None, name: str = "") -> Watched:
        """The objects of a workload kind matching `labels` (or the one called `name`), kept
        current by one list and a watch. Use it as `async with`."""
        api, suffix = self._typed(kind, self.watch_api)
        selectors: dict[str, str] = {}
        if labels:
            selectors["label_selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if name:
            selectors["field_selector"] = f"metadata.name={name}"
        return Watched(self, f"{kind} in {namespace}", getattr(api, f"list_namespaced_{suffix}"), namespace, selectors)

    def shared(
        self, namespace: str, kind: str, *, index: str, value: str, labels: dict[str, str], linger: float = 30.0
    ) -> SharedView:
        """The objects of a workload kind in `namespace` labelled `labels` whose `index` label is
        `value`, from one list and watch per (namespace, kind, labels) shared by every waiter.
        Use it as `async with`; the watch stops `linger` seconds after its last waiter leaves."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        key = (namespace, kind, f"{selector};{index}")
        shared = self._shared.get(key)
        if shared is None or shared.stopped:
            shared = self._shared[key] = Shared(self, kind, namespace, labels, index, linger=linger)
            shared.on_stop = lambda: self._shared.pop(key, None) if self._shared.get(key) is shared else None
        return SharedView(shared, value)

    async def pod_states(self, namespace: str, name: str, every: float) -> AsyncGenerator[dict[str, Any] | None]:
        """The pod now (None while it does not exist), again after each change, and at least every
        `every` seconds: one watch by name instead of a read per poll (a step waiting 20 s for an
        image made 80 reads). A read that fails for good raises here. Use it under
        `contextlib.aclosing`.
        """
        async with self.watched(namespace, "Pod", name=name) as pods:
            while True:
                yield pods.objects.get(name)
                await pods.changed(every)

    async def list_labelled(
        self, namespace: str, kind: str, selector: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        label_selector = ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items()))
        if kind in PLURALS:
            listed = await self._own("list", kind, namespace, "", label_selector=label_selector)
            return list(listed.get("items") or [])
        api, suffix = self._typed(kind)
        method = getattr(api, f"list_namespaced_{suffix}")
        result = await call(
            f"list {kind} in {namespace}",
            lambda: self._raw(method(namespace, label_selector=label_selector, _preload_content=False)),
        )
        return list(result.get("items") or [])

    async def config_map_metadata(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        """The labelled ConfigMaps of a namespace ('' for every namespace) without their data: names,
        labels and write times (PartialObjectMetadata), a page of 500 at a time. Log copies hold up
        to 1 MiB each, and retention needs none of their bytes."""
        path = f"/api/v1/namespaces/{namespace}/configmaps" if namespace else "/api/v1/configmaps"
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query: list[tuple[str, Any]] = [("labelSelector", labels), ("limit", 500)]
            if token:
                query.append(("continue", token))
            page = await call(
                f"list ConfigMap metadata in {namespace or 'all namespaces'}", self._metadata_page(path, query)
            )
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def _metadata_page(self, path: str, query: list[tuple[str, Any]]) -> Callable[[], Awaitable[dict[str, Any]]]:
        def ask() -> Awaitable[dict[str, Any]]:
            return self._raw(
                self.api.call_api(
                    path,
                    "GET",
                    query_params=query,
                    header_params={"Accept": METADATA_LIST},
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _return_http_data_only=True,
                )
            )

        return ask

    async def list_pods(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        result = await call(
            f"list pods in {namespace}",
            lambda: self._raw(
                self.core.list_namespaced_pod(namespace, label_selector=label_selector, _preload_content=False)
            ),
        )
        return list(result.get("items") or [])

    async def create(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create an object; AlreadyExists when one of its name is there."""
        kind = manifest["kind"]
        if kind in PLURALS:
            return cast(
                dict[str, Any], await self._own("create", kind, namespace, manifest["metadata"]["name"], manifest)
            )
        api, suffix = self._typed(kind)
        method = getattr(api, f"create_namespaced_{suffix}")
        return await call(
            f"create {kind} {namespace}/{manifest['metadata']['name']}",
            lambda: self._raw(method(namespace, manifest, _preload_content=False)),
        )

    async def create_object(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Create an object; None if it already exists (creation is the side effect to do once)."""
        try:
            return await self.create(namespace, manifest)
        except AlreadyExists:
            return None

    async def nodes(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The nodes with these labels: always a selected list, never every node of the cluster."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        result = await call(
            f"list nodes {selector}",
            lambda: self._raw(self.core.list_node(label_selector=selector, _preload_content=False)),
        )
        return list(result.get("items") or [])

    async def node(self, name: str) -> dict[str, Any] | None:
        try:
            return await call(f"read node {name}", lambda: self._raw(self.core.read_node(name, _preload_content=False)))
        except NotFound:
            return None

    async def pods_on(self, node: str) -> list[dict[str, Any]]:
        result = await call(
            f"list pods on {node}",
            lambda: self._raw(
                self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}", _preload_content=False)
            ),
        )
        return list(result.get("items") or [])

    async def persistent_volume(self, name: str) -> dict[str, Any] | None:
        try:
            return await call(
                f"read PV {name}", lambda: self._raw(self.core.read_persistent_volume(name, _preload_content=False))
            )
        except NotFound:
            return None

    async def patch_persistent_volume(self, name: str, patch: dict[str, Any]) -> None:
        await call(f"patch PV {name}", lambda: self.core.patch_persistent_volume(name, patch, **MERGE_PATCH))

    async def storage_class(self, name: str) -> dict[str, Any] | None:
        storage = client.StorageV1Api(self.api)
        try:
            return await call(
                f"read StorageClass {name}", lambda: self._raw(storage.read_storage_class(name, _preload_content=False))
            )
        except NotFound:
            return None

    async def volume_attachment(self, name: str) -> dict[str, Any] | None:
        storage = client.StorageV1Api(self.api)
        try:
            return await call(
                f"read VolumeAttachment {name}",
                lambda: self._raw(storage.read_volume_attachment(name, _preload_content=False)),
            )
        except NotFound:
            return None

    async def csi_driver(self, name: str) -> dict[str, Any] | None:
        storage = client.StorageV1Api(self.api)
        try:
            return await call(
                f"read CSIDriver {name}", lambda: self._raw(storage.read_csi_driver(name, _preload_content=False))
            )
        except NotFound:
            return None

    async def events_of(
        self, namespace: str, kind: str, name: str, *, uid: str = "", reason: str = ""
    ) -> list[dict[str, Any]]:
        """The Events about one object, by field selector (core/v1: what controllers report). With
        `uid`, only this object's, not those of an earlier object of the same name."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        selector += f",involvedObject.uid={uid}" if uid else ""
        selector += f",reason={reason}" if reason else ""
        result = await call(
            f"list Events of {kind} {namespace}/{name}",
            lambda: self._raw(
                self.core.list_namespaced_event(namespace, field_selector=selector, _preload_content=False)
            ),
        )
        return list(result.get("items") or [])

    async def volume_attachments(self, volume: str) -> list[dict[str, Any]]:
        """Every attachment of the volume. The API has no selector for a VolumeAttachment's volume,
        so this lists them all: only for a volume that is not CSI, whose attachments have no
        name to read them by, and when the controller says another node holds the volume."""
        storage = client.StorageV1Api(self.api)
        result = await call(
            "list VolumeAttachments", lambda: self._raw(storage.list_volume_attachment(_preload_content=False))
        )
        items = list(result.get("items") or [])
        return [v for v in items if (v["spec"].get("source") or {}).get("persistentVolumeName") == volume]

    async def pod_log(self, namespace: str, name: str, tail_lines: int = 200) -> str:
        """The last lines a pod printed (raises PermanentError/TransientError when unavailable)."""
        return str(
            await call(
                f"read log of pod {namespace}/{name}",
                lambda: self.core.read_namespaced_pod_log(name, namespace, tail_lines=tail_lines),
            )
        )

    async def healthz(self, timeout: float = 5.0) -> bool:
        try:
            await asyncio.wait_for(call("version", lambda: client.VersionApi(self.api).get_code()), timeout)
            return True
        except (TransientError, PermanentError, TimeoutError):
            return False


@contextlib.asynccontextmanager
async def connected(kubeconfig: str | None = None, context: str | None = None) -> AsyncIterator[Kube]:
    kube = await Kube.connect(kubeconfig, context)
    try:
        yield kube
    finally:
        await kube.close()


class Watched:
    """Objects kept current by a list and then a watch, so that a step waiting on them reads the
    API server once, not once per poll. The watch is reopened from a fresh list whenever it ends
    (the server closes it every minute, or it drops); a list that fails for good is raised to the
    waiter by `changed`.
    """

    def __init__(self, kube: Kube, what: str, lister: Callable[..., Any], namespace: str, selectors: dict[str, str]):
        self.kube = kube
        self.what = what
        self.lister = lister
        self.namespace = namespace
        self.selectors = selectors
        self.objects: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()
        self._failed: Exception | None = None
        self._task: asyncio.Task[None] | None = None

    async def _list(self) -> str:
        listed = await call(
            f"list {self.what}",
            lambda: self.kube._raw(self.lister(self.namespace, _preload_content=False, **self.selectors)),
        )
        self.objects = {o["metadata"]["name"]: o for o in listed.get("items") or []}
        self._changed.set()
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def _follow(self, version: str) -> None:
        failures = 0
        while True:
            opened = time.monotonic()
            ended: object = "it ended"
            try:
                async with watch.Watch(return_type="object").stream(
                    self.lister, self.namespace, resource_version=version, timeout_seconds=60,
                    _request_timeout=75,  # a half-open connection ends too, and is reopened
                    **self.selectors,
                ) as stream:  # fmt: skip
                    async for event in stream:
                        body = event.get("raw_object") or {}
                        name = (body.get("metadata") or {}).get("name")
                        if event.get("type") in ("ADDED", "MODIFIED") and name:
                            self.objects[name] = body
                        elif event.get("type") == "DELETED" and name:
                            self.objects.pop(name, None)
                        else:
                            continue
                        self._changed.set()
            except Exception as error:  # any end of the watch: read again and reopen it
                ended = error
            # A watch that keeps ending at once, by an error or not (one the role does not grant,
            # a proxy closing it), backs off: the waiter still sees a fresh list each time.
            failures = 0 if time.monotonic() - opened > 5 else failures + 1
            if failures == 3:
                logger.warning("the watch of %s keeps ending at once (read every 5 s instead): %s", self.what, ended)
            if failures:
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
            try:
                version = await self._list()
            except Exception as error:  # raised to the waiter, never a silent end
                self._failed = (
                    error
                    if isinstance(error, (TransientError, PermanentError))
                    else TransientError(f"list {self.what}: {type(error).__name__}: {error}")
                )
                self._changed.set()
                return

    async def changed(self, every: float) -> None:
        """Wait for a change, or `every` seconds; raise if the objects can no longer be read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), every)
        self._changed.clear()
        if self._failed is not None:
            raise self._failed
        if self._task is not None and self._task.done():  # never judge a copy nobody updates
            raise TransientError(f"the watch of {self.what} ended")

    async def __aenter__(self) -> Watched:
        version = await self._list()
        self._changed.clear()
        self._task = asyncio.get_running_loop().create_task(self._follow(version))
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # not `await task`: a cancel aimed at the caller must reach it


class Shared:
    """One kind's objects in a namespace, followed by one list and watch (`Follower`) for every
    step that waits on some of them.

    Each App roll-out used to list and watch its own Deployments and pods (`Watched`): 500 roll-outs
    held 1,000 watches open, each with its own TLS connection in the operator (about 256 KiB of
    buffers), and listed again each time one ended, every minute. The API server filtered every
    pod event against each of them. Now a namespace's Bosun-managed Deployments (and pods) are one
    watch, and an event wakes only the waiters of its `index` label's value (its App). Objects are
    kept without `managedFields`, which no waiter reads.
    """

    def __init__(
        self, kube: Kube, kind: str, namespace: str, labels: dict[str, str], index: str, *, linger: float
    ) -> None:
        self.what = f"{kind} in {namespace}"
        self.index = index
        self.linger = linger
        self.by_value: dict[str, dict[str, dict[str, Any]]] = {}  # index value -> name -> object
        self.value_of: dict[str, str] = {}  # name -> its index value, as last seen
        self.views: dict[str, set[SharedView]] = {}
        self.follower = Follower(kube, kind, namespace, labels, self._listed, self._changed)
        self.stopped = False
        self.on_stop: Callable[[], object] = lambda: None
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.TimerHandle | None = None

    def _value(self, body: dict[str, Any]) -> str:
        return str(((body.get("metadata") or {}).get("labels") or {}).get(self.index) or "")

    def _listed(self, _: str, items: list[dict[str, Any]]) -> None:
        fresh: dict[str, dict[str, dict[str, Any]]] = {}
        for body in items:
            fresh.setdefault(self._value(body), {})[body["metadata"]["name"]] = _slim(body)
        self.by_value = fresh
        self.value_of = {name: value for value, objects in fresh.items() for name in objects}
        for views in self.views.values():
            for view in views:
                view.wake()

    def _changed(self, kind: str, body: dict[str, Any]) -> None:
        value, name = self._value(body), (body.get("metadata") or {}).get("name") or ""
        before = self.value_of.pop(name, None)
        for old in {before, value} - {None}:  # relabelled (a pod taken out to debug): it leaves its old App
            objects = self.by_value.get(old or "", {})
            objects.pop(name, None)
            if not objects:
                self.by_value.pop(old or "", None)
            for view in self.views.get(old or "", ()):
                view.wake()
        if kind != "DELETED":
            self.by_value.setdefault(value, {})[name] = _slim(body)
            self.value_of[name] = value

    def join(self, view: SharedView) -> None:
        if self._stopping is not None:
            self._stopping.cancel()
            self._stopping = None
        self.views.setdefault(view.value, set()).add(view)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.follower.run())

    def leave(self, view: SharedView) -> None:
        views = self.views.get(view.value, set())
        views.discard(view)
        if not views:
            self.views.pop(view.value, None)
        if not self.views and not self.stopped:
            self._stopping = asyncio.get_running_loop().call_later(self.linger, self.stop)

    def stop(self) -> None:
        """No waiter left for `linger` seconds (or the client closes): the watch ends."""
        self.stopped = True
        if self._stopping is not None:
            self._stopping.cancel()
        if self._task is not None:
            self._task.cancel()
        self.by_value, self.value_of = {}, {}
        self.on_stop()


def _slim(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    if "managedFields" in meta:
        body = {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return body


class SharedView:
    """What one waiter sees of a `Shared` watch: the objects whose index label has its value."""

    def __init__(self, shared: Shared, value: str) -> None:
        self.shared = shared
        self.value = value
        self._changed = asyncio.Event()

    @property
    def objects(self) -> dict[str, dict[str, Any]]:
        return dict(self.shared.by_value.get(self.value, {}))

    def wake(self) -> None:
        self._changed.set()

    async def changed(self, every: float) -> None:
        """Wait for a change to its objects, or `every` seconds; raise while they cannot be read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), every)
        self._changed.clear()
        self.check()

    def check(self) -> None:
        """Raise unless its objects are current: never judge a copy while the watch lists again."""
        follower = self.shared.follower
        if isinstance(follower.failure, PermanentError):  # e.g. refused by RBAC: no retry will change it
            raise follower.failure
        if self.shared.stopped or not follower.ready.is_set():
            raise TransientError(f"the watch of {self.shared.what} is not following: {follower.failure or 'ended'}")

    async def __aenter__(self) -> SharedView:
        if self.shared.stopped:  # stopped between `Kube.shared` and here: the waiter asks again
            raise TransientError(f"the watch of {self.shared.what} ended")
        self.shared.join(self)
        try:
            ready = asyncio.ensure_future(self.shared.follower.ready.wait())
            failed = asyncio.ensure_future(self.shared.follower.refused.wait())
            try:
                await asyncio.wait({ready, failed}, timeout=READY_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()
                failed.cancel()
            if not self.shared.follower.ready.is_set():
                self.check()
                raise TransientError(f"could not list {self.shared.what} within {READY_SECONDS:.0f} s")
        except BaseException:  # refused, timed out or cancelled: it no longer waits
            self.shared.leave(self)
            raise
        self._changed.clear()
        return self

    async def __aexit__(self, *_: object) -> None:
        self.shared.leave(self)


READY_SECONDS = 30.0  # a shared watch's first list: a step waits this long for it at most


class Changing(Protocol):
    async def changed(self, every: float) -> None: ...


async def any_change(every: float, *watched: Changing) -> None:
    """Wait until any of the watched sets changes, or `every` seconds."""
    waits = [asyncio.ensure_future(w.changed(every)) for w in watched]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for finished in done:
            finished.result()  # a set that can no longer be read raises
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.wait(waits)


class Gone(Exception):
    """The server can no longer resume a watch from its resource version (410): list again."""


class Follower:
    """One workload kind's objects (in a namespace, or in all of them: `namespace=""`), listed once
    and then followed by a watch that resumes where the last one ended.

    `Watched` lists again every time its watch ends, which suits a step that waits a minute. A
    follower runs for the operator's life: the server ends a watch every few minutes, and listing
    every managed object each time is the polling the watch is there to avoid. So it lists only at
    start, when the server answers 410 Gone (the version is too old to resume), or after an error.
    `listed(namespace, items)` gets each whole list; `changed(type, body)` each event after it. It
    reads the event stream itself: the client's `Watch` would decode every event twice.
    """

    def __init__(
        self,
        kube: Kube,
        kind: str,
        namespace: str,
        labels: dict[str, str],
        listed: Callable[[str, list[dict[str, Any]]], None],
        changed: Callable[[str, dict[str, Any]], None],
        *,
        without: tuple[str, ...] = (),
        watch_seconds: int = 300,
    ) -> None:
        api, suffix = kube._typed(kind, kube.watch_api)
        self.what = f"{kind} in {namespace or 'all namespaces'}"
        self.namespace = namespace
        method = f"list_namespaced_{suffix}" if namespace else f"list_{suffix}_for_all_namespaces"
        self._lister = getattr(api, method)
        self._selector = ",".join([*(f"{k}={v}" for k, v in sorted(labels.items())), *(f"!{k}" for k in without)])
        self._listed = listed
        self._changed = changed
        self._watch_seconds = watch_seconds
        self.lists = 0  # how many times it listed: once, unless the watch could not be resumed
        self.ready = asyncio.Event()  # set after the first list
        self.failure: Exception | None = None  # why it is not following now (None while it is)
        self.refused = asyncio.Event()  # set while the failure is one no retry will change (403)

    def _args(self) -> tuple[Any, ...]:
        return (self.namespace,) if self.namespace else ()

    async def _list(self) -> str:
        listed = await call(
            f"list {self.what}",
            lambda: self._read_list(_preload_content=False, label_selector=self._selector, _request_timeout=60),
        )
        self._listed(self.namespace, list(listed.get("items") or []))
        self.lists += 1
        self.failure = None
        self.refused.clear()
        self.ready.set()
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def _read_list(self, **kwargs: Any) -> dict[str, Any]:
        return await _json(await self._lister(*self._args(), **kwargs))

    async def _watch(self, version: str) -> str:
        """Follow from `version` until the server ends the watch; the version to resume from."""
        response = await self._lister(
            *self._args(),
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_seconds,
            label_selector=self._selector,
            _preload_content=False,
            _request_timeout=self._watch_seconds + 30,  # a half-open connection ends too
        )
        try:
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=(await response.read()).decode("utf-8", "replace"))
            while line := await response.content.readline():
                event = json.loads(line)
                kind, body = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if body.get("code") == 410:
                        raise Gone(body.get("message") or "gone")
                    raise ApiException(status=body.get("code"), reason=body.get("message"))
                version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._changed(kind, body)
            return version
        finally:
            response.release()

    async def run(self) -> None:
        """List, then follow for ever; never raises. After an error it lists again (and `ready` is
        clear until it has: the caller reads the API meanwhile); a watch that keeps ending at once,
        or 410 Gone right after each list, backs off up to 32 s."""
        failures = 0
        version = ""
        while True:
            opened = time.monotonic()
            try:
                if not version:
                    version = await self._list()
                version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except Gone:
                version = ""  # too old to resume: list again
            except Exception as error:  # the watch or the list failed: list again after a pause
                version = ""
                self.ready.clear()
                self.failure = (
                    error
                    if isinstance(error, (TransientError, PermanentError))
                    else map_error(error, f"watch {self.what}")
                    if isinstance(error, (TimeoutError, ApiException, aiohttp.ClientError, ConnectionError))
                    else TransientError(f"following {self.what}: {type(error).__name__}: {error}")
                )
                if isinstance(self.failure, PermanentError):
                    self.refused.set()
                if failures % 20 == 0:
                    logger.warning("following %s: %s (listing again)", self.what, error)
            lasted = time.monotonic() - opened
            failures = 0 if lasted > min(5.0, self._watch_seconds / 2) else min(failures + 1, 6)
            if failures:
                await asyncio.sleep(0.5 * 2**failures)
