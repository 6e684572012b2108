"""`kubectl bosun dashboard`: the Activity tab and the operation pages, served on localhost with
the person's own kubeconfig, as `kubectl argo rollouts dashboard` does.

Every read and every cancel is the person's: the server holds no credentials of its own, so the
API server's RBAC decides what each page shows, and the Cancel button is shown only where a
SelfSubjectAccessReview says the person may patch the Operation. Pages come from memory: the first
visit to a namespace lists its Apps, Databases and Operations once and then watches them, so a
namespace with a thousand operations is paginated out of memory, not listed per request. The log
of an operation is its namespace's copy (`bosun.models.logcopy`), read as `kubectl bosun logs`
reads it; a running one's new lines are sent as server-sent events.

Only 127.0.0.1 is served, requests must name it as their Host (another site cannot reach it
through DNS rebinding), and a cancel must carry this process's token (another site cannot forge
the form).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import secrets
import tempfile
import threading
import time
import webbrowser
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from bosun.cli import pages
from bosun.cli.commands import CliError, Connection, activity, copied_lines, plan_file
from bosun.models.names import FINISHED_PHASES, GROUP, PLURALS, REPORT_LABEL, REPORT_WEEK, VERSION

logger = logging.getLogger(__name__)
PAGE_SIZE = 25
PLAN_BYTES = 256 * 1024  # an edited App or Database: far more than one needs


def downtime_steps() -> dict[str, Sequence[str]]:
    """Each step table's downtime steps, by table name (what a timeline shades)."""
    from bosun.engine.steps import StepTable
    from bosun.operations.app import DEPROVISION, RELEASE
    from bosun.operations.database_steps import TABLES

    tables: list[StepTable[Any]] = [*TABLES.values(), RELEASE, DEPROVISION]
    return {t.name: tuple(t.downtime_steps) for t in tables}


class Forbidden(CliError):
    """The person may not read what a page shows: the page says which right is missing, nothing more."""

    def __init__(self, missing: str) -> None:
        super().__init__(f"you may not {missing}")
        self.missing = missing


