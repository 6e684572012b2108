"""The dashboard (`kubectl bosun dashboard`) on the real API server, with a real operator: an App's
Activity tab and its operations' pages, the log to download, the week's report, and what a person
may do there following their own rights (a viewer sees no Cancel, and cannot cancel anyway); then
the same in a real browser (Debian's Chromium, driven by Playwright): a viewer follows a running
operation's log live to its end and downloads its log and the week's CSV (each compared byte for
byte with `kubectl bosun`), an editor cancels from the page, a stranger sees only the 403 page."""

from __future__ import annotations

import http.client
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from bosun.cli import commands, dashboard
from bosun.models.names import API_VERSION, GROUP, PLURALS, VERSION
from tests.support.bosun_objects import Bosun
from tests.support.cli import kubectl_bosun
from tests.support.cluster import LocalCluster
from tests.support.databases import database_manifest, ops_of, provision, run_op
from tests.support.install import apply_operator_rbac
from tests.support.operator_process import OperatorProcess, ensure_running, module_operator
from tests.support.rbac import user_with_role
from tests.support.snapshots import Snapshots
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# KWOK makes a pod Ready after its delay, or its jitter-delay if that is longer (5 s by default):
# both set, a roll-out takes that long.
SLOW_PODS = {"pod-ready.stage.kwok.x-k8s.io/delay": "15s", "pod-ready.stage.kwok.x-k8s.io/jitter-delay": "15s"}
NEVER_READY = {"pod-ready.stage.kwok.x-k8s.io/delay": "600s", "pod-ready.stage.kwok.x-k8s.io/jitter-delay": "600s"}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    apply_operator_rbac(cluster)  # the roles people get: `view` reads Bosun's kinds
    yield from module_operator(
        cluster.kubeconfig,
        tmp_path_factory.mktemp("bosun-dashboard"),
        command=["-m", "bosun", "run"],
        env={"BOSUN_ACTIVITY_SECONDS": "2"},
    )


@pytest.fixture
def bosun(api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess) -> Bosun:
    ensure_running(operator)
    return Bosun(api, cluster, namespace)


