"""The admin's freshness fields, stale_after_seconds edits, alerts, nodes, pictures, metrics."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from scheduler.health_watch import HealthWatch
from shared import alerts
from shared.freshness import HEALTHS
from tests.support.admin import JOB, admin_client, csrf_token
from tests.support.health import add_run, enabled_now

FIELDS = {"health", "last_success_at", "consecutive_failures", "stale_after_seconds"}


@pytest.fixture(autouse=True)
def _fresh_schedules(engine):
    enabled_now(engine)


@pytest.fixture
def client(settings):
    with admin_client(settings) as c:
        yield c


def test_jobs_carry_health_fields(client, engine):
    (job,) = [j for j in client.get("/api/jobs").json() if j["name"] == JOB]
    assert FIELDS <= set(job)
    assert job["health"] == "new" and job["last_success_at"] is None
    assert job["stale_after_seconds"] == 240  # */2 * * * *: twice two minutes
    add_run(engine, "succeeded")
    add_run(engine, "failed", error="boom")
    add_run(engine, "discarded", error="cancelled by admin")
    add_run(engine, "discarded", error="boom again")
    job = client.get(f"/api/jobs/{JOB}").json()
    assert job["health"] == "failing" and job["consecutive_failures"] == 2
    assert job["last_success_at"] is not None


def test_patch_stale_after_seconds_validates_and_stores(client, engine):
    assert (
        client.patch(f"/api/jobs/{JOB}", json={"stale_after_seconds": 3600}).json()[
            "stale_after_seconds"
        ]
        == 3600
    )
    for bad in (59, "600", True, 1.5, 10**12):
        answer = client.patch(f"/api/jobs/{JOB}", json={"stale_after_seconds": bad})
        assert answer.status_code == 422 and "stale_after_seconds" in answer.json()["error"]
    assert client.get(f"/api/jobs/{JOB}").json()["stale_after_seconds"] == 3600
    back = client.patch(f"/api/jobs/{JOB}", json={"stale_after_seconds": None}).json()
    assert back["stale_after_seconds"] == 240
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT stale_after_seconds FROM job_schedules WHERE name = :n"), {"n": JOB}
        ).scalar()
        audited = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE new_values ? 'stale_after_seconds'")
        ).scalar()
    assert stored is None and audited == 2


def test_schedule_form_sets_stale_after_and_rejects_junk(client):
    token = csrf_token(client)
    form = {"csrf_token": token, "cron": "*/2 * * * *", "timezone": "UTC", "enabled": "on"}
    saved = client.post(
        f"/jobs/{JOB}/schedule", data={**form, "stale_after_seconds": "900"}, follow_redirects=False
    )
    assert saved.status_code == 303
    assert client.get(f"/api/jobs/{JOB}").json()["stale_after_seconds"] == 900
    bad = client.post(f"/jobs/{JOB}/schedule", data={**form, "stale_after_seconds": "soon"})
    assert bad.status_code == 422 and 'value="soon"' in bad.text
    assert client.get(f"/api/jobs/{JOB}").json()["stale_after_seconds"] == 900


def test_a_stale_job_shows_its_badge_and_the_pictures(client, engine):
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE job_schedules SET stale_after_seconds = 60,"
                " enabled_at = now() - interval '2 minutes' WHERE name = :n"
            ),
            {"n": JOB},
        )
    add_run(engine, "discarded", error="cancelled by admin")
    add_run(engine, "discarded", error="RuntimeError: boom")
    page = client.get("/jobs").text
    assert 'data-health="stale"' in page and "last success never" in page
    assert '<svg class="spark"' in page and "1 failed" in page
    detail = client.get(f"/jobs/{JOB}").text
    chart = re.search(r'<svg class="chart".*?</svg>', detail, re.S).group(0)
    assert 'role="img"' in chart and "Last 2 runs" in chart
    assert "run-failed" in chart and "run-cancelled" in chart and "hatch" in chart
    assert "<script" not in detail.split("</head>", 1)[1]  # no inline script (CSP)


def test_alerts_api_and_page_show_delivery_state(client, settings, engine):
    watch = HealthWatch(settings, engine, lambda: None)
    add_run(engine, "discarded", error="boom")
    assert watch.evaluate(None) == 1
    with engine.begin() as conn:
        (alert,) = alerts.list_alerts(conn)
        target = {"target": "https://hooks.example.com/serv…", "attempts": 2}
        alerts.record_attempt(
            conn,
            alert.id,
            {"k": {**target, "delivered_at": None, "last_error": "HTTP 500 Internal"}},
            delivered=False,
            last_error="https://hooks.example.com/serv…: HTTP 500 Internal",
            retry_in_seconds=30,
        )
    (row,) = client.get("/api/alerts?limit=5").json()
    assert {
        "id",
        "job_name",
        "event",
        "created_at",
        "delivered_at",
        "attempts",
        "last_error",
    } <= set(row)
    assert row["event"] == "job.failing" and row["attempts"] == 1 and row["delivered_at"] is None
    assert client.get("/api/alerts?limit=0").status_code == 422
    page = client.get("/alerts").text
    assert "HTTP 500 Internal" in page and "hooks.example.com" in page and "retrying" in page


def test_nodes_page_lists_schedulers_and_workers(client, engine):
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO scheduler_nodes (node, role) VALUES ('sched-1', 'leader');"
                "INSERT INTO worker_nodes (worker, node, last_seen_at)"
                " VALUES ('w-1/12/ab', 'w-1', now() - interval '1 hour')"
            )
        )
    page = client.get("/nodes").text
    assert 'data-role="leader"' in page and "sched-1" in page
    assert "w-1/12/ab" in page and "presumed dead" in page and "No live worker" in page


def test_metrics_export_per_job_health(client, engine):
    add_run(engine, "succeeded")
    add_run(engine, "discarded", error="boom")
    body = client.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    job = (("job_name", JOB),)
    health = {h: samples[("srjobs_job_health", (("health", h), *job))] for h in HEALTHS}
    assert health == {"paused": 0, "stale": 0, "failing": 1, "new": 0, "ok": 0}
    assert samples[("srjobs_job_consecutive_failures", job)] == 1
    assert samples[("srjobs_job_last_success_timestamp_seconds", job)] > 1.7e9
    assert samples[("srjobs_workers_alive", ())] == 0
    assert "# TYPE srjobs_admin_http_request_duration_seconds histogram" in body
