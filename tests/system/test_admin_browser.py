"""A person's path through the admin in headless Chromium, with a real worker running."""

import os
import shutil

import httpx
import pytest

from tests.support import browser
from tests.support.admin import JOB, start_webadmin
from tests.support.waiting import wait_for

pytestmark = pytest.mark.system


@pytest.fixture
def driver(tmp_path):
    reason = browser.missing()
    if reason:
        pytest.skip(reason)
    with browser.chromium(tmp_path / "chromium-profile") as d:
        yield d


def shoot(driver, tmp_path, name: str) -> None:
    """Keep a screenshot; SRJOBS_SCREENSHOTS names a folder to copy them to."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    target = os.environ.get("SRJOBS_SCREENSHOTS")
    if target:
        os.makedirs(target, exist_ok=True)
        shutil.copy(path, target)


def test_edit_schedule_and_run_now_in_a_browser(services, driver, tmp_path):
    from selenium.webdriver.common.by import By

    services.start("worker", "worker", "--threads", "2")
    _, base = start_webadmin(services)

    driver.get(f"{base}/jobs")
    assert "Every 2 minutes" in driver.find_element(By.CSS_SELECTOR, f'tr[data-job="{JOB}"]').text
    shoot(driver, tmp_path, "jobs")
    driver.find_element(By.LINK_TEXT, JOB).click()
    wait_for(lambda: driver.find_elements(By.ID, "cron"), 10, "the job page")

    cron = driver.find_element(By.ID, "cron")
    cron.clear()
    cron.send_keys("61 * * * *")
    message = driver.find_element(By.ID, "preview-message")
    wait_for(lambda: "out of range" in message.text, 10, "the live validation message")
    cron.clear()
    cron.send_keys("*/7 * * * *")
    wait_for(lambda: message.text == "Every 7 minutes", 10, "the live preview of the new schedule")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#preview-times li")) == 5
    driver.find_element(By.CSS_SELECTOR, "#schedule-form button[type=submit]").click()

    wait_for(lambda: "Schedule saved" in driver.page_source, 10, "the saved notice")
    facts = driver.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "*/7 * * * *" in facts and "Every 7 minutes" in facts
    times = driver.find_elements(By.CSS_SELECTOR, "#preview-times time")
    assert len(times) == 5
    minutes = [int(t.get_attribute("datetime")[14:16]) for t in times]
    assert all(m % 7 == 0 for m in minutes), minutes
    assert times[0].get_attribute("title")  # the browser's own zone on hover

    driver.find_element(By.CSS_SELECTOR, "button[data-run-now]").click()
    wait_for(lambda: "started" in driver.page_source, 10, "the run-started notice")
    run_id = driver.current_url.rsplit("started=", 1)[1]

    def state() -> str:
        rows = driver.find_elements(By.CSS_SELECTOR, f'#history tr[data-run="{run_id}"]')
        return rows[0].get_attribute("data-state") if rows else ""

    wait_for(lambda: state() == "succeeded", 60, "the run to succeed in the history", interval=0.5)
    shoot(driver, tmp_path, "job")
    audit = driver.find_element(By.CSS_SELECTOR, "table.audit").text
    assert "schedule changed" in audit and "manual run" in audit

    for page in ("runs", f"runs/{run_id}", "scheduler"):
        driver.get(f"{base}/{page}")
        assert "Not found" not in driver.title
        shoot(driver, tmp_path, page.replace("/", "-"))


def test_a_viewer_sees_no_forms_or_buttons_in_a_browser(services, driver, tmp_path):
    from selenium.webdriver.common.by import By

    env = {"ADMIN_PASSWORD": "adm-browser-pw", "VIEWER_PASSWORD": "view-browser-pw"}
    _, base = start_webadmin(services, env)
    # Sign in once with credentials in the URL; the browser then keeps them for the origin
    # (a page whose own URL holds credentials may not fetch, so continue without them).
    driver.get(base.replace("http://", "http://viewer:view-browser-pw@") + "/scheduler")
    driver.get(f"{base}/jobs")
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-job="{JOB}"]')
    assert "Every 2 minutes" in row.text
    who = driver.find_element(By.CSS_SELECTOR, "header .identity")
    assert who.get_attribute("data-role") == "viewer" and "viewer" in who.text
    assert "read-only" in who.text

    def no_actions() -> bool:
        return not driver.find_elements(By.CSS_SELECTOR, "form, button, input, select")

    # The rows are reloaded in the background with the same credentials, still without buttons.
    rows = driver.find_element(By.CSS_SELECTOR, "tbody[data-refresh]")
    wait_for(lambda: rows.get_attribute("data-last"), 15, "the jobs rows to refresh")
    assert no_actions()
    shoot(driver, tmp_path, "viewer-jobs")

    driver.find_element(By.LINK_TEXT, JOB).click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#preview-times li"), 10, "the job page")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#preview-times li")) == 5
    assert no_actions()
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-run-now], #schedule-form, #cron")
    shoot(driver, tmp_path, "viewer-job")

    for page in ("scheduler", "runs"):
        driver.get(f"{base}/{page}")
        assert "Not found" not in driver.title and no_actions()
    driver.find_element(By.LINK_TEXT, "succeeded").click()  # the state filter is plain links
    wait_for(lambda: driver.current_url.endswith("/runs?state=succeeded"), 10, "the filter")
    assert no_actions()


def test_a_stale_job_shows_its_badge_and_the_run_chart(services, engine, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from sqlalchemy import text

    from tests.support.health import add_run

    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE job_schedules SET stale_after_seconds = 60,"
                " enabled_at = now() - interval '1 hour' WHERE name = :n"
            ),
            {"n": JOB},
        )
    add_run(engine, "discarded", error="RuntimeError: the view is gone")
    add_run(engine, "discarded", error="cancelled by admin")
    _, base = start_webadmin(services)

    driver.get(f"{base}/jobs")
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-job="{JOB}"]')
    badge = row.find_element(By.CSS_SELECTOR, '[data-health="stale"]')
    assert badge.is_displayed() and "stale" in badge.text
    assert "last success never" in row.text
    spark = row.find_element(By.CSS_SELECTOR, "svg.spark")
    assert spark.is_displayed() and "1 failed" in spark.get_attribute("aria-label")
    shoot(driver, tmp_path, "stale-jobs")

    driver.find_element(By.LINK_TEXT, JOB).click()
    chart = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "svg.chart"), 10, "the chart")[0]
    assert chart.is_displayed() and chart.size["width"] > 300
    assert chart.get_attribute("role") == "img"
    assert "Last 2 runs" in chart.get_attribute("aria-label")
    assert len(chart.find_elements(By.CSS_SELECTOR, "g.run-failed")) == 1
    assert len(chart.find_elements(By.CSS_SELECTOR, "g.run-cancelled")) == 1
    facts = driver.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "stale" in facts and "60 s" in facts
    shoot(driver, tmp_path, "stale-job")


def test_create_a_schedule_see_its_runs_cancel_and_retry_in_a_browser(services, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.support.runs import EXAMPLES
    from tests.support.schedulers import start_scheduler

    services.start("worker", "worker", "--threads", "4", env={"SRJOBS_JOB_MODULES": EXAMPLES})
    start_scheduler(services, "node-a")
    _, base = start_webadmin(services)

    def catalogued() -> bool:
        driver.get(f"{base}/new-schedule")
        return bool(driver.find_elements(By.CSS_SELECTOR, 'option[value="example_spin"]'))

    wait_for(catalogued, 60, "the worker's actors in the New schedule form", interval=0.5)
    driver.get(f"{base}/jobs")
    driver.find_element(By.ID, "new-job").click()
    wait_for(lambda: driver.find_elements(By.ID, "args"), 10, "the New schedule form")
    driver.find_element(By.ID, "name").send_keys("spin-in-browser")
    Select(driver.find_element(By.ID, "actor")).select_by_value("example_spin")
    assert "seconds" in driver.find_element(By.ID, "actor-params").text
    args = driver.find_element(By.ID, "args")
    args.clear()
    args.send_keys('{"seconds": 30')
    message = driver.find_element(By.ID, "args-message")
    wait_for(lambda: "not valid JSON" in message.text, 10, "the args message")
    args.send_keys(', "speed": 1}')
    wait_for(lambda: "unknown argument speed" in message.text, 10, "the unknown-argument message")
    args.clear()
    args.send_keys('{"seconds": 30}')
    wait_for(lambda: "not valid" not in message.text, 10, "the args accepted")
    cron = driver.find_element(By.ID, "cron")
    cron.clear()
    cron.send_keys("@every 5s")
    preview = driver.find_element(By.ID, "preview-message")
    wait_for(lambda: preview.text == "Every 5 seconds", 10, "the preview")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#preview-times li")) == 5
    shoot(driver, tmp_path, "job-new")
    driver.find_element(By.ID, "create-job").click()
    wait_for(lambda: "Schedule created" in driver.page_source, 10, "the created notice")
    assert '{"seconds": 30}' in driver.find_element(By.CSS_SELECTOR, "dl.facts").text

    def running_row():
        rows = driver.find_elements(By.CSS_SELECTOR, '#history tr[data-state="running"]')
        return rows[0].get_attribute("data-run") if rows else None

    run_id = wait_for(running_row, 60, "a cron run of the new schedule running", interval=0.5)
    driver.get(f"{base}/runs/{run_id}")
    driver.find_element(By.ID, "cancel-run").click()
    heading = lambda: driver.find_element(By.CSS_SELECTOR, "#run-detail h1").text  # noqa: E731
    wait_for(lambda: "discarded" in heading(), 15, "the run to show discarded", interval=0.3)
    assert "cancelled" in driver.find_element(By.CSS_SELECTOR, "pre.error-box").text
    shoot(driver, tmp_path, "run-cancelled")

    # Stop the schedule firing so that its retry can start (one active run at a time).
    driver.get(f"{base}/jobs/spin-in-browser")
    driver.find_element(By.ID, "enabled").click()
    driver.find_element(By.CSS_SELECTOR, "#schedule-form button[type=submit]").click()
    wait_for(lambda: "Schedule saved" in driver.page_source, 10, "pausing")
    # The runs fired before the pause take 30 s each, 4 at a time: cancel them through the
    # JSON API rather than wait for them, however many piled up.
    with httpx.Client(base_url=base, timeout=10) as http:

        def none_active() -> bool:
            query = {"job": "spin-in-browser", "limit": 500}
            found = http.get("/api/runs", params=query).json()
            active = [
                r for r in found if r["state"] in ("pending", "enqueued", "running", "failed")
            ]
            for run in active:
                http.post(f"/api/runs/{run['id']}/cancel", json={})
            return not active

        wait_for(none_active, 30, "the other runs cancelled", interval=0.5)

    # One click: the form's answer is a redirect to the new run's page, which may still be
    # loading when click() returns (clicking again would ask for a second retry: 409).
    driver.get(f"{base}/runs/{run_id}")
    driver.find_element(By.ID, "retry-run").click()
    wait_for(lambda: "retries run" in driver.page_source, 15, "the retry's page", interval=0.2)
    assert driver.find_element(By.ID, "retry-of").get_attribute("href").endswith(f"/runs/{run_id}")
    shoot(driver, tmp_path, "run-retry")

    driver.set_window_size(1280, 900)
    driver.get(f"{base}/runs?job=spin-in-browser")
    assert driver.find_elements(By.CSS_SELECTOR, f'tr[data-run="{run_id}"]')
    wide = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert wide[0] <= wide[1], wide
    shoot(driver, tmp_path, "runs-1280")

    driver.get(f"{base}/jobs/spin-in-browser")
    driver.find_element(By.ID, "delete-job").click()
    driver.find_element(By.ID, "confirm-delete").click()
    wait_for(lambda: "Schedule deleted" in driver.page_source, 10, "the deleted notice")
