"""Runtime schedules, the actor catalogue, run search, cancel and retry through the JSON API,
against a real database and Redis."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from shared import audit, runs
from tests.support.admin import JOB, admin_client

VIEW_ACTOR = "refresh_materialized_view"


@pytest.fixture
def client(settings):
    with admin_client(settings) as c:
        yield c


def new_job(**fields):
    body = {"name": "nightly-views", "actor": VIEW_ACTOR, "cron": "*/5 * * * *"}
    body["args"] = {"view": "otel_trace_summaries"}
    body.update(fields)
    return body


def schedule_names(engine):
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT name FROM job_schedules")).scalars())


def audit_actions(engine, job):
    with engine.connect() as conn:
        return [e.action for e in audit.list_for_job(conn, job)]


def add_run(engine, job=JOB, state="succeeded", trigger="manual", args="{}", created=None):
    with engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, scheduled_at, args, created_at)"
                " VALUES (:job, :trigger, :state,"
                "  CASE WHEN :trigger = 'cron' THEN now() - make_interval(secs => random()) END,"
                "  CAST(:args AS jsonb), COALESCE(:created, now()))"
                " RETURNING id"
            ),
            {"job": job, "trigger": trigger, "state": state, "args": args, "created": created},
        ).scalar_one()


def test_actors_lists_the_catalogue(client):
    found = {a["name"]: a for a in client.get("/api/actors").json()}
    assert found[VIEW_ACTOR]["params"] == [{"name": "view", "required": True}]
    assert found[VIEW_ACTOR]["queue"] == "default" and found[VIEW_ACTOR]["description"]
    assert found["refresh_trace_summaries"]["params"] == []


def test_create_get_list_and_delete_a_runtime_schedule(client, engine):
    answer = client.post("/api/jobs", json=new_job(timezone="Europe/Berlin"))
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["name"] == "nightly-views" and job["actor"] == VIEW_ACTOR
    assert job["args"] == {"view": "otel_trace_summaries"} and job["declared"] is False
    assert job["timezone"] == "Europe/Berlin" and job["enabled"] is True
    assert job["description"].startswith("Every 5 minutes") and job["next_run_at"]
    assert client.get("/api/jobs/nightly-views").json()["args"] == job["args"]
    listed = {j["name"]: j for j in client.get("/api/jobs").json()}
    assert listed[JOB]["declared"] is True and listed[JOB]["args"] == {}
    assert listed["nightly-views"]["declared"] is False

    again = client.post("/api/jobs", json=new_job(cron="@hourly"))
    assert again.status_code == 409 and "already exists" in again.json()["error"]
    assert client.get("/api/jobs/nightly-views").json()["cron"] == "*/5 * * * *"

    run = add_run(engine, job="nightly-views")
    assert client.delete("/api/jobs/nightly-views").status_code == 204
    assert client.get("/api/jobs/nightly-views").status_code == 404
    assert client.delete("/api/jobs/nightly-views").status_code == 404
    assert client.get(f"/api/runs/{run}").json()["job_name"] == "nightly-views"  # runs stay
    assert audit_actions(engine, "nightly-views") == ["schedule.delete", "schedule.create"]


def test_a_declared_job_cannot_be_deleted(client, engine):
    answer = client.delete(f"/api/jobs/{JOB}")
    assert answer.status_code == 409 and "pause it instead" in answer.json()["error"]
    assert JOB in schedule_names(engine)


def test_several_schedules_of_one_actor_with_their_own_args(client, engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE MATERIALIZED VIEW second_view AS SELECT 1 AS x"))
    for name, view in (("views.a", "otel_trace_summaries"), ("views.b", "public.second_view")):
        body = new_job(name=name, args={"view": view})
        assert client.post("/api/jobs", json=body).status_code == 201
    jobs = {j["name"]: j["args"] for j in client.get("/api/jobs").json()}
    assert jobs["views.a"] == {"view": "otel_trace_summaries"}
    assert jobs["views.b"] == {"view": "public.second_view"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (new_job(name=""), "name"),
        (new_job(name="a b"), "name"),
        (new_job(name="x" * 201), "name"),
        (new_job(name="semi;colon"), "name"),
        (new_job(name="ünïcode"), "name"),
        (new_job(name=5), "name"),
        ({"actor": VIEW_ACTOR, "cron": "@hourly"}, "name"),
        (new_job(actor="no_such_actor"), "actor"),
        (new_job(actor=None), "actor"),
        (new_job(args=[]), "args"),
        (new_job(args="view=x"), "args"),
        (new_job(args={"view": "v", "extra": 1}), "args"),
        (new_job(args={}), "args"),
        (new_job(args={"view": "v" * 17_000}), "args"),
        (new_job(cron="61 * * * *"), "minute"),
        (new_job(cron="* * *"), "5 fields"),
        (new_job(timezone="Mars/Olympus"), "time zone"),
        (new_job(enabled="yes"), "enabled"),
        (new_job(owner="me"), "unknown field"),
        ([], "JSON object"),
    ],
)
def test_create_rejects_bad_input_naming_the_field_and_stores_nothing(client, engine, body, field):
    before = schedule_names(engine)
    answer = client.post("/api/jobs", json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["error"]
    assert schedule_names(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0


def test_args_over_16_kib_is_measured_as_json():
    from shared.actors import ActorInfo, Param, check_args
    from shared.errors import InvalidInput

    actor = ActorInfo("a", "", "default", (Param("view", True),))
    assert check_args(actor, {"view": "v" * (16 * 1024 - 20)})
    with pytest.raises(InvalidInput, match="16 KiB"):
        check_args(actor, {"view": "v" * (16 * 1024)})


def test_create_needs_json(client, engine):
    form = client.post(
        "/api/jobs",
        content=b"name=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    assert client.request("DELETE", f"/api/jobs/{JOB}").status_code == 409
    assert schedule_names(engine) == [JOB]


def test_patch_args_is_validated_against_the_actor(client, engine):
    assert client.post("/api/jobs", json=new_job()).status_code == 201
    bad = client.patch("/api/jobs/nightly-views", json={"args": {"view": "x", "other": 1}})
    assert bad.status_code == 422 and "args" in bad.json()["error"]
    assert client.patch("/api/jobs/nightly-views", json={"args": 3}).status_code == 422
    ok = client.patch("/api/jobs/nightly-views", json={"args": {"view": "public.v2"}})
    assert ok.status_code == 200 and ok.json()["args"] == {"view": "public.v2"}
    with engine.connect() as conn:
        change = audit.list_for_job(conn, "nightly-views")[0]
    assert change.action == "schedule.update"
    assert change.old_values == {"args": {"view": "otel_trace_summaries"}}
    assert change.new_values == {"args": {"view": "public.v2"}}
    # The declared job takes no arguments.
    assert client.patch(f"/api/jobs/{JOB}", json={"args": {"x": 1}}).status_code == 422


def test_a_plain_sql_insert_is_a_complete_schedule(client, engine):
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO job_schedules (name, actor, cron) VALUES ('by_sql', :a, '@hourly')"),
            {"a": JOB},
        )
    job = client.get("/api/jobs/by_sql").json()
    assert (job["timezone"], job["enabled"], job["args"], job["declared"]) == (
        "UTC",
        True,
        {},
        False,
    )
    assert client.delete("/api/jobs/by_sql").status_code == 204
    with engine.begin() as conn, pytest.raises(Exception, match="args_object"):
        conn.execute(
            text(
                "INSERT INTO job_schedules (name, actor, cron, args)"
                " VALUES ('bad', 'x', '@hourly', '[1]')"
            )
        )


def test_run_now_and_cron_runs_carry_the_schedule_args(client, engine):
    assert client.post("/api/jobs", json=new_job()).status_code == 201
    run = client.post("/api/jobs/nightly-views/runs", json={}).json()
    assert run["args"] == {"view": "otel_trace_summaries"} and run["retry_of"] is None
    with engine.begin() as conn:
        cron = runs.create_cron_runs(
            conn, [("nightly-views", datetime.now(UTC))], [{"view": "public.x"}]
        )
    assert cron[0].args == {"view": "public.x"}


def test_search_runs_filters_and_pages(client, engine):
    old = datetime.now(UTC) - timedelta(days=2)
    a = add_run(engine, created=old)
    b = add_run(engine, state="discarded", trigger="cron")
    c = add_run(engine, job="other", state="failed")
    d = add_run(engine, job="other", trigger="cron")

    def ids(**params):
        answer = client.get("/api/runs", params=params)
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()]

    assert ids() == [d, c, b, a]
    assert ids(job="other") == [d, c]
    assert ids(state="discarded") == [b]
    assert ids(trigger="cron") == [d, b]
    assert ids(job="other", trigger="cron") == [d]
    assert ids(since=(old + timedelta(hours=1)).isoformat()) == [d, c, b]
    assert ids(until=(old + timedelta(hours=1)).isoformat()) == [a]
    assert ids(since="2000-01-01T00:00:00Z", until=old.isoformat()) == []
    assert ids(limit=2) == [d, c]
    assert ids(limit=2, before=c) == [b, a]
    for params in (
        {"state": "done"},
        {"trigger": "timer"},
        {"since": "yesterday"},
        {"until": "2026-13-01"},
        {"limit": 0},
        {"limit": 501},
        {"before": "x"},
        {"job": "x" * 201},
    ):
        answer = client.get("/api/runs", params=params)
        assert answer.status_code == 422 and answer.json()["error"], params


def test_cancel_a_waiting_run_discards_it_at_once(client, engine):
    pending = add_run(engine, state="pending")
    failed = add_run(engine, state="failed")
    for run_id in (pending, failed):
        answer = client.post(f"/api/runs/{run_id}/cancel", json={})
        assert answer.status_code == 202, answer.text
        run = answer.json()
        assert run["state"] == "discarded" and run["error"].startswith("cancelled")
        assert run["cancel_requested_at"] and run["finished_at"]
    # A message arriving later for it is skipped: the worker's start guard refuses it.
    with engine.begin() as conn:
        assert not runs.start_run(conn, pending, 1, "w1")
    assert client.post(f"/api/runs/{pending}/cancel", json={}).status_code == 409
    assert audit_actions(engine, JOB) == ["run.cancel", "run.cancel"]


def test_cancel_a_running_run_asks_its_worker(client, engine):
    run_id = add_run(engine, state="enqueued")
    with engine.begin() as conn:
        assert runs.start_run(conn, run_id, 1, "w1")
    answer = client.post(f"/api/runs/{run_id}/cancel", json={})
    assert answer.status_code == 202
    assert answer.json()["state"] == "running" and answer.json()["cancel_requested_at"]
    with engine.connect() as conn:
        assert runs.cancel_requested(conn, [run_id, run_id + 1000]) == [run_id]


def test_cancel_errors(client, engine):
    done = add_run(engine)
    answer = client.post(f"/api/runs/{done}/cancel", json={})
    assert answer.status_code == 409 and "finished" in answer.json()["error"]
    assert client.post("/api/runs/999999/cancel", json={}).status_code == 404
    assert client.post("/api/runs/abc/cancel", json={}).status_code == 404
    plain = client.post(f"/api/runs/{done}/cancel", content=b"{}")
    assert plain.status_code == 415


def test_retry_a_finished_run(client, engine):
    assert client.post("/api/jobs", json=new_job()).status_code == 201
    original = add_run(
        engine, job="nightly-views", state="discarded", args='{"view": "public.old"}'
    )
    answer = client.post(f"/api/runs/{original}/retry", json={})
    assert answer.status_code == 202, answer.text
    retry = answer.json()
    assert retry["id"] != original and retry["retry_of"] == original
    assert retry["trigger"] == "manual" and retry["args"] == {"view": "public.old"}
    assert retry["state"] in ("pending", "enqueued")
    # The job has an active run now: like Run now, 409 with it.
    busy = client.post(f"/api/runs/{original}/retry", json={})
    assert busy.status_code == 409 and busy.json()["run"]["id"] == retry["id"]
    assert audit_actions(engine, "nightly-views")[0] == "run.retry"


def test_retry_errors(client, engine):
    running = add_run(engine, state="running")
    answer = client.post(f"/api/runs/{running}/retry", json={})
    assert answer.status_code == 409 and "running" in answer.json()["error"]
    orphan = add_run(engine, job="deleted_job", state="succeeded")
    answer = client.post(f"/api/runs/{orphan}/retry", json={})
    assert answer.status_code == 409 and "no longer exists" in answer.json()["error"]
    assert client.post("/api/runs/999999/retry", json={}).status_code == 404
    with engine.connect() as conn:
        assert runs.list_runs(conn, "deleted_job") and len(runs.list_runs(conn)) == 2


@pytest.mark.parametrize(
    "args", [{"view": "a\x00b"}, {"view\x00": "x"}, {"view": "\ud800"}], ids=["nul", "key", "sur"]
)
def test_args_that_postgres_cannot_store_are_422(client, engine, args):
    import json

    body = json.dumps(new_job(args=args)).encode()
    answer = client.post("/api/jobs", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "args" in answer.json()["error"]
    assert schedule_names(engine) == [JOB]


def test_search_times_at_the_edge_of_the_calendar(client):
    answer = client.get("/api/runs", params={"since": "0001-01-01T00:00:00+14:00"})
    assert answer.status_code == 422
    assert client.get("/runs", params={"until": "0001-01-01T00:00:00+14:00"}).status_code == 422


def test_a_create_answers_what_a_get_of_the_job_answers(client, engine):
    fresh = client.post("/api/jobs", json=new_job(name="brand-new", cron="0 0 1 1 *"))
    assert fresh.status_code == 201
    assert fresh.json() == client.get("/api/jobs/brand-new").json()
    assert fresh.json()["last_run"] is None
    # A deleted schedule's runs stay: a new schedule of that name shows them.
    client.post("/api/jobs", json=new_job(name="again"))
    run_id = add_run(engine, job="again", state="failed")
    assert client.delete("/api/jobs/again").status_code == 204
    again = client.post("/api/jobs", json=new_job(name="again", cron="0 0 1 1 *"))
    assert again.status_code == 201
    assert again.json()["last_run"]["id"] == run_id
    assert again.json()["consecutive_failures"] == 1
    assert again.json() == client.get("/api/jobs/again").json()
