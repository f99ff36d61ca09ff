"""Auth, CSRF, security headers and the HTML pages and forms."""

import dataclasses
import re

import pytest
from sqlalchemy import text

from shared import audit, runs
from tests.support.admin import JOB, admin_client, csrf_token
from webadmin.security import CSRF_COOKIE

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(settings):
    with admin_client(settings, follow_redirects=False) as c:
        yield c


def cron_of(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT cron FROM job_schedules WHERE name = :n"), {"n": JOB}
        ).scalar()


def test_password_guards_every_route_but_healthz(settings, engine):
    locked = dataclasses.replace(settings, admin_password="s3cret", admin_user="ops")
    with admin_client(locked) as client:
        assert client.get("/healthz").status_code == 200
        for path in ("/jobs", f"/jobs/{JOB}", "/api/jobs", "/api/scheduler", "/readyz", "/metrics"):
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"].startswith("Basic")
        assert client.get("/api/jobs", auth=("ops", "wrong")).status_code == 401
        assert client.get("/api/jobs", auth=("admin", "s3cret")).status_code == 401
        denied = client.patch(f"/api/jobs/{JOB}", json={"cron": "@hourly"}, auth=("ops", "nope"))
        assert denied.status_code == 401
        assert cron_of(engine) == "*/2 * * * *"
        assert client.get("/api/jobs", auth=("ops", "s3cret")).status_code == 200
        page = client.get("/jobs", auth=("ops", "s3cret"))
        assert page.status_code == 200 and "unauthenticated" not in page.text
        client.patch(f"/api/jobs/{JOB}", json={"cron": "@hourly"}, auth=("ops", "s3cret"))
    with engine.connect() as conn:
        assert audit.list_for_job(conn, JOB)[0].who == "ops"


def test_without_a_password_only_loopback_names_reach_the_admin(client, settings, engine):
    evil = {"host": "rebound.example:8000"}
    assert client.get("/jobs", headers=evil).status_code == 403
    denied = client.patch(f"/api/jobs/{JOB}", json={"cron": "@hourly"}, headers=evil)
    assert denied.status_code == 403 and "ADMIN_PASSWORD" in denied.json()["error"]
    assert cron_of(engine) == "*/2 * * * *"
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert client.get(probe, headers=evil).status_code == 200
    assert client.get("/jobs", headers={"host": "127.0.0.1:8000"}).status_code == 200
    locked = dataclasses.replace(settings, admin_password="pw")
    with admin_client(locked) as other:
        answer = other.get("/api/jobs", headers=evil, auth=("admin", "pw"))
        assert answer.status_code == 200


def test_bound_beyond_loopback_without_a_password_answers_any_name(settings):
    # `--host 0.0.0.0` without ADMIN_PASSWORD: the operator exposed it on purpose.
    with admin_client(settings, loopback_only=False) as exposed:
        page = exposed.get("/jobs", headers={"host": "srjobs.internal:8000"})
        assert page.status_code == 200 and "ADMIN_PASSWORD" in page.text  # the banner


def test_security_headers_and_banner(client):
    page = client.get("/jobs")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"]
    assert "ADMIN_PASSWORD" in page.text  # the unauthenticated banner
    assert "<script>" not in page.text and "onclick" not in page.text
    assert client.get("/api/jobs").headers["x-frame-options"] == "DENY"
    assert client.get("/static/app.js").status_code == 200


def test_every_page_renders(client, engine):
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, JOB)
        runs.start_run(conn, run.id, 1, "w1")
        runs.mark_finished(
            conn, run.id, "discarded", error="ValueError: <boom>", traceback="Traceback...\nline 7"
        )
    jobs = client.get("/jobs")
    assert jobs.status_code == 200 and "Every 2 minutes" in jobs.text and "Run now" in jobs.text
    detail = client.get(f"/jobs/{JOB}")
    assert detail.status_code == 200 and 'name="cron"' in detail.text
    assert detail.text.count("<li><time") == 5  # next fire times
    assert "discarded" in detail.text
    assert client.get(f"/jobs/{JOB}", params={"state": "failed"}).text.count('data-run="') == 0
    assert "ValueError: &lt;boom&gt;" in client.get("/runs").text  # escaped
    run_page = client.get(f"/runs/{run.id}")
    assert "Traceback...\nline 7" in run_page.text and "<boom>" not in run_page.text
    assert client.get("/runs", params={"state": "discarded"}).text.count('data-run="') == 1
    assert client.get("/scheduler").status_code == 200
    assert client.get("/runs/12345").status_code == 404
    assert client.get("/jobs/nope").status_code == 404
    assert client.get("/jobs", params={}).status_code == 200
    assert client.get(f"/jobs/{JOB}", params={"limit": "x"}).status_code == 422
    for fragment in (
        "/fragments/jobs",
        f"/fragments/jobs/{JOB}/runs",
        "/fragments/runs",
        f"/fragments/runs/{run.id}",
    ):
        assert client.get(fragment).status_code == 200


