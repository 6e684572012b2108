"""The one adapter around the asynchronous Kubernetes client.

Nothing else in Bosun imports `kubernetes_asyncio` (an import-linter contract keeps it so): this
module (`Kube`, one CRUD vocabulary for every kind), how its calls are made and their errors mapped
(`bosun.kube_calls`, whose names are re-exported here), and its watches (`bosun.kube_watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import urllib.request
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, cast

from kubernetes_asyncio import client, config

from bosun.errors import PermanentError, TransientError
from bosun.kube_calls import (
    APPLY_PATCH,
    MERGE_PATCH,
    METADATA_LIST,
    AlreadyExists,
    NamespaceTerminating,
    NotFound,
    TooLarge,
    _json,
    call,
    map_error,
)
from bosun.kube_watch import Changing, Follower, Gone, Shared, SharedView, Watched, any_change
from bosun.models.base import GROUP, VERSION
from bosun.models.base import now as clock_now
from bosun.models.names import PLURALS, SNAPSHOT_GROUP, SNAPSHOT_VERSION, USER_AGENT

__all__ = [
    "APPLY_PATCH",
    "MERGE_PATCH",
    "AlreadyExists",
    "Changing",
    "Follower",
    "Gone",
    "Kube",
    "NamespaceTerminating",
    "NotFound",
    "TooLarge",
    "any_change",
    "call",
    "connected",
    "map_error",
]

logger = logging.getLogger(__name__)

# Kinds of other projects' APIs reached through the custom-objects API: group, version, plural.
# The VolumeSnapshot API is kubernetes-csi/external-snapshotter's (a backup's snapshot).
CUSTOM_KINDS: dict[str, tuple[str, str, str]] = {
    **{kind: (GROUP, VERSION, plural) for kind, plural in PLURALS.items()},
    "VolumeSnapshot": (SNAPSHOT_GROUP, SNAPSHOT_VERSION, "volumesnapshots"),
}


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
        """One call of the custom-objects API on a Bosun kind or a VolumeSnapshot (`verb`: get, list,
        create, patch, delete)."""
        method = getattr(self.custom, f"{verb}_namespaced_custom_object")
        what = f"{verb} {kind} {namespace}/{name}" if name else f"{verb} {kind} in {namespace}"
        group, version, plural = CUSTOM_KINDS[kind]
        return await call(what, lambda: method(group, version, namespace, plural, *args, **kwargs))

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
        if kind in CUSTOM_KINDS:
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
        if kind in CUSTOM_KINDS:
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
        if kind in CUSTOM_KINDS:
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
        if kind in CUSTOM_KINDS:
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
        if kind in CUSTOM_KINDS:
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

    async def exec_in_pod(
        self, namespace: str, pod: str, container: str, command: list[str], timeout: float = 30.0
    ) -> str:
        """What a command run in a container printed (stdout and stderr together). The exit code is
        not reported this way: a caller that needs to know it succeeded makes it print so. Raises
        TransientError when the command cannot run there (no kubelet answers: a KWOK node)."""
        from kubernetes_asyncio.stream import WsApiClient

        async def run() -> str:
            async with WsApiClient(configuration=self.api.configuration) as ws:
                api = client.CoreV1Api(ws)
                answer = api.connect_get_namespaced_pod_exec(
                    pod,
                    namespace,
                    container=container,
                    command=cast(Any, command),
                    stderr=True,
                    stdout=True,
                    stdin=False,
                    tty=False,
                )
                return str(await asyncio.wait_for(answer, timeout))

        return await call(f"exec in pod {namespace}/{pod}", run)

    async def exec_stream(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: list[str],
        stdout: Callable[[bytes], Awaitable[None]],
        stdin: AsyncIterator[bytes] | None = None,
    ) -> tuple[int, str]:
        """Run a command whose output is too large to hold: each piece of its stdout is handed to
        `stdout` as it comes (awaited, so a slow reader slows the command, never memory), and
        `stdin`, when given, is sent and then closed (the v5 exec protocol). Returns its exit code
        and the end of its stderr. Raises TransientError when it cannot run (no kubelet answers)."""
        from kubernetes_asyncio.stream import WsApiClient

        class Channels(WsApiClient):
            """v5 of the exec protocol: the one that can close stdin, so a command sees its end."""

            async def request(  # type: ignore[override]
                self, method: Any, url: Any, query_params: Any = None, headers: Any = None, **rest: Any
            ) -> Any:
                headers = {**(headers or {}), "sec-websocket-protocol": "v5.channel.k8s.io"}
                return await super().request(method, url, query_params=query_params, headers=headers, **rest)

        stderr = bytearray()
        status: dict[str, Any] = {}

        async def feed(ws: Any) -> None:
            assert stdin is not None
            async for chunk in stdin:
                for start in range(0, len(chunk), 2**16):
                    await ws.send_bytes(b"\x00" + chunk[start : start + 2**16])
            await ws.send_bytes(b"\xff\x00")  # close stdin: the command reads its end

        async def receive(ws: Any) -> None:
            while True:
                try:  # a stream silent this long is stalled: the step runs again
                    message = await asyncio.wait_for(ws.receive(), EXEC_SILENCE_SECONDS)
                except TimeoutError:
                    silent = f"exec in pod {namespace}/{pod}: no output for {EXEC_SILENCE_SECONDS:.0f} s"
                    raise TransientError(silent) from None
                if message.type.name in ("CLOSE", "CLOSING", "CLOSED", "ERROR"):  # the stream ended
                    return
                if not isinstance(message.data, bytes) or not message.data:
                    continue
                channel, body = message.data[0], message.data[1:]
                if channel == 1 and body:
                    await stdout(body)
                elif channel == 2:
                    stderr.extend(body)
                    del stderr[: max(0, len(stderr) - 4096)]
                elif channel == 3 and body:
                    status.update(json.loads(body))
                    return  # the command's exit status is the stream's last message

        async def run() -> None:
            async with Channels(configuration=self.api.configuration, heartbeat=30) as ws_api:
                connect: Any = await client.CoreV1Api(ws_api).connect_get_namespaced_pod_exec(
                    pod,
                    namespace,
                    container=container,
                    command=cast(Any, command),
                    stdin=stdin is not None,
                    stdout=True,
                    stderr=True,
                    tty=False,
                    _preload_content=False,
                )
                async with connect as ws:
                    receiving = asyncio.create_task(receive(ws))
                    feeding = asyncio.create_task(feed(ws)) if stdin is not None else None
                    try:
                        if feeding is not None:
                            await asyncio.wait({receiving, feeding}, return_when=asyncio.FIRST_COMPLETED)
                            failed = feeding.exception() if feeding.done() else None
                            if failed is not None:
                                # A command that ended early closes the stream under the feeder: its
                                # status is on its way. Otherwise what feeds it failed (the store), and
                                # the command must not wait for input that will never come.
                                with contextlib.suppress(TimeoutError):
                                    await asyncio.wait_for(asyncio.shield(receiving), 5)
                                if not status:
                                    await ws.close()
                                    raise failed
                        await receiving
                    finally:
                        for task in (receiving, feeding):
                            if task is not None and not task.done():
                                task.cancel()
                        if feeding is not None and feeding.done() and not feeding.cancelled():
                            feeding.exception()  # retrieved: once the command has ended, a send that failed is moot

        await call(f"exec in pod {namespace}/{pod}", run)
        if not status:  # the connection ended without the command's end: not its failure
            raise TransientError(f"exec in pod {namespace}/{pod}: the stream ended without the command's exit status")
        return exit_code(status), stderr.decode("utf-8", "replace").strip()

    async def snapshot_classes(self) -> list[dict[str, Any]]:
        """Every VolumeSnapshotClass; NotFound when the cluster does not serve the VolumeSnapshot API."""
        result = await call(
            "list VolumeSnapshotClasses",
            lambda: self.custom.list_cluster_custom_object(SNAPSHOT_GROUP, SNAPSHOT_VERSION, "volumesnapshotclasses"),
        )
        return list(result.get("items") or [])

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


EXEC_SILENCE_SECONDS = 300.0


def exit_code(status: dict[str, Any]) -> int:
    """The exit code an exec's status channel reported: 0 for Success, the code of a non-zero exit,
    -1 when the command could not run at all (not found, the container gone) or no status came."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            with contextlib.suppress(ValueError):
                return int(cause.get("message", ""))
    return -1
