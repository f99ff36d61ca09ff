"""`srjobs migrate`: creates the database, is idempotent, and safe to run concurrently."""

import os
import subprocess
import sys

import psycopg2

from tests.conftest import database_url, servers
from tests.support.procs import Services

BUILT_IN_JOBS = ["refresh_trace_summaries", "srjobs_prune_runs", "srjobs_rescue_runs"]


def run_migrate(url: str, extra_env=None) -> subprocess.Popen:
    env = {"DATABASE_URL": url, "REDIS_URL": servers().redis_url, **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "srjobs.cli", "migrate"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def schedule_rows(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name, actor, cron, timezone, enabled FROM job_schedules")
            return cur.fetchall()
    finally:
        conn.close()


def test_migrate_twice_in_a_row_changes_nothing(empty_db_name):
    url = database_url(empty_db_name)
    env = {"TRACE_SUMMARIES_CRON": "*/5 * * * *"}
    for _ in range(2):
        proc = run_migrate(url, env)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    rows = schedule_rows(url)
    assert (
        "refresh_trace_summaries",
        "refresh_trace_summaries",
        "*/5 * * * *",
        "UTC",
        True,
    ) in rows
    assert sorted(r[0] for r in rows) == BUILT_IN_JOBS


def test_migrate_twice_at_the_same_time(empty_db_name):
    url = database_url(empty_db_name)
    procs = [run_migrate(url) for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert sorted(r[0] for r in schedule_rows(url)) == BUILT_IN_JOBS


def test_seed_never_overwrites_an_edited_schedule(db_url):
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE job_schedules SET cron = '@hourly' WHERE name = 'refresh_trace_summaries'"
        )
    conn.close()
    proc = run_migrate(db_url, {"TRACE_SUMMARIES_CRON": "@every 5s"})
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert schedule_rows(db_url)[0][2] == "@hourly"


def test_services_refuse_to_start_before_migrate(empty_db_name, tmp_path):
    url = database_url(empty_db_name)
    svc = Services({"DATABASE_URL": url, "REDIS_URL": servers().redis_url}, tmp_path)
    for command in (["scheduler"], ["worker"], ["webadmin", "--port", "0"]):
        result = svc.run(*command, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "run `srjobs migrate`" in result.stderr