class Watching:
    """One kind of a namespace, kept in memory: a list, then a watch from its resourceVersion,
    listed again when the watch expires or breaks."""

    def __init__(self, conn: Connection, plural: str) -> None:
        self.conn, self.plural = conn, plural
        self.items: dict[str, dict[str, Any]] = {}
        self.ready = threading.Event()
        self.error = ""
        self.forbidden = False
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        threading.Thread(target=self._run, name=f"watch {plural} {conn.namespace}", daemon=True).start()

    def _list(self) -> str:
        listed = self.conn.custom.list_namespaced_custom_object(GROUP, VERSION, self.conn.namespace, self.plural)
        with self.lock:
            self.items = {i["metadata"]["name"]: i for i in listed.get("items") or []}
        self.error, self.forbidden = "", False
        self.ready.set()
        return str(listed["metadata"].get("resourceVersion") or "")

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self.stopped.is_set():
            try:
                version = self._list()
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.conn.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.conn.namespace,
                    self.plural,
                    resource_version=version,
                    timeout_seconds=60,
                )
                for event in stream:
                    body, kind = event["object"], event["type"]
                    if kind == "ERROR":
                        break  # expired: list again
                    with self.lock:
                        if kind == "DELETED":
                            self.items.pop(body["metadata"]["name"], None)
                        else:
                            self.items[body["metadata"]["name"]] = body
            except ApiException as error:
                self.error = f"{error.status} {error.reason}"
                self.forbidden = error.status == 403
                self.ready.set()  # a page says why, rather than wait
                time.sleep(5 if error.status in (401, 403) else 1)
            except Exception as error:  # the API server went away: try again
                self.error = f"{type(error).__name__}: {error}"
                self.ready.set()
                time.sleep(1)

    def snapshot(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        if not self.ready.wait(timeout):
            raise CliError(f"the {self.plural} of namespace {self.conn.namespace} did not load in {timeout:.0f} s")
        if self.forbidden:
            raise Forbidden(f"list {self.plural}.{GROUP} in namespace {self.conn.namespace}")
        if self.error and not self.items:
            raise CliError(f"cannot read the {self.plural} of namespace {self.conn.namespace}: {self.error}")
        with self.lock:
            return list(self.items.values())


class Cluster:
    """What the dashboard reads, as the person: a connection per namespace, and what it watches."""

    def __init__(self, conn: Connection, namespaces: Sequence[str] = ()) -> None:
        self.conn = conn
        self.pinned = list(namespaces)
        self.watched: dict[tuple[str, str], Watching] = {}
        self.lock = threading.Lock()
        self.downtime_steps = downtime_steps()

    def stop(self) -> None:
        with self.lock:
            for watching in self.watched.values():
                watching.stopped.set()

    def at(self, namespace: str) -> Connection:
        return dataclasses.replace(self.conn, namespace=namespace)

    def objects(self, namespace: str, plural: str) -> list[dict[str, Any]]:
        with self.lock:
            watching = self.watched.get((namespace, plural))
            if watching is None:
                watching = self.watched[(namespace, plural)] = Watching(self.at(namespace), plural)
        return watching.snapshot()

    def allowed(self, verb: str, resource: str, namespace: str = "", name: str = "") -> bool:
        from kubernetes import client

        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    group="" if resource == "namespaces" else GROUP,
                    resource=resource,
                    verb=verb,
                    namespace=namespace or None,
                    name=name or None,
                )
            )
        )
        answer = client.AuthorizationV1Api(self.conn.core.api_client).create_self_subject_access_review(review)
        return bool(answer.status and answer.status.allowed)

    def environments(self) -> tuple[list[str], str]:
        """Namespaces where the person may list Apps or Databases (and why the list is what it is)."""
        if self.pinned:
            return self.pinned, "the namespaces this dashboard was started with (-n)"
        if self.allowed("list", "namespaces"):
            listed = [n.metadata.name for n in self.conn.core.list_namespace().items]
            if self.allowed("list", "apps") or self.allowed("list", "databases"):
                return listed, "every namespace (you may list Apps or Databases in all of them)"
            found = [n for n in listed[:200] if self.allowed("list", "apps", n) or self.allowed("list", "databases", n)]
            return found, "the namespaces where you may list Apps or Databases"
        return [self.conn.namespace], "your kubeconfig's namespace (you may not list namespaces)"

    def backups_of(self, namespace: str, database: str) -> list[dict[str, Any]] | str:
        """A Database's backup records, its earlier incarnations' included (by name, as `kubectl
        bosun backups` lists them), or why they cannot be read: the page shows the rest anyway."""
        try:
            found = self.objects(namespace, PLURALS["Backup"])
        except Forbidden as error:
            return f"You may not {error.missing}."
        except CliError as error:
            return str(error)
        return [b for b in found if (b.get("spec") or {}).get("database") == database]

    def operation(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = next((o for o in self.objects(namespace, PLURALS["Operation"]) if o["metadata"]["name"] == name), None)
        if found is None:  # just created: the watch may not have it yet
            with contextlib.suppress(Exception):
                found = self.at(namespace).custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURALS["Operation"], name
                )
        return found

    def log_lines(self, namespace: str, operation: dict[str, Any]) -> list[str]:
        meta = operation["metadata"]
        try:
            return copied_lines(self.at(namespace), meta["name"], meta.get("uid", ""))
        except CliError as error:
            return [f"(the log cannot be read: {error})"]

    def reports(self, namespace: str) -> list[str]:
        listed = self.conn.core.list_namespaced_config_map(namespace, label_selector=f"{REPORT_LABEL}=true")
        weeks = {(c.metadata.labels or {}).get(REPORT_WEEK, "") for c in listed.items}
        return sorted((w for w in weeks if w), reverse=True)

    def report_csv(self, namespace: str, week: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        activity(self.at(namespace), week, None, "csv", out, err)
        return out.getvalue()

    def cancel(self, namespace: str, name: str) -> None:
        self.at(namespace).custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS["Operation"], name, {"spec": {"cancel": True}}
        )