class Served:
    def __init__(self, cluster: LocalCluster, namespace: str, user: str | None = None) -> None:
        conn = commands.connect(str(cluster.kubeconfig), cluster.context, namespace, user)
        self.server = dashboard.serve(dashboard.Cluster(conn))
        self.port = self.server.server_address[1]
        self.token = self.server.dashboard.token

    def get(self, path: str, host: str = "") -> tuple[int, str, dict[str, str]]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if host:
            request.add_unredirected_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode(), dict(answer.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", path, urllib.parse.urlencode(form), headers)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()

    def close(self) -> None:
        self.server.shutdown()


def this_week() -> str:
    year, week, _ = datetime.now(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def app(name: str, **spec: Any) -> dict[str, Any]:
    spec = {"image": "example.com/web:1", **spec}
    return {"apiVersion": API_VERSION, "kind": "App", "metadata": {"name": name}, "spec": spec}


def test_an_apps_activity_tab_and_operation_pages_show_what_ran(bosun: Bosun, cluster: LocalCluster) -> None:
    bosun.apply(app("web"))
    deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the App's deploy")[0]
    assert bosun.wait_phase(deploy, timeout=120)["phase"] == "Succeeded"
    bosun.operation("web-restart", "web", "restart")
    assert bosun.wait_phase("web-restart", timeout=120)["phase"] == "Succeeded"
    served = Served(cluster, bosun.namespace)
    try:
        code, home, _ = served.get("/")
        assert code == 200 and "Environments" in home
        code, listing, _ = served.get(f"/ns/{bosun.namespace}")
        assert code == 200 and f"/ns/{bosun.namespace}/apps/web" in listing and "Activity Reports" in listing
        code, tab, _ = served.get(f"/ns/{bosun.namespace}/apps/web")
        assert code == 200 and "<h2>Activity</h2>" in tab
        assert tab.index("web-restart") < tab.index(deploy), "newest first"
        assert "restart" in tab and "deploy" in tab and "Succeeded" in tab
        assert "Plan an edit" in tab and served.token in tab  # the plan form, with the current spec in it
        edited = yaml.safe_dump(app("web", image="example.com/web:9"))
        code, planned = served.post(f"/ns/{bosun.namespace}/apps/web/plan", {"token": served.token, "manifest": edited})
        assert code == 200 and "would run" in planned and "deploy" in planned, planned

        code, page, _ = served.get(f"/ns/{bosun.namespace}/operations/{deploy}")
        assert code == 200 and "<svg" in page and "roll-out" in page and "Download log" in page
        assert "operation succeeded" in page and "data-events" not in page  # ended: nothing to follow
        assert "<form method=post" not in page  # nothing to cancel once it ended
        code, log, headers = served.get(f"/ns/{bosun.namespace}/operations/{deploy}/log")
        assert code == 200 and "attachment" in headers["Content-Disposition"] and "operation succeeded" in log

        week = this_week()
        wait_for(lambda: week in served.get(f"/ns/{bosun.namespace}/reports")[1], timeout=60, what="the week's report")
        code, report, headers = served.get(f"/ns/{bosun.namespace}/reports/{week}.csv")
        assert code == 200 and headers["Content-Type"].startswith("text/csv")
        assert deploy in report and "web-restart" in report

        assert served.get("/", host="bosun.attacker.example")[0] == 421  # DNS rebinding: not for us
        code, missing, _ = served.get(f"/ns/{bosun.namespace}/operations/no-such-op")
        assert code == 404 and "no operation no-such-op" in missing
    finally:
        served.close()


def test_a_viewer_sees_a_databases_backups_and_the_namespaces_those_of_deleted_databases_too(
    bosun: Bosun, cluster: LocalCluster, api: client.ApiClient, snapshot_controller: Snapshots
) -> None:
    assert provision(bosun, database_manifest("pg", minReadySeconds=1))["phase"] == "Succeeded"
    assert run_op(bosun, "pg-nightly", "backup")["phase"] == "Succeeded"
    # the record of a Database deleted since (records outlive it): its uid is no live Database's
    gone = {
        "apiVersion": API_VERSION,
        "kind": "Backup",
        "metadata": {"name": "old-before-delete"},
        "spec": {"database": "old", "databaseUid": "0000-gone", "engine": "postgresql", "version": "16",
                 "method": "VolumeSnapshot", "trigger": "BeforeChange", "operation": "old-deprovision"},
    }  # fmt: skip
    bosun.custom.create_namespaced_custom_object(GROUP, VERSION, bosun.namespace, PLURALS["Backup"], gone)
    viewer = user_with_role(api, cluster, bosun.namespace, "view", "list backups.bosun.dev")
    served = Served(cluster, bosun.namespace, viewer)
    try:
        code, listing, _ = served.get(f"/ns/{bosun.namespace}")
        assert code == 200 and f"/ns/{bosun.namespace}/backups" in listing
        code, page, _ = served.get(f"/ns/{bosun.namespace}/databases/pg")
        assert code == 200 and "<h2>Backups</h2>" in page
        section = page[page.index("<h2>Backups</h2>") :]
        assert "pg-nightly" in section and "Completed" in section and "OnDemand" in section and "1Gi" in section
        assert f"/ns/{bosun.namespace}/operations/pg-nightly" in section  # the operation that took it
        assert "old-before-delete" not in section  # another Database's
        code, everything, _ = served.get(f"/ns/{bosun.namespace}/backups")
        assert code == 200 and "pg-nightly" in everything and "old-before-delete" in everything
        row = everything[everything.index("old-before-delete") :]
        assert "(deleted)" in row.split("</tr>")[0] and "(deleted)" not in everything.split("old-before-delete")[0]
    finally:
        served.close()
    served = Served(cluster, bosun.namespace, "nobody-at-all")  # no RoleBinding anywhere
    try:
        code, page, _ = served.get(f"/ns/{bosun.namespace}/backups")
        assert code == 403 and "pg-nightly" not in page
    finally:
        served.close()


def first_event(served: Served, path: str) -> str:
    """The first server-sent event of a stream (read in a thread, so a silent stream fails the test)."""
    found: list[str] = []

    def read() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{served.port}{path}", timeout=30) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith("event:"):
                    found.append(line)
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    return found[0] if found else ""


def test_cancel_is_offered_only_to_who_may_cancel_and_goes_through_their_rights(
    bosun: Bosun, cluster: LocalCluster, api: client.ApiClient
) -> None:
    bosun.apply(app("slow"))
    first = wait_for(lambda: ops_of(bosun, "slow", "deploy"), what="the App's first deploy")[0]
    assert bosun.wait_phase(first, timeout=120)["phase"] == "Succeeded"
    slow_pods = NEVER_READY
    bosun.apply(app("slow", image="example.com/web:2", podAnnotations=slow_pods))

    def running() -> list[str]:  # the edit's operation rolling out (a configure, a deploy: what the edit asks)
        mine = [o for o in bosun.list("operations") if o["spec"]["target"]["name"] == "slow"]
        return [o["metadata"]["name"] for o in mine if (o.get("status") or {}).get("phase") == "Running"]

    deploy = wait_for(running, timeout=60, what="the edit's operation to run")[0]
    viewer = user_with_role(api, cluster, bosun.namespace, "view", "get operations.bosun.dev")
    as_viewer, as_admin = Served(cluster, bosun.namespace, viewer), Served(cluster, bosun.namespace)
    path = f"/ns/{bosun.namespace}/operations/{deploy}"
    try:
        code, seen, _ = as_viewer.get(path)
        assert code == 200 and "data-events" in seen and "<form method=post" not in seen  # may read, not cancel
        assert first_event(as_viewer, f"{path}/events") == "event: line"  # the log, live
        code, refused = as_viewer.post(f"{path}/cancel", {"token": as_viewer.token})
        assert code == 403 and "forbidden" in refused.lower(), refused  # the API server said no, not the page

        code, offered, _ = as_admin.get(path)
        assert code == 200 and "<form method=post" in offered and as_admin.token in offered
        assert as_admin.post(f"{path}/cancel", {"token": "forged"})[0] == 403  # another site's form
        assert bosun.status(deploy).get("phase") == "Running"
        code, _ = as_admin.post(f"{path}/cancel", {"token": as_admin.token})
        assert code == 303
        assert bosun.wait_phase(deploy, timeout=120)["phase"] == "Cancelled"
    finally:
        as_viewer.close()
        as_admin.close()


def test_in_the_cluster_each_request_acts_with_the_token_its_proxy_forwards(
    bosun: Bosun, cluster: LocalCluster, api: client.ApiClient, core: client.CoreV1Api
) -> None:
    """The chart's dashboard (behind oauth2-proxy, say) holds no rights: with no forwarded token it
    serves nothing, and with one it sees what that token may see, and nothing more."""
    from kubernetes import config as kube_config

    bosun.app("web")
    core.create_namespaced_service_account(bosun.namespace, {"metadata": {"name": "reader"}})
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
        bosun.namespace,
        {
            "metadata": {"name": "reader-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": bosun.namespace}],
        },
    )
    token = core.create_namespaced_service_account_token(
        "reader", bosun.namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    configuration = client.Configuration()
    kube_config.load_kube_config(str(cluster.kubeconfig), cluster.context, client_configuration=configuration)
    server = dashboard.serve(port=0, forwarded=configuration)
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def get(path: str, token: str = "") -> tuple[int, str]:
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    try:
        code, page = get(f"/ns/{bosun.namespace}")
        assert code == 401 and "no credentials came with this request" in page
        wait_for(lambda: get(f"/ns/{bosun.namespace}", token)[0] == 200, timeout=30, what="the reader's view")
        assert f"/ns/{bosun.namespace}/apps/web" in get(f"/ns/{bosun.namespace}", token)[1]
        code, refused = get("/ns/kube-system", token)  # not the reader's namespace
        assert code == 403 and "You may not list apps.bosun.dev in namespace kube-system" in refused, refused
        code, page = get(f"/ns/{bosun.namespace}", "not-a-token")
        assert code == 502 and "unauthorized" in page.lower(), (code, page)
    finally:
        server.shutdown()


def test_what_people_wrote_is_shown_as_text_and_a_stranger_learns_nothing(bosun: Bosun, cluster: LocalCluster) -> None:
    bosun.apply(app("web"))
    deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the App's deploy")[0]
    assert bosun.wait_phase(deploy, timeout=120)["phase"] == "Succeeded"
    hostile = '<script>alert("owned")</script>'
    bosun.operation("evil", "web", "deploy", parameters={"image": hostile})  # refused: in its message and log
    assert bosun.wait_phase("evil", timeout=120)["phase"] == "Failed"
    served = Served(cluster, bosun.namespace)
    stranger = Served(cluster, bosun.namespace, "nobody-at-all")  # no RoleBinding anywhere
    try:
        code, page, headers = served.get(f"/ns/{bosun.namespace}/operations/evil")
        assert code == 200 and hostile not in page and "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page
        policy = headers["Content-Security-Policy"]
        nonce = policy.split("'nonce-")[1].split("'")[0]
        assert "default-src 'none'" in policy and f"<script nonce={nonce}>" in page  # only its own script runs
        assert page.count("<script") == 1
        for path in (
            f"/ns/{bosun.namespace}",
            f"/ns/{bosun.namespace}/apps/web",
            f"/ns/{bosun.namespace}/operations/evil",
        ):
            code, seen, _ = stranger.get(path)
            assert code == 403 and f"in namespace {bosun.namespace}" in seen, (path, code, seen)
            assert "web" not in seen.replace("webkit", "") and "evil" not in seen and deploy not in seen, (path, seen)
        code, seen, _ = stranger.get(f"/ns/{bosun.namespace}/reports")
        assert code == 403 and "bosun-activity" not in seen, seen  # the API server's own refusal, no report names
    finally:
        served.close()
        stranger.close()


# In a real browser: Debian's Chromium, driven by Playwright. `BOSUN_SCREENSHOTS=DIR` keeps the
# screenshots of the main pages there (the README's come from `BOSUN_SCREENSHOTS=docs/images`).


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: hack/bootstrap installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:  # each launch gets a fresh profile of its own
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()


def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("BOSUN_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def serve(cluster: LocalCluster, namespace: str, user: str | None = None) -> tuple[Any, str]:
    conn = commands.connect(str(cluster.kubeconfig), cluster.context, namespace, user)
    server = dashboard.serve(dashboard.Cluster(conn))
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def running_op(bosun: Bosun, target: str) -> str:
    def running() -> list[str]:
        mine = [o for o in bosun.list("operations") if o["spec"]["target"]["name"] == target]
        return [o["metadata"]["name"] for o in mine if (o.get("status") or {}).get("phase") == "Running"]

    return wait_for(running, timeout=60, what=f"an operation of {target} to run")[0]


def test_a_viewer_follows_an_operation_live_downloads_its_log_and_report_and_cannot_cancel(
    bosun: Bosun, cluster: LocalCluster, api: client.ApiClient, browser: Any, tmp_path: Path
) -> None:
    bosun.apply(app("web"))
    first = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the first deploy")[0]
    assert bosun.wait_phase(first, timeout=120)["phase"] == "Succeeded"
    viewer = user_with_role(api, cluster, bosun.namespace, "view", "get operations.bosun.dev")
    server, base = serve(cluster, bosun.namespace, viewer)
    page = browser.new_page(accept_downloads=True)
    try:
        bosun.apply(app("web", image="example.com/web:2", podAnnotations=SLOW_PODS))
        deploy = wait_for(lambda: [o for o in ops_of(bosun, "web", "deploy") if o != first], what="the edit's deploy")[
            0
        ]
        with page.expect_request(lambda asked: f"/operations/{deploy}/events?from=" in asked.url):
            page.goto(f"{base}/ns/{bosun.namespace}/operations/{deploy}")  # at once: it has barely begun
        at_load = page.inner_text("#log").count("\n")

        def grew_live() -> bool:  # more lines while the page still follows the stream, before any reload
            return page.locator("#log[data-events]").count() == 1 and page.inner_text("#log").count("\n") > at_load

        wait_for(grew_live, timeout=30, interval=0.1, what="log lines to arrive on the open page")
        assert page.inner_text("#log").count("operation started") == 1  # the stream sends only what follows
        page.goto(f"{base}/ns/{bosun.namespace}/apps/web")
        assert page.locator("h2", has_text="Activity").count() == 1
        assert (
            page.locator(f"a:text-is('{deploy}')").count() == 1 and page.locator(f"a:text-is('{first}')").count() == 1
        )
        page.screenshot(path=str(shots(tmp_path) / "dashboard-activity.png"), full_page=True)

        page.goto(f"{base}/ns/{bosun.namespace}/operations/{deploy}")
        assert page.locator("form button", has_text="Cancel").count() == 0  # a viewer may not cancel
        assert page.locator("#log[data-events]").count() == 1  # still following the log live
        page.screenshot(path=str(shots(tmp_path) / "dashboard-operation-running.png"), full_page=True)
        # The stream's end reloads the page: the operation ended, its whole log is there.
        page.wait_for_selector("#log:not([data-events])", timeout=120_000)
        assert "operation succeeded" in page.inner_text("#log")
        assert page.locator("svg[aria-label='timeline of the steps'] rect").count() >= 4
        page.screenshot(path=str(shots(tmp_path) / "dashboard-operation.png"), full_page=True)

        with page.expect_download() as got:
            page.click("text=Download log")
        downloaded = Path(got.value.path()).read_text()
        told = kubectl_bosun(cluster, "logs", deploy, "--timestamps", "-n", bosun.namespace, "--as", viewer)
        assert told.returncode == 0 and downloaded == told.stdout, (downloaded[-300:], told.stdout[-300:])

        week = this_week()
        page.goto(f"{base}/ns/{bosun.namespace}/reports")
        wait_for(
            lambda: page.reload() or page.locator(f"text={week}").count() == 1, timeout=60, what="the week's report"
        )
        with page.expect_download() as got:
            page.click("text=download CSV")
        csv = Path(got.value.path()).read_text()
        told = kubectl_bosun(cluster, "activity", "--week", week, "-n", bosun.namespace, "--as", viewer)
        assert told.returncode == 0 and csv == told.stdout and deploy in csv, (csv[-300:], told.stdout[-300:])
    finally:
        page.close()
        server.shutdown()


def test_an_editor_cancels_from_the_page_and_a_stranger_sees_only_the_403_page(
    bosun: Bosun, cluster: LocalCluster, api: client.ApiClient, browser: Any, tmp_path: Path
) -> None:
    bosun.apply(app("slow"))
    first = wait_for(lambda: ops_of(bosun, "slow", "deploy"), what="the first deploy")[0]
    assert bosun.wait_phase(first, timeout=120)["phase"] == "Succeeded"
    bosun.apply(app("slow", image="example.com/web:2", podAnnotations=NEVER_READY))
    deploy = running_op(bosun, "slow")
    editor = user_with_role(api, cluster, bosun.namespace, "edit", "patch operations.bosun.dev")
    server, base = serve(cluster, bosun.namespace, editor)
    stranger_server, stranger_base = serve(cluster, bosun.namespace, "nobody-at-all")
    page = browser.new_page()
    try:
        page.goto(f"{base}/ns/{bosun.namespace}/operations/{deploy}")
        page.click("form button:text('Cancel')")
        # Back on the page after the cancel; the stream's end reloads it once the rollback is over.
        page.wait_for_selector("#log:not([data-events])", timeout=120_000)
        facts = page.inner_text("table")
        assert "Cancelled" in facts and "Succeeded" in facts, facts  # cancelled, its rollback succeeded
        assert bosun.status(deploy)["phase"] == "Cancelled"

        page.goto(f"{stranger_base}/ns/{bosun.namespace}/apps/slow")
        assert page.locator("h1").inner_text() == "403"
        text = page.inner_text("main")
        assert f"list apps.bosun.dev in namespace {bosun.namespace}" in text and "slow" not in text, text
        page.screenshot(path=str(shots(tmp_path) / "dashboard-forbidden.png"), full_page=True)
    finally:
        page.close()
        server.shutdown()
        stranger_server.shutdown()
