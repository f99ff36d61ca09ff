"""The control plane's pages and forms: new schedule, delete with confirmation, cancel,
retry, and the run filters in the URL (in-process admin, real database)."""

import pytest
from sqlalchemy import text

from shared import runs
from tests.support.admin import JOB, admin_client, csrf_token

VIEW_ACTOR = "refresh_materialized_view"


@pytest.fixture
def client(settings):
    with admin_client(settings, follow_redirects=False) as c:
        yield c


def names(engine):
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT name FROM job_schedules")).scalars())


def form(token, **fields):
    values = {"csrf_token": token, "name": "views", "actor": VIEW_ACTOR, "cron": "@hourly"}
    values.update({"timezone": "UTC", "enabled": "on", "args": '{"view": "otel_trace_summaries"}'})
    values.update(fields)
    return values


def test_new_schedule_form_lists_the_catalogue_and_creates(client, engine):
    page = client.get("/new-schedule")
    assert page.status_code == 200
    assert f'value="{VIEW_ACTOR}"' in page.text and "view*" in page.text
    assert 'id="preview-times"' in page.text  # next fire times
    token = csrf_token(client, "/new-schedule")
    answer = client.post("/new-schedule", data=form(token))
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs/views?created=1"
    shown = client.get("/jobs/views?created=1").text
    assert "Schedule created" in shown and "otel_trace_summaries" in shown and "Delete" in shown
    assert "views" in names(engine)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"args": "{not json"}, "args is not valid JSON"),
        ({"args": "[1]"}, "args must be a JSON object"),
        ({"args": "{}"}, "needs &#39;view&#39;"),
        ({"name": "bad name"}, "name must be"),
        ({"cron": "61 * * * *"}, "out of range"),
        ({"actor": "nope"}, "unknown actor"),
    ],
)
def test_new_schedule_form_shows_the_error_and_keeps_the_input(client, engine, fields, message):
    token = csrf_token(client, "/new-schedule")
    answer = client.post("/new-schedule", data=form(token, **fields))
    assert answer.status_code == 422
    assert message in answer.text
    for value in fields.values():
        assert value.replace('"', "&#34;").replace("'", "&#39;")[:5] in answer.text
    assert names(engine) == [JOB]


def test_new_schedule_with_a_taken_name_is_409(client, engine):
    token = csrf_token(client, "/new-schedule")
    answer = client.post("/new-schedule", data=form(token, name=JOB, actor=JOB, args="{}"))
    assert answer.status_code == 409 and "already exists" in answer.text


def test_delete_asks_for_confirmation_then_deletes(client, engine):
    token = csrf_token(client, "/new-schedule")
    client.post("/new-schedule", data=form(token))
    confirm = client.get("/jobs/views/delete")
    assert confirm.status_code == 200 and "Delete views?" in confirm.text
    assert "views" in names(engine)  # asking changes nothing
    done = client.post("/jobs/views/delete", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/jobs?deleted=1"
    assert "Schedule deleted" in client.get("/jobs?deleted=1").text
    assert names(engine) == [JOB]
    assert client.post("/jobs/views/delete", data={"csrf_token": token}).status_code == 404
    assert client.post("/jobs/x/delete", data={"csrf_token": "bad"}).status_code == 403


def test_declared_jobs_offer_no_delete(client, engine):
    assert "/delete" not in client.get(f"/jobs/{JOB}").text
    assert client.get(f"/jobs/{JOB}/delete").status_code == 409
    token = csrf_token(client)
    assert client.post(f"/jobs/{JOB}/delete", data={"csrf_token": token}).status_code == 409
    assert names(engine) == [JOB]


def test_cancel_and_retry_buttons(client, engine):
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, JOB)
    page = client.get(f"/runs/{run.id}").text
    assert 'id="cancel-run"' in page and 'id="retry-run"' not in page
    token = csrf_token(client, f"/runs/{run.id}")
    answer = client.post(f"/runs/{run.id}/cancel", data={"csrf_token": token})
    assert answer.status_code == 303
    page = client.get(answer.headers["location"]).text
    assert "Cancel asked" in page and 'id="retry-run"' in page and "cancelled by" in page
    again = client.post(f"/runs/{run.id}/cancel", data={"csrf_token": token})
    assert again.status_code == 409 and "already finished" in again.text

    retry = client.post(f"/runs/{run.id}/retry", data={"csrf_token": token})
    assert retry.status_code == 303
    new_page = client.get(retry.headers["location"]).text
    assert f'href="/runs/{run.id}" id="retry-of"' in new_page
    assert f"This run retries run #{run.id}" in new_page
    assert 'id="retried-by"' in client.get(f"/runs/{run.id}").text
    busy = client.post(f"/runs/{run.id}/retry", data={"csrf_token": token})
    assert busy.status_code == 409


def test_runs_page_filters_live_in_the_url(client, engine):
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, scheduled_at, created_at) VALUES"
                " (:j, 'cron', 'succeeded', now(), now() - interval '3 days'),"
                " (:j, 'manual', 'discarded', NULL, now()),"
                " ('other', 'manual', 'succeeded', NULL, now())"
            ),
            {"j": JOB},
        )
    page = client.get("/runs", params={"job": JOB, "trigger": "manual"})
    assert page.status_code == 200
    rows = page.text.count('<tr data-run="')
    assert rows == 1 and 'data-state="discarded"' in page.text
    assert 'value="manual" selected' in page.text and f'value="{JOB}"' in page.text
    assert "/fragments/runs?job=refresh_trace_summaries&amp;trigger=manual" in page.text
    since = client.get(
        "/runs", params={"since": "2000-01-01T00:00:00", "until": "2001-01-01T00:00"}
    )
    assert since.status_code == 200 and 'data-run="' not in since.text
    assert 'value="2000-01-01T00:00:00"' in since.text
    assert client.get("/runs", params={"trigger": "bogus"}).status_code == 422


def test_a_job_named_new_keeps_its_page(client, engine):
    token = csrf_token(client, "/new-schedule")
    assert client.post("/new-schedule", data=form(token, name="new")).status_code == 303
    page = client.get("/jobs/new")
    assert page.status_code == 200 and "<h1>new</h1>" in page.text
