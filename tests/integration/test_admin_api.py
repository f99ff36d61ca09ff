"""The JSON API against a real database: every route, status code and error rule."""

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from shared import audit, runs
from tests.support.admin import JOB, admin_client


@pytest.fixture
def client(settings):
    with admin_client(settings) as c:
        yield c


def add_runs(engine, count, job=JOB, state="succeeded"):
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, scheduled_at)"
                " SELECT :job, 'cron', :state, now() - make_interval(mins => g)"
                " FROM generate_series(1, :n) AS g"
            ),
            {"job": job, "state": state, "n": count},
        )


def schedule_row(engine):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT cron, timezone, enabled FROM job_schedules WHERE name = :n"), {"n": JOB}
        ).one()


def test_healthz_readyz_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "ready": True,
        "database": "ok",
        "redis": "ok",
    }
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/jobs", "/api/jobs/{name}", "/api/jobs/{name}/runs", "/api/runs/{id}"):
        assert path in doc["paths"]
    assert set(doc["paths"]["/api/jobs/{name}/runs"]["post"]["responses"]) >= {"202", "409", "415"}


def test_list_and_get_jobs(client):
    jobs = client.get("/api/jobs").json()
    assert [j["name"] for j in jobs] == [JOB]
    job = jobs[0]
    for key in ("actor", "cron", "timezone", "enabled", "description", "next_run_at", "last_run"):
        assert key in job
    assert job["cron"] == "*/2 * * * *" and job["description"] == "Every 2 minutes"
    assert datetime.fromisoformat(job["next_run_at"]).utcoffset() is not None
    assert job["last_run"] is None
    assert client.get(f"/api/jobs/{JOB}").json()["name"] == JOB
    missing = client.get("/api/jobs/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_patch_changes_the_schedule_and_records_who_and_what(client, engine):
    answer = client.patch(
        f"/api/jobs/{JOB}", json={"cron": "0 3 * * *", "timezone": "Europe/Berlin"}
    )
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["cron"] == "0 3 * * *" and job["timezone"] == "Europe/Berlin"
    assert job["description"] == "At 03:00 (Europe/Berlin)"
    next_run = datetime.fromisoformat(job["next_run_at"])
    assert next_run.astimezone(ZoneInfo("Europe/Berlin")).hour == 3
    assert client.patch(f"/api/jobs/{JOB}", json={"enabled": False}).json()["enabled"] is False
    assert tuple(schedule_row(engine)) == ("0 3 * * *", "Europe/Berlin", False)
    with engine.connect() as conn:
        entries = audit.list_for_job(conn, JOB)
    assert [e.action for e in entries] == ["schedule.update", "schedule.update"]
    assert entries[0].old_values == {"enabled": True} and entries[0].new_values == {
        "enabled": False
    }
    assert entries[1].old_values == {"cron": "*/2 * * * *", "timezone": "UTC"}
    assert entries[1].who == "anonymous@testclient"
    # An empty change is fine and records nothing.
    assert client.patch(f"/api/jobs/{JOB}", json={}).status_code == 200
    with engine.connect() as conn:
        assert len(audit.list_for_job(conn, JOB)) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cron": "61 * * * *"}, "minute"),
        ({"cron": "* * * *"}, "5 fields"),
        ({"cron": "@every 0s"}, "at least 1s"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"cron": 5}, "string"),
        ({"enabled": "yes"}, "true or false"),
        ({"enabled": None}, "true or false"),
        ({"owner": "me"}, "unknown field"),
        ({"cron": "*/5 " + "*" * 300}, "longer than"),
        ({"timezone": "Europe/" + "x" * 100}, "longer than"),
        ([], "JSON object"),
        ("*/5 * * * *", "JSON object"),
    ],
)
def test_patch_rejects_bad_input_and_stores_nothing(client, engine, body, message):
    before = tuple(schedule_row(engine))
    answer = client.patch(f"/api/jobs/{JOB}", json=body)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"]
    assert tuple(schedule_row(engine)) == before
    with engine.connect() as conn:
        assert audit.list_for_job(conn, JOB) == []