def test_schedule_form_with_csrf(client, engine):
    token = csrf_token(client)
    answer = client.post(
        f"/jobs/{JOB}/schedule",
        data={"csrf_token": token, "cron": "@every 10s", "timezone": "UTC", "enabled": "on"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"/jobs/{JOB}?saved=1"
    assert cron_of(engine) == "@every 10s"
    shown = client.get(f"/jobs/{JOB}?saved=1").text
    assert "Schedule saved" in shown and "Every 10 seconds" in shown
    invalid = client.post(
        f"/jobs/{JOB}/schedule",
        data={"csrf_token": token, "cron": "99 * * * *", "timezone": "UTC"},
    )
    assert invalid.status_code == 422 and "out of range" in invalid.text
    assert 'value="99 * * * *"' in invalid.text  # the admin's input is kept
    assert cron_of(engine) == "@every 10s"


def test_forms_without_a_valid_csrf_token_change_nothing(client, engine):
    token = csrf_token(client)
    attempts = [
        {"cron": "@hourly", "timezone": "UTC"},
        {"csrf_token": "", "cron": "@hourly", "timezone": "UTC"},
        {"csrf_token": token + "x", "cron": "@hourly", "timezone": "UTC"},
        {"csrf_token": "abc.def", "cron": "@hourly", "timezone": "UTC"},
    ]
    for data in attempts:
        assert client.post(f"/jobs/{JOB}/schedule", data=data).status_code == 403
        assert client.post(f"/jobs/{JOB}/run", data=data).status_code == 403
    # The right token without its cookie (a cross-site post) is refused too.
    client.cookies.delete(CSRF_COOKIE)
    assert client.post(f"/jobs/{JOB}/run", data={"csrf_token": token}).status_code == 403
    # A form-encoded body is the only kind the form routes take.
    assert client.post(f"/jobs/{JOB}/run", json={"csrf_token": token}).status_code == 415
    assert cron_of(engine) == "*/2 * * * *"
    with engine.connect() as conn:
        assert runs.list_runs(conn, JOB) == [] and audit.list_for_job(conn, JOB) == []


def test_run_now_button_and_second_click(client, engine):
    token = csrf_token(client, "/jobs")
    first = client.post(f"/jobs/{JOB}/run", data={"csrf_token": token, "next": "/jobs"})
    assert first.status_code == 303 and first.headers["location"].startswith("/jobs?started=")
    second = client.post(f"/jobs/{JOB}/run", data={"csrf_token": token, "next": "https://evil"})
    assert second.status_code == 303
    assert second.headers["location"].startswith(f"/jobs/{JOB}?busy=")
    assert "already in progress" in client.get(second.headers["location"]).text
    with engine.connect() as conn:
        assert len(runs.list_runs(conn, JOB)) == 1
    assert client.post("/jobs/nope/run", data={"csrf_token": token}).status_code == 404


def test_history_page_keyset_pagination(client, engine):
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, scheduled_at)"
                " SELECT :job, 'cron', 'succeeded', now() - make_interval(mins => g)"
                " FROM generate_series(1, 60) AS g"
            ),
            {"job": JOB},
        )
    first = client.get(f"/jobs/{JOB}").text
    assert first.count('data-run="') == 50
    older = re.search(r'href="([^"]+before=(\d+))" rel="next"', first)
    assert older and int(older.group(2)) == 11
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert second.count('data-run="') == 10 and 'rel="next"' not in second
    assert "Newest" in second


def test_a_schedule_broken_by_plain_sql_is_shown_not_fatal(client, engine):
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_schedules SET cron = 'every tuesday'"))
    assert "invalid schedule" in client.get("/jobs").text
    page = client.get(f"/jobs/{JOB}")
    assert page.status_code == 200 and "invalid schedule" in page.text
    job = client.get(f"/api/jobs/{JOB}").json()
    assert job["next_run_at"] is None and job["description"].startswith("invalid schedule")
