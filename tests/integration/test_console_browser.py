"""The web console in a real browser (Playwright driving the system's Chromium) against the real
local runner: the supervisor sees a seeded overdue ticket reach 督办 once the demo clock moves,
the targets page draws its chart, and a department's staff see their own department only.
Screenshots of every page go to the test's temporary directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.test_local_runner import RunningRunner, seeded_data

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WAIT_MS = 60_000
DAY_MINUTES = 24 * 60


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    running = RunningRunner(seeded_data(tmp_path_factory, "console"))
    try:
        running.wait_healthy()
        assert running.url("/console/") in running.output
        yield running
    finally:
        running.kill()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        # As root (containers, CI) Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


def sign_in(page, runner, user_id: str) -> None:
    page.goto("about:blank")
    page.goto(runner.url("/console/#now"))
    page.locator(f'button.demo-user[data-user="{user_id}"]').click(timeout=WAIT_MS)
    page.wait_for_selector('body[data-ready="now"], body[data-ready="centres"]', timeout=WAIT_MS)


def open_page(page, name: str) -> None:
    page.click(f'nav a[data-page="{name}"]')
    page.wait_for_selector(f'body[data-ready="{name}"]', timeout=WAIT_MS)


def api_get(runner, path: str, user_id: str) -> dict:
    import requests

    answer = requests.get(
        runner.url(path), headers={"Authorization": f"Bearer {runner.token(user_id)}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def ticket_clocks(runner, ticket_id: str) -> list[dict]:
    path = f"/clocks?subject_type=ticket&subject_id={ticket_id}"
    return api_get(runner, path, "u-supervisor-zhao")["items"]


def swept(clocks: list[dict], now: str) -> bool:
    """No open clock of the ticket is waiting for the sweep at `now`."""
    from datetime import datetime

    moment = datetime.fromisoformat(now)
    return all(
        not c["open"]
        or c["next_attention_at"] is None
        or datetime.fromisoformat(c["next_attention_at"]) > moment
        for c in clocks
    )


def move_clock_until_supervised(runner, page, ticket_id: str) -> None:
    """A day at a time (weekends and holidays fall where the calendar puts them), until the due
    sweep has taken the 督办 step on one of the ticket's clocks."""
    import requests

    for _ in range(20):
        moved = requests.post(
            runner.url("/dev/clock"), json={"advance_minutes": DAY_MINUTES}, timeout=30
        )
        assert moved.status_code == 200, moved.text
        now = moved.json()["now"]
        # The schedule pump fires the sweep on the moved clock: wait (bounded) until it has
        # dealt with every clock that fell due by now.
        for _ in range(150):
            clocks = ticket_clocks(runner, ticket_id)
            if swept(clocks, now):
                break
            page.wait_for_timeout(200)
        else:
            pytest.fail(f"the sweep did not reach the ticket's clocks: {clocks}")
        if any("supervise" in c["steps_done"] for c in clocks):
            return
    pytest.fail("no 督办 step within twenty days, long holidays included")


def canvas_has_ink(page, selector: str) -> bool:
    return page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector);
            if (!canvas || !canvas.width || !canvas.height) return false;
            const { width, height } = canvas;
            const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
            return false;
        }""",
        selector,
    )


def test_supervisor_sees_escalation_and_charts_and_a_department_sees_its_own(
    runner, browser, shots
):
    dispatched = api_get(
        runner, "/departments/dept-scjgj/tickets?state=dispatched", "u-supervisor-zhao"
    )["items"]
    assert dispatched, "the seed files a dispatched ticket for 市场监管局"
    ticket_id = dispatched[0]["ticket_id"]
    row = f'tr.work-row[data-id="{ticket_id}"]'

    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    sign_in(page, runner, "u-supervisor-zhao")
    assert page.locator(row).get_attribute("data-state") in ("on_time", "warning")
    page.screenshot(path=shots / "now-before.png", full_page=True)

    move_clock_until_supervised(runner, page, ticket_id)
    # The demo token was issued on the demo clock and has expired with the move: sign in again.
    sign_in(page, runner, "u-supervisor-zhao")
    assert page.locator(row).get_attribute("data-state") == "supervise"
    assert "督办" in page.locator(row).inner_text()
    assert page.locator('[data-count="supervise"]').inner_text() != "0"
    page.screenshot(path=shots / "now-supervised.png", full_page=True)

    page.locator(row).click()
    page.wait_for_selector("#drawer-content ol.timeline", timeout=WAIT_MS)
    assert "督办" in page.locator("#drawer-content").inner_text()
    page.screenshot(path=shots / "timeline.png", full_page=True)
    page.click("#drawer-close")

    open_page(page, "targets")
    assert canvas_has_ink(page, "#trend-chart")
    assert "好差评部门排名" in page.locator("main").inner_text()
    page.screenshot(path=shots / "targets.png", full_page=True)

    open_page(page, "centres")
    assert canvas_has_ink(page, "#centres-chart")
    assert "青浦区政务服务中心" in page.locator("main").inner_text()
    page.screenshot(path=shots / "centres.png", full_page=True)

    open_page(page, "delivery")
    delivery = page.locator("main").inner_text()
    assert "青浦区市场监督管理局" in delivery and "重试中" in delivery
    assert page.locator('[data-dead-letters="dept-scjgj"]').inner_text() == "0"
    page.screenshot(path=shots / "delivery.png", full_page=True)

    page.click("#sign-out")
    sign_in(page, runner, "u-dept-rsj")
    departments = set(
        page.locator("tr.work-row").evaluate_all("rows => rows.map(r => r.dataset.department)")
    )
    assert departments == {"dept-rsj"}
    assert page.locator(row).count() == 0
    options = page.locator("#filter-department option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert options == ["", "dept-rsj"]
    assert page.locator('nav a[data-page="centres"]').is_hidden()
    page.screenshot(path=shots / "now-department.png", full_page=True)

    # A tablet held upright: the same page, nothing cut off sideways.
    page.set_viewport_size({"width": 768, "height": 1024})
    page.screenshot(path=shots / "now-tablet.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    page.set_viewport_size({"width": 1366, "height": 900})

    # A centre's manager (值班长) sees the queue of their own centre only.
    page.click("#sign-out")
    sign_in(page, runner, "u-manager-district")
    centres = page.locator(".centre-name").evaluate_all("cells => cells.map(c => c.dataset.centre)")
    assert centres == ["qp-district"]
    assert page.locator('nav a[data-page="now"]').is_hidden()
    page.screenshot(path=shots / "centres-manager.png", full_page=True)

    assert errors == []
    context.close()
    assert sorted(p.name for p in shots.iterdir()) == [
        "centres-manager.png",
        "centres.png",
        "delivery.png",
        "now-before.png",
        "now-department.png",
        "now-supervised.png",
        "now-tablet.png",
        "targets.png",
        "timeline.png",
    ]