def test_mutations_need_json(client, engine):
    before = tuple(schedule_row(engine))
    for method, path in (("PATCH", f"/api/jobs/{JOB}"), ("POST", f"/api/jobs/{JOB}/runs")):
        form = client.request(
            method,
            path,
            content=b"cron=*",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415 and "application/json" in form.json()["error"]
        plain = client.request(method, path, content=b"{}", headers={"content-type": "text/plain"})
        assert plain.status_code == 415
        missing = client.request(method, path, content=b"{}")
        assert missing.status_code == 415
        broken = client.request(
            method, path, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400 and "JSON" in broken.json()["error"]
        empty = client.request(
            method, path, content=b"", headers={"content-type": "application/json"}
        )
        assert empty.status_code == 400
        huge = client.request(
            method,
            path,
            content=b'{"cron": "' + b"*" * 70_000 + b'"}',
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413
        deep = client.request(
            method, path, content=b"[" * 50_000, headers={"content-type": "application/json"}
        )
        assert deep.status_code == 400
    assert tuple(schedule_row(engine)) == before
    with engine.connect() as conn:
        assert runs.list_runs(conn, JOB) == []


def test_unknown_job_on_every_job_route(client):
    assert client.patch("/api/jobs/nope", json={"enabled": False}).status_code == 404
    assert client.post("/api/jobs/nope/runs", json={}).status_code == 404
    assert client.get("/api/jobs/nope/runs").status_code == 404


def test_run_now_then_conflict(client, engine):
    first = client.post(f"/api/jobs/{JOB}/runs", json={})
    assert first.status_code == 202, first.text
    run = first.json()
    assert run["trigger"] == "manual" and run["state"] == "enqueued" and run["enqueued_at"]
    second = client.post(f"/api/jobs/{JOB}/runs", json={})
    assert second.status_code == 409
    assert second.json()["run"]["id"] == run["id"] and second.json()["error"]
    with engine.connect() as conn:
        assert [r.id for r in runs.list_runs(conn, JOB)] == [run["id"]]
        entries = audit.list_for_job(conn, JOB)
    assert [(e.action, e.new_values) for e in entries] == [("run.manual", {"run_id": run["id"]})]
    # Once it finished, a new one may start.
    with engine.begin() as conn:
        runs.start_run(conn, run["id"], 1, "w1")
        runs.mark_finished(conn, run["id"], "succeeded")
    assert client.post(f"/api/jobs/{JOB}/runs", json={}).status_code == 202
    assert client.get(f"/api/runs/{run['id']}").json()["state"] == "succeeded"


def test_run_now_with_the_broker_down_leaves_the_run_pending(settings, engine):
    down = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")
    with admin_client(down) as client:
        answer = client.post(f"/api/jobs/{JOB}/runs", json={})
        assert answer.status_code == 202 and answer.json()["state"] == "pending"
        assert client.get("/readyz").status_code == 503
        assert client.get("/readyz").json()["redis"] != "ok"


def test_history_pages_filters_and_validation(client, engine):
    add_runs(engine, 120)
    add_runs(engine, 3, state="failed")
    first = client.get(f"/api/jobs/{JOB}/runs").json()
    assert len(first) == 50
    ids = [r["id"] for r in first]
    assert ids == sorted(ids, reverse=True)
    second = client.get(f"/api/jobs/{JOB}/runs", params={"before": ids[-1], "limit": 500}).json()
    assert len(second) == 73 and second[0]["id"] == ids[-1] - 1
    failed = client.get(f"/api/jobs/{JOB}/runs", params={"state": "failed"}).json()
    assert [r["state"] for r in failed] == ["failed"] * 3
    assert len(client.get(f"/api/jobs/{JOB}/runs", params={"limit": 1}).json()) == 1
    for params in (
        {"limit": 0},
        {"limit": 501},
        {"limit": "x"},
        {"state": "done"},
        {"before": "abc"},
        {"before": 2**64},
    ):
        answer = client.get(f"/api/jobs/{JOB}/runs", params=params)
        assert answer.status_code == 422 and answer.json()["error"], params


def test_get_run(client, engine):
    add_runs(engine, 1, state="failed")
    with engine.connect() as conn:
        run = runs.list_runs(conn, JOB)[0]
    answer = client.get(f"/api/runs/{run.id}").json()
    for key in ("id", "job_name", "trigger", "state", "scheduled_at", "enqueued_at", "started_at"):
        assert key in answer
    assert answer["finished_at"] is None and answer["error"] is None and answer["node"] is None
    assert client.get("/api/runs/999999").status_code == 404
    assert client.get("/api/runs/abc").status_code == 404
    assert client.get(f"/api/runs/{'9' * 40}").status_code == 404


def test_scheduler_status_and_stale_leader(client, engine):
    assert client.get("/api/scheduler").json()["leader"] is None
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO scheduler_nodes (node, role, last_seen_at, leader_since) VALUES"
                " ('s1', 'leader', now(), now()), ('s2', 'follower', now(), NULL)"
            )
        )
    status = client.get("/api/scheduler").json()
    assert status["leader"] == "s1"
    assert [(n["node"], n["role"]) for n in status["nodes"]] == [
        ("s1", "leader"),
        ("s2", "follower"),
    ]
    assert all(datetime.fromisoformat(n["last_seen_at"]) for n in status["nodes"])
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE scheduler_nodes SET last_seen_at = now() - interval '30 seconds'"
                " WHERE node = 's1'"
            )
        )
    assert client.get("/api/scheduler").json()["leader"] is None
    page = client.get("/scheduler")
    assert page.status_code == 200 and "No leader seen recently" in page.text


def test_preview(client):
    ok = client.get("/api/preview", params={"cron": "30 2 * * *", "timezone": "America/New_York"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["description"] == "At 02:30 (America/New_York)"
    times = [datetime.fromisoformat(t) for t in body["next_fire_times"]]
    assert len(times) == 5 and all((t.hour, t.minute) == (2, 30) for t in times)
    bad = client.get("/api/preview", params={"cron": "* * *"})
    assert bad.status_code == 422 and "5 fields" in bad.json()["error"]


def test_metrics_label_requests_by_route_template(client):
    client.get(f"/api/jobs/{JOB}")
    client.get("/api/jobs/other")
    body = client.get("/metrics").text
    assert (
        'srjobs_admin_http_request_duration_seconds_count{method="GET",'
        'route="/api/jobs/{name}",status="200"} 1.0' in body
    )
    assert 'route="/api/jobs/{name}",status="404"} 1.0' in body
    assert "/api/jobs/other" not in body


def test_health_with_the_database_down(settings):
    gone = settings.database_url.rsplit("/", 1)[0] + "/srjobs_no_such_database"
    with admin_client(dataclasses.replace(settings, database_url=gone)) as client:
        assert client.get("/healthz").status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] != "ok" and ready.json()["redis"] == "ok"