def newest_first(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        operations, key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]), reverse=True
    )


def of_target(operations: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    wanted = {"kind": kind, "name": name}
    return [o for o in operations if {k: ((o.get("spec") or {}).get("target") or {}).get(k) for k in wanted} == wanted]


class Dashboard:
    """The routes: each answers with a page, a download, a redirect or an event stream, reading and
    acting as the person whose `Cluster` the request came with."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(24)  # a cancel must carry it: another site cannot forge the form

    def get(
        self, cluster: Cluster, path: str, query: dict[str, list[str]]
    ) -> tuple[int, str, str | bytes, dict[str, str]]:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        html = "text/html; charset=utf-8"
        if not parts:
            namespaces, note = cluster.environments()
            return 200, html, pages.environments(namespaces, note), {}
        if parts[0] != "ns" or len(parts) < 2:
            return 404, html, pages.error_page(404, "no such page"), {}
        namespace, rest = parts[1], parts[2:]
        if not rest:
            apps, databases = cluster.objects(namespace, "apps"), cluster.objects(namespace, "databases")
            return 200, html, pages.namespace_page(namespace, apps, databases), {}
        if rest[0] in ("apps", "databases") and len(rest) == 2:
            return self._target(cluster, namespace, rest[0], rest[1], query)
        if rest[0] == "operations" and len(rest) >= 2:
            return self._operation(cluster, namespace, rest[1], rest[2:])
        if rest == ["backups"]:
            backups = cluster.objects(namespace, PLURALS["Backup"])
            live = {d["metadata"].get("uid", "") for d in cluster.objects(namespace, PLURALS["Database"])}
            return 200, html, pages.backups_page(namespace, backups, live), {}
        if rest[0] == "reports" and len(rest) == 1:
            return 200, html, pages.reports_page(namespace, cluster.reports(namespace)), {}
        if rest[0] == "reports" and len(rest) == 2 and rest[1].endswith(".csv"):
            week = rest[1].removesuffix(".csv")
            disposition = {"Content-Disposition": f'attachment; filename="bosun-activity-{namespace}-{week}.csv"'}
            return 200, "text/csv; charset=utf-8", cluster.report_csv(namespace, week), disposition
        return 404, html, pages.error_page(404, "no such page"), {}

    def _target(
        self, cluster: Cluster, namespace: str, plural: str, name: str, query: dict[str, list[str]]
    ) -> tuple[int, str, str, dict[str, str]]:
        html = "text/html; charset=utf-8"
        body = next((o for o in cluster.objects(namespace, plural) if o["metadata"]["name"] == name), None)
        if body is None:
            return 404, html, pages.error_page(404, f"no {plural[:-1]} {name} in namespace {namespace}"), {}
        kind = "App" if plural == "apps" else "Database"
        mine = newest_first(of_target(cluster.objects(namespace, PLURALS["Operation"]), kind, name))
        count = max(1, -(-len(mine) // PAGE_SIZE))
        number = min(max(1, int((query.get("page") or ["1"])[0] or 1)), count)
        shown = mine[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        backups: list[dict[str, Any]] | str = []
        if plural == "databases":
            backups = cluster.backups_of(namespace, name)
        return (
            200,
            html,
            pages.target_page(
                namespace, plural, body, shown, cluster.downtime_steps, number, count, self.token, backups
            ),
            {},
        )

    def _operation(
        self, cluster: Cluster, namespace: str, name: str, rest: list[str]
    ) -> tuple[int, str, str, dict[str, str]]:
        html = "text/html; charset=utf-8"
        operation = cluster.operation(namespace, name)
        if operation is None:
            return 404, html, pages.error_page(404, f"no operation {name} in namespace {namespace}"), {}
        if rest == ["log"]:
            text = "\n".join(cluster.log_lines(namespace, operation)) + "\n"
            disposition = {"Content-Disposition": f'attachment; filename="{name}.log"'}
            return 200, "text/plain; charset=utf-8", text, disposition
        if rest:
            return 404, html, pages.error_page(404, "no such page"), {}
        window = pages.downtime_of(operation, cluster.downtime_steps)
        may_cancel = cluster.allowed("patch", PLURALS["Operation"], namespace, name)
        lines = cluster.log_lines(namespace, operation)
        now = datetime.now(UTC)
        return (
            200,
            html,
            pages.operation_page(namespace, operation, lines, window, now, self.token if may_cancel else None),
            {},
        )

    def post(self, cluster: Cluster, path: str, form: dict[str, list[str]]) -> tuple[int, str, str, dict[str, str]]:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        html = "text/html; charset=utf-8"
        if not secrets.compare_digest((form.get("token") or [""])[0], self.token):
            return 403, html, pages.error_page(403, "this form did not come from this dashboard's own page"), {}
        if len(parts) == 5 and parts[0] == "ns" and parts[2] in ("apps", "databases") and parts[4] == "plan":
            return self._plan(cluster, parts[1], parts[2], parts[3], (form.get("manifest") or [""])[0])
        if len(parts) != 5 or parts[0] != "ns" or parts[2] != "operations" or parts[4] != "cancel":
            return 404, html, pages.error_page(404, "no such page"), {}
        namespace, name = parts[1], parts[3]
        cluster.cancel(namespace, name)
        return 303, html, "", {"Location": f"/ns/{namespace}/operations/{name}"}

    def _plan(
        self, cluster: Cluster, namespace: str, plural: str, name: str, manifest: str
    ) -> tuple[int, str, str, dict[str, str]]:
        """What applying the edited manifest would do: `kubectl bosun plan -f`, as the person."""
        out, err = io.StringIO(), io.StringIO()
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as edited:
            edited.write(manifest[:PLAN_BYTES])
            edited.flush()
            try:
                code = plan_file(cluster.at(namespace), edited.name, out, err, wait=60)
            except CliError as error:
                code = 1
                err.write(f"error: {error}\n")
        said = out.getvalue() + err.getvalue()
        return 200, "text/html; charset=utf-8", pages.plan_result(namespace, plural, name, said, code), {}

    def events(self, cluster: Cluster, namespace: str, name: str, write: Callable[[str], bool], shown: int = 0) -> None:
        """The log lines of a running operation past the `shown` ones the page has, as server-sent
        events, then `end` when it ends. Driven by the watch of Operations: the log's copy is read
        again only when the operation's status counts more lines (or it ended)."""
        sent, counted = shown, -1
        while True:
            operation = cluster.operation(namespace, name)
            if operation is None:
                write("event: end\ndata: gone\n\n")
                return
            status = operation.get("status") or {}
            total = int((status.get("log") or {}).get("total") or 0)
            # Read again when the status counts more lines, or counts lines not yet sent (the copy
            # in the namespace follows the status by up to a flush).
            if total != counted or sent < total or status.get("phase") in FINISHED_PHASES:
                counted = total
                lines = cluster.log_lines(namespace, operation)
                for line in lines[sent:]:
                    if not write(f"event: line\ndata: {line}\n\n"):
                        return
                sent = max(sent, len(lines))
            if (operation.get("status") or {}).get("phase") in FINISHED_PHASES:
                write("event: end\ndata: " + json.dumps((operation.get("status") or {}).get("phase")) + "\n\n")
                return
            if not write(": still running\n\n"):
                return
            time.sleep(1)


class People:
    """Whose rights a request carries. Locally: the one person who started the dashboard."""

    def __init__(self, cluster: Cluster, port_of: Callable[[], int]) -> None:
        self.cluster, self.port_of = cluster, port_of

    def refusal(self, headers: Any) -> str:
        """Why this request is not served ('' when it is): locally, it must name 127.0.0.1 or localhost
        (another web site cannot reach the dashboard through DNS rebinding)."""
        host = (headers.get("Host") or "").lower()
        ok = host in (f"127.0.0.1:{self.port_of()}", f"localhost:{self.port_of()}")
        return "" if ok else "this dashboard answers only as 127.0.0.1 or localhost"

    def cluster_for(self, headers: Any) -> Cluster | None:
        return self.cluster

    def clusters(self) -> list[Cluster]:
        return [self.cluster]


class ForwardedPeople(People):
    """In the cluster, behind an auth proxy: each request acts with the bearer token the proxy
    forwards (oauth2-proxy's `--pass-authorization-header`, or `X-Forwarded-Access-Token`), never
    with the dashboard's own ServiceAccount, which has no rights at all. A person's views (their
    watches) are kept while they use them and dropped after `idle_seconds`."""

    def __init__(self, base: Any, idle_seconds: float = 600.0) -> None:
        self.base, self.idle_seconds = base, idle_seconds
        self.known: dict[str, tuple[Cluster, float]] = {}
        self.lock = threading.Lock()

    def refusal(self, headers: Any) -> str:
        return (
            ""
            if _bearer(headers)
            else (
                "no credentials came with this request: the dashboard in a cluster serves only behind an auth "
                "proxy that forwards each person's token (see docs/dashboard.md)"
            )
        )

    def clusters(self) -> list[Cluster]:
        with self.lock:
            return [cluster for cluster, _ in self.known.values()]

    def cluster_for(self, headers: Any) -> Cluster | None:
        token = _bearer(headers)
        if not token:
            return None
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self.lock:
            for gone in [k for k, (_, used) in self.known.items() if now - used > self.idle_seconds]:
                self.known.pop(gone)[0].stop()
            found = self.known.get(key)
            cluster = found[0] if found else Cluster(as_bearer(self.base, token))
            self.known[key] = (cluster, now)
        return cluster


def _bearer(headers: Any) -> str:
    forwarded = (headers.get("X-Forwarded-Access-Token") or "").strip()
    if forwarded:
        return forwarded
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def as_bearer(base: Any, token: str) -> Connection:
    """A connection to the same API server as `base` (a kubernetes Configuration) that
    authenticates with `token` alone: no client certificate, no other credential of the server's."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = base.host
    configuration.ssl_ca_cert = base.ssl_ca_cert
    configuration.verify_ssl = base.verify_ssl
    configuration.api_key = {"authorization": f"Bearer {token}"}
    api = client.ApiClient(configuration)
    return Connection(client.CustomObjectsApi(api), client.CoreV1Api(api), "default")


def handler_for(dashboard: Dashboard, people: People) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "bosun-dashboard"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

        def _answer(self, code: int, kind: str, body: str | bytes, headers: dict[str, str]) -> None:
            nonce = secrets.token_urlsafe(16)
            if isinstance(body, str) and kind.startswith("text/html"):
                body = body.replace(pages.NONCE, nonce)
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; connect-src 'self'; "
                "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            )
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Frame-Options", "DENY")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _person(self) -> Cluster | None:
            refused = people.refusal(self.headers)
            cluster = None if refused else people.cluster_for(self.headers)
            if cluster is None:
                code = 401 if isinstance(people, ForwardedPeople) else 421
                self._answer(code, "text/html; charset=utf-8", pages.error_page(code, refused or "who?"), {})
            return cluster

        def _guarded(self, work: Callable[[Cluster], tuple[int, str, str | bytes, dict[str, str]]]) -> None:
            cluster = self._person()
            if cluster is None:
                return
            try:
                self._answer(*work(cluster))
            except Forbidden as error:
                self._answer(403, "text/html; charset=utf-8", pages.forbidden_page(error.missing), {})
            except CliError as error:
                self._answer(502, "text/html; charset=utf-8", pages.error_page(502, str(error)), {})
            except Exception as error:
                status, message = _api_failure(error)
                self._answer(status, "text/html; charset=utf-8", pages.error_page(status, message), {})

        def do_GET(self) -> None:
            url = urlparse(self.path)
            parts = [p for p in url.path.strip("/").split("/") if p]
            if len(parts) == 5 and parts[0] == "ns" and parts[2] == "operations" and parts[4] == "events":
                cluster = self._person()
                if cluster is not None:
                    shown = (parse_qs(url.query).get("from") or ["0"])[0]
                    self._stream(cluster, unquote(parts[1]), unquote(parts[3]), int(shown) if shown.isdigit() else 0)
                return
            self._guarded(lambda cluster: dashboard.get(cluster, url.path, parse_qs(url.query)))

        def do_POST(self) -> None:
            given = (self.headers.get("Content-Length") or "0").strip()
            # A length that is no number, or negative, would make read() wait for the client to close.
            length = min(int(given), 2 * PLAN_BYTES) if given.isdigit() else 0
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            self._guarded(lambda cluster: dashboard.post(cluster, urlparse(self.path).path, form))

        def _stream(self, cluster: Cluster, namespace: str, name: str, shown: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()

            def write(text: str) -> bool:
                try:
                    self.wfile.write(text.encode())
                    self.wfile.flush()
                    return True
                except OSError:  # the page was closed
                    return False

            try:
                dashboard.events(cluster, namespace, name, write, shown)
            except Exception as error:  # the stream ends; the page's reload shows what is there
                logger.warning("log stream of %s/%s ended: %s", namespace, name, error)

    return Handler


def _api_failure(error: Exception) -> tuple[int, str]:
    from kubernetes.client.exceptions import ApiException

    if isinstance(error, ApiException):
        try:
            message = json.loads(error.body or "{}").get("message") or error.reason
        except ValueError:
            message = error.reason
        return (error.status if error.status in (401, 403, 404, 409, 422) else 502), str(message)
    return 502, f"cannot reach the API server: {type(error).__name__}: {error}"


class DashboardServer(ThreadingHTTPServer):
    dashboard: Dashboard
    people: People

    def shutdown(self) -> None:
        """Stop serving, and stop every watch it started (each ends within its minute)."""
        super().shutdown()
        for cluster in self.people.clusters():
            cluster.stop()


def serve(
    cluster: Cluster | None = None, port: int = 0, *, forwarded: Any = None, address: str = "127.0.0.1"
) -> DashboardServer:
    """Start serving in a thread (`port` 0: any free port; `.server_address` says where): as the
    one person of `cluster` on 127.0.0.1, or, with `forwarded` (the API server's Configuration),
    as whoever each request's forwarded token says (the in-cluster dashboard)."""
    dashboard = Dashboard()
    holder: dict[str, int] = {}
    if forwarded is not None:
        people: People = ForwardedPeople(forwarded)
    else:
        assert cluster is not None
        people = People(cluster, lambda: holder["port"])
    server = DashboardServer((address, port), handler_for(dashboard, people))
    server.dashboard, server.people = dashboard, people
    holder["port"] = server.server_address[1]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    return server


def run(conn: Connection, namespaces: Sequence[str], port: int, open_browser: bool, out: Any) -> int:
    server = serve(Cluster(conn, namespaces), port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"Bosun dashboard on {url} (Ctrl-C stops it); it reads and acts with your kubeconfig's rights", file=out)
    if open_browser:
        with contextlib.suppress(Exception):
            webbrowser.open(url)
    return _until_stopped(server)


def run_forwarded(kubeconfig: str | None, context: str | None, port: int, out: Any) -> int:
    """The dashboard in a cluster (the chart's, off by default): on every address, behind an auth
    proxy that forwards each person's token; the API server is the one this pod runs in (or the
    kubeconfig's, to try it out), reached with that token and nothing else."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)  # type: ignore[no-untyped-call]
    server = serve(port=port or 8080, forwarded=configuration, address="0.0.0.0")  # behind its proxy
    print(f"Bosun dashboard on port {server.server_address[1]}: each request acts with the token it forwards", file=out)
    return _until_stopped(server)


def _until_stopped(server: DashboardServer) -> int:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
        return 0
