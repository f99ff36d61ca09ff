"""GET /api/jobs from kept pieces (webadmin.jobs_body): byte for byte the body of the views,
whatever changes between two requests, and only the jobs that changed are read again."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import text

from shared import job_listing, run_stats, runs, schedules
from tests.support.listing import CRONS, ZONES, add_jobs
from tests.support.run_steps import JOBS, jobs_cursor, step
from webadmin import fastjson, services, views
from webadmin.jobs_body import JobsBody, write

SCHEDULE_EDITS = [
    "UPDATE job_schedules SET cron = %(cron)s WHERE name = %(name)s",
    "UPDATE job_schedules SET timezone = %(zone)s WHERE name = %(name)s",
    "UPDATE job_schedules SET enabled = NOT enabled WHERE name = %(name)s",
    'UPDATE job_schedules SET args = \'{"k": [1, "\\u00e9\\n"]}\' WHERE name = %(name)s',
    "UPDATE job_schedules SET stale_after_seconds = %(stale)s WHERE name = %(name)s",
    "UPDATE job_schedules SET description = %(cron)s || ' \"quoted\"' WHERE name = %(name)s",
    "UPDATE job_schedules SET updated_at = now() WHERE name = %(name)s",  # same values
    "DELETE FROM job_schedules WHERE name = %(name)s",
    "INSERT INTO job_schedules (name, actor, cron) VALUES (%(name)s, 'noop', %(cron)s)"
    " ON CONFLICT DO NOTHING",
    "UPDATE job_run_stats SET failures = failures + 1 WHERE job_name = %(name)s",
]


def views_body(conn) -> bytes:
    """The body as the views write it, in the caller's transaction."""
    return fastjson.dumps([job.as_data() for job in views.list_jobs(conn)])


def bodies(engine, kept: JobsBody, zone: str | None = None) -> tuple[bytes, bytes]:
    """The kept body and the views' body, read in one REPEATABLE READ transaction."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        if zone is not None:
            conn.execute(text("SELECT set_config('TimeZone', :z, true)"), {"z": zone})
        return kept.body(conn), views_body(conn)


@pytest.fixture
def cur(db_url):
    with jobs_cursor(db_url) as c:
        yield c


@pytest.fixture
def reads(monkeypatch) -> list[list[str] | None]:
    """The names each read of full rows asked for (None: every job)."""
    asked: list[list[str] | None] = []
    read = job_listing.keyed_jobs

    def recording(conn, names=None):
        asked.append(None if names is None else sorted(names))
        return read(conn, names)

    monkeypatch.setattr(job_listing, "keyed_jobs", recording)
    return asked


@pytest.mark.parametrize("seed", range(4))
def test_kept_body_is_the_views_body_as_runs_and_schedules_change(cur, engine, seed):
    rnd = random.Random(seed)  # noqa: S311
    add_jobs(engine, [f"k{i:02d}" for i in range(12)], rnd)
    kept = JobsBody()
    done = []
    for _ in range(120):
        if rnd.random() < 0.25:
            edit = rnd.choice(SCHEDULE_EDITS)
            params = {
                "name": rnd.choice([*JOBS, "k03", "k07"]),
                "cron": rnd.choice(CRONS),
                "zone": rnd.choice(ZONES),
                "stale": rnd.choice([None, 60, 7200]),
            }
            cur.execute(edit, params)
            done.append(edit.split(" WHERE")[0])
        else:
            done.append(step(cur, rnd))
        mine, theirs = bodies(engine, kept)
        assert mine == theirs, done
    assert {"finish", "prune", "edit", "schedule"} <= set(done)


def test_only_the_jobs_that_changed_are_read_again(engine, reads):
    add_jobs(engine, [f"k{i:02d}" for i in range(20)], random.Random(4))  # noqa: S311
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, attempt)"
                " VALUES ('k03', 'manual', 'running', 1), ('k09', 'manual', 'succeeded', 1)"
            )
        )
    kept = JobsBody()
    changes = [
        ("", []),
        (
            "UPDATE job_runs SET node = 'elsewhere' WHERE id = (SELECT max(id) FROM job_runs"
            " WHERE job_name = 'k03')",
            ["k03"],
        ),
        ("UPDATE job_schedules SET enabled = NOT enabled WHERE name = 'k05'", ["k05"]),
        (
            "INSERT INTO job_runs (job_name, trigger, state, finished_at, attempt)"
            " VALUES ('k07', 'manual', 'failed', now(), 1)",
            ["k07"],
        ),
        (
            "INSERT INTO job_schedules (name, actor, cron) VALUES ('k99', 'noop', '@hourly')",
            ["k99"],
        ),
        ("DELETE FROM job_schedules WHERE name = 'k08'", []),
        ("DELETE FROM job_runs WHERE job_name = 'k09'", ["k09"]),
    ]
    mine, theirs = bodies(engine, kept)
    assert mine == theirs and reads == [None]
    for change, read in changes:
        if change:
            with engine.begin() as conn:
                conn.execute(text(change))
        reads.clear()
        mine, theirs = bodies(engine, kept)
        assert mine == theirs, change
        assert reads == ([read] if read else []), change
    assert b'"k08"' not in mine and b'"k99"' in mine


def test_times_are_written_in_the_sessions_zone(engine, reads):
    add_jobs(engine, [f"k{i:02d}" for i in range(10)], random.Random(5))  # noqa: S311
    kept = JobsBody()
    utc = bodies(engine, kept)
    kolkata = bodies(engine, kept, "Asia/Kolkata")
    assert utc[0] == utc[1] and kolkata[0] == kolkata[1]
    assert b"+05:30" in kolkata[0] and b"+05:30" not in utc[0]
    assert reads == [None, None]  # the pieces of another zone are not reused
    assert bodies(engine, kept)[0] == bodies(engine, kept)[1]


@pytest.mark.parametrize(
    "later",
    [
        timedelta(0),
        timedelta(seconds=59),
        timedelta(minutes=2),
        timedelta(hours=3),
        timedelta(days=2, minutes=7),
        timedelta(days=400),
    ],
)
def test_kept_pieces_follow_the_clock(engine, later):
    """Health, next fire and the default staleness as the views compute them at that time."""
    add_jobs(engine, [f"k{i:02d}" for i in range(30)], random.Random(6))  # noqa: S311
    kept = JobsBody()
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        now, pieces = kept.read(conn)
        rows = schedules.list_schedules(conn)
        stats = {
            r[0]: r[1:]
            for r in conn.execute(run_stats.RUN_STATS, {"names": None, "max_failures": 10_000})
        }
        last = runs.last_runs(conn, [row.name for row in rows])
    at = now + later
    expected = [
        views.job_view(
            row,
            run_stats.job_health(row, *stats.get(row.name, (None, None, 0)), at),
            last.get(row.name),
            at,
        ).as_data()
        for row in rows
    ]
    assert write(at, pieces) == fastjson.dumps(expected)


def test_the_service_keeps_pieces_between_calls(engine, reads):
    add_jobs(engine, ["k01", "k02"], random.Random(8))  # noqa: S311
    kept = JobsBody()
    first = services.jobs_json(engine, kept)
    assert services.jobs_json(engine, kept) == services.jobs_json(engine) == first
    assert reads == [None, None]
