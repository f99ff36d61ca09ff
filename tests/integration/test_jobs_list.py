"""The jobs list: the API's body as before (orjson), the page a page of jobs at a time."""

from __future__ import annotations

import json
import random
import re

import pytest
from sqlalchemy import text
from starlette.responses import JSONResponse

from shared import run_stats, runs, schedules
from tests.support.admin import JOB, admin_client, csrf_token
from tests.support.listing import add_jobs
from webadmin import services, views
from webadmin.job_list import PER_PAGE

ROW = re.compile(r'<tr data-job="([^"]+)"')
NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


@pytest.fixture
def client(settings):
    with admin_client(settings) as c:
        yield c


def probed_jobs(conn) -> list[views.JobView]:
    """Every job read as before the one-statement listing: schedules, stats, a probe per job."""
    rows = schedules.list_schedules(conn)
    now, found = run_stats.healths(conn, rows, every=True)
    last = runs.last_runs(conn, [row.name for row in rows])
    return [views.job_view(r, f, last.get(r.name), now) for r, f in zip(rows, found, strict=True)]


def test_api_body_is_the_standard_librarys_on_random_histories(client, engine):
    rng = random.Random(16)  # noqa: S311
    add_jobs(engine, [f"j{i:03d}" for i in range(80)], rng)
    body = client.get("/api/jobs")
    assert body.status_code == 200 and body.headers["content-type"] == "application/json"
    with engine.connect() as conn:  # one transaction: one now() for both reads
        before = JSONResponse([j.as_json() for j in probed_jobs(conn)]).body
        assert [j.as_json() for j in views.list_jobs(conn)] == json.loads(before)
        newest = dict(
            conn.execute(
                text(
                    "SELECT DISTINCT ON (job_name) job_name, id FROM job_runs"
                    " ORDER BY job_name, id DESC"
                )
            ).all()
        )
    assert body.content == before
    jobs = body.json()
    assert len(jobs) == 81
    assert {j["name"]: (j["last_run"] or {}).get("id") for j in jobs} == {
        j["name"]: newest.get(j["name"]) for j in jobs
    }
    # Again after changes: the admin keeps the pieces of the jobs that did not change.
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_runs SET state = 'succeeded', error = NULL WHERE id % 3 = 0"))
        conn.execute(text("UPDATE job_schedules SET enabled = NOT enabled WHERE name < 'j010'"))
        conn.execute(text("DELETE FROM job_schedules WHERE name = 'j011'"))
    add_jobs(engine, ["j999"], rng)
    again = client.get("/api/jobs")
    with engine.connect() as conn:
        assert again.content == JSONResponse([j.as_json() for j in probed_jobs(conn)]).body
    assert again.content != body.content and len(again.json()) == 81


def test_jobs_page_reaches_every_job_a_page_at_a_time(client, engine):
    names = [f"job-{i:03d}" for i in range(2 * PER_PAGE + 7)]
    add_jobs(engine, names, random.Random(7))  # noqa: S311
    everyone = sorted([*names, JOB])
    seen: list[str] = []
    url: str | None = "/jobs"
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200
        rows = ROW.findall(page.text)
        assert 0 < len(rows) <= PER_PAGE
        seen += rows
        found = NEXT.search(page.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == everyone
    assert f"of {len(everyone)}" in client.get("/jobs?page=2").text
    assert ROW.findall(client.get("/fragments/jobs?page=3").text) == everyone[2 * PER_PAGE :]
    assert ROW.findall(client.get("/jobs?page=99").text) == []
    assert ROW.findall(client.get("/jobs?page=x").text) == everyone[:PER_PAGE]


def test_jobs_page_filters_by_name(client, engine):
    add_jobs(engine, ["alpha_1", "Alpha%2", "beta", "xalphax"], random.Random(3))  # noqa: S311
    assert ROW.findall(client.get("/jobs?q=ALPHA").text) == ["Alpha%2", "alpha_1", "xalphax"]
    assert ROW.findall(client.get("/jobs?q=a%25").text) == ["Alpha%2"]  # % is literal
    assert ROW.findall(client.get("/jobs?q=a_").text) == ["alpha_1"]  # so is _
    assert ROW.findall(client.get("/fragments/jobs?q=bet").text) == ["beta"]
    assert "No job name contains" in client.get("/jobs?q=nothing").text


def test_jobs_json_service_matches_the_route(engine):
    with engine.connect() as conn:
        expected = [j.as_json() for j in views.list_jobs(conn)]
    assert json.loads(services.jobs_json(engine)) == expected


RUN_ROW = re.compile(r'<tr data-run="(\d+)"')


@pytest.mark.parametrize(
    "params",
    [{}, {"limit": "3"}, {"limit": "120"}, {"state": "failed"}, {"trigger": "manual"}, "before"],
)
def test_job_page_history_is_the_runs_page(client, engine, params):
    add_jobs(engine, ["hist"], random.Random(5))  # noqa: S311
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, attempt)"
                " SELECT 'hist', 'manual', CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'succeeded'"
                " END, 1 FROM generate_series(1, 130) AS i"
            )
        )
        ids = conn.execute(
            text("SELECT id FROM job_runs WHERE job_name = 'hist' ORDER BY id DESC")
        ).scalars()
        middle = list(ids)[60]
    if params == "before":
        params = {"before": str(middle)}
    page = client.get("/jobs/hist", params=params)
    api = client.get("/api/jobs/hist/runs", params=params)
    assert page.status_code == api.status_code == 200
    assert [int(i) for i in RUN_ROW.findall(page.text)] == [r["id"] for r in api.json()]


def test_run_now_goes_back_to_the_page_and_filter_it_came_from(client, engine):
    add_jobs(engine, [f"job-{i:03d}" for i in range(PER_PAGE + 5)], random.Random(9))  # noqa: S311
    page = client.get("/jobs?q=JOB&page=2").text
    assert 'name="q" value="JOB"' in page and 'name="page" value="2"' in page
    token = csrf_token(client, "/jobs")
    answer = client.post(
        "/jobs/job-051/run",
        data={"csrf_token": token, "next": "/jobs", "q": "JOB", "page": "2"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert re.fullmatch(r"/jobs\?q=JOB&page=2&(started|busy)=\d+", answer.headers["location"])
    evil = client.post(
        "/jobs/job-051/run",
        data={"csrf_token": token, "next": "/jobs", "q": "//evil.example"},
        follow_redirects=False,
    )
    assert evil.headers["location"].startswith("/jobs?q=%2F%2Fevil.example&")
