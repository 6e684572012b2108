"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against the local
cluster and a real operator. A namespace viewer reads the Activity tab, follows a running
operation's log live to its end, downloads the whole log and the week's CSV (each compared with
what `kubectl bosun` gives) and sees no Cancel; an editor cancels a running operation from its
page and watches it roll back; a person with no access gets the 403 page and nothing else.

`BOSUN_SCREENSHOTS=DIR` keeps the screenshots of the main pages there (the README's come from
`BOSUN_SCREENSHOTS=docs/images`); otherwise they go to the test's own directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from bosun.cli import commands, dashboard
from tests.support.bosun_objects import Bosun
from tests.support.cli import kubectl_bosun
from tests.support.cluster import LocalCluster
from tests.support.databases import ops_of
from tests.support.install import apply_operator_rbac
from tests.support.operator_process import OperatorProcess, ensure_running, module_operator
from tests.support.rbac import user_with_role
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
SLOW_PODS = {"pod-ready.stage.kwok.x-k8s.io/delay": "15s"}  # KWOK: a roll-out that takes a while, then ends


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    apply_operator_rbac(cluster)
    yield from module_operator(
        cluster.kubeconfig,
        tmp_path_factory.mktemp("bosun-browser"),
        command=["-m", "bosun", "run"],
        env={"BOSUN_ACTIVITY_SECONDS": "2"},
    )


@pytest.fixture
def bosun(api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess) -> Bosun:
    ensure_running(operator)
    return Bosun(api, cluster, namespace)


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


def app(name: str, **spec: Any) -> dict[str, Any]:
    spec = {"image": "example.com/web:1", **spec}
    return {"apiVersion": "bosun.dev/v1alpha1", "kind": "App", "metadata": {"name": name}, "spec": spec}


def this_week() -> str:
    year, week, _ = datetime.now(UTC).isocalendar()
    return f"{year}-W{week:02d}"


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
        with page.expect_request(lambda asked: asked.url.endswith(f"/operations/{deploy}/events")):
            page.goto(f"{base}/ns/{bosun.namespace}/operations/{deploy}")  # at once: it has barely begun
        at_load = page.inner_text("#log").count("\n")

        def grew_live() -> bool:  # more lines while the page still follows the stream, before any reload
            return page.locator("#log[data-events]").count() == 1 and page.inner_text("#log").count("\n") > at_load

        wait_for(grew_live, timeout=30, interval=0.1, what="log lines to arrive on the open page")
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
    bosun.apply(app("slow", image="example.com/web:2", podAnnotations={"pod-ready.stage.kwok.x-k8s.io/delay": "600s"}))
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
