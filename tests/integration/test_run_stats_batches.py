"""`job_run_stats` after the large statements the worker writes (migration 0008's trigger).

The worker records succeeded runs a thousand at a time and rescue or plain SQL may change many
runs of several jobs at once; the stats must come out exactly as probing the runs says, for
each kind of change a statement can mix (outcomes, retries moving to `running`, runs moving
to another job, cancelled discards). The trigger is also exercised across a downgrade to 0007
(the joined version) and back.
"""

from __future__ import annotations

import random
import time

import psycopg2
import pytest
from alembic import command

from shared import migrate, runs
from shared.db import dsn
from tests.integration.test_run_stats import JOBS, ORACLE, TABLE, answers


@pytest.fixture
def cur(db_url):
    conn = psycopg2.connect(dsn(db_url))
    conn.autocommit = True
    with conn.cursor() as c:
        yield c
    conn.close()


def insert(cur, job: str, state: str, n: int, attempt: int = 1) -> list[int]:
    cur.execute(
        "INSERT INTO job_runs (job_name, trigger, state, attempt, started_at)"
        " SELECT %s, 'manual', %s, %s, now() FROM generate_series(1, %s) RETURNING id",
        (job, state, attempt, n),
    )
    return [r[0] for r in cur.fetchall()]


def test_batched_successes_keep_stats_exact(cur):
    """1,500 running runs of three jobs, after failures, succeed in one statement each way
    the worker writes them (a started attempt, a lost start recorded again)."""
    for job in JOBS:
        insert(cur, job, "failed", 3)
    running = [i for job in JOBS for i in insert(cur, job, "running", 500)]
    random.Random(1).shuffle(running)  # noqa: S311
    done = [(i, 1, 0.01, time.time(), "node", "node/1/a") for i in running]
    assert runs.mark_succeeded_many(cur, done[:1000]) == 1000
    assert answers(cur, TABLE) == answers(cur, ORACLE)
    assert runs.mark_succeeded_many(cur, done[1000:]) == 500
    assert answers(cur, TABLE) == answers(cur, ORACLE)


def test_mixed_large_statements_keep_stats_exact(cur):
    """Statements changing hundreds of runs with every kind of part in the stats at once."""
    rnd = random.Random(5)  # noqa: S311
    for job in JOBS:
        insert(cur, job, "succeeded", 50)
        insert(cur, job, "failed", 100)
        insert(cur, job, "running", 200)
        insert(cur, job, "running", 50, attempt=2)
        insert(cur, job, "enqueued", 100)
    cur.execute("SELECT id FROM job_runs WHERE state IN ('running', 'enqueued') ORDER BY id")
    active = [r[0] for r in cur.fetchall()]
    rnd.shuffle(active)
    outcomes = ["succeeded", "failed", "discarded"]
    finished = [
        runs.Finish(i, s, error=None if s == "succeeded" else rnd.choice(["E", "cancelled by a"]))
        for i in active[:600]
        for s in [rnd.choice(outcomes)]
    ]
    runs.finish_many(cur, finished)
    assert answers(cur, TABLE) == answers(cur, ORACLE)
    # Retries of failed runs start at once (failed -> running at the next attempt).
    cur.execute(
        "UPDATE job_runs SET state = 'running', attempt = attempt + 1 WHERE state = 'failed'"
    )
    assert answers(cur, TABLE) == answers(cur, ORACLE)
    # Plain SQL moving runs between jobs and rewriting outcomes, hundreds at a time.
    cur.execute(
        "UPDATE job_runs SET job_name = CASE WHEN id % 3 = 0 THEN 'job_a' ELSE job_name END,"
        " state = CASE WHEN id % 4 = 0 THEN 'discarded' ELSE state END,"
        " error = CASE WHEN id % 5 = 0 THEN 'cancelled by b' ELSE error END,"
        " finished_at = clock_timestamp()"
    )
    assert answers(cur, TABLE) == answers(cur, ORACLE)


def test_stats_exact_across_a_downgrade_of_0008(cur, engine):
    """Down to 0007 (the joined trigger) and up again: both versions keep the same stats."""
    rnd = random.Random(9)  # noqa: S311
    for job in JOBS:
        insert(cur, job, "running", 30)
    cfg = migrate._config()
    for target in ("0007", "head"):
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, target) if target == "0007" else command.upgrade(cfg, target)
            conn.commit()
        cur.execute("SELECT id FROM job_runs WHERE state = 'running' ORDER BY id")
        chosen = [r[0] for r in cur.fetchall()][:40]
        runs.finish_many(
            cur, [runs.Finish(i, rnd.choice(["succeeded", "failed"]), error="E") for i in chosen]
        )
        assert answers(cur, TABLE) == answers(cur, ORACLE)
