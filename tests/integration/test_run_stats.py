"""`job_run_stats`, kept by triggers, gives exactly what probing the runs gives.

Random sequences of what happens to runs (created, started, retried, finished or cancelled in
any order, batches, pruning, a job's schedule deleted and made again, plain-SQL edits) are
applied on real Postgres; after each step the stats table, and `job_stats` reading it, are
compared with the probing query that health used before the table (the oracle, below).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command

from shared import migrate, run_stats, schedules
from shared.freshness import assess
from tests.support.run_steps import JOBS, concurrent_writers, jobs_cursor, step
from worker.retention import prune_runs

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The probes of every job's runs that health made before job_run_stats (per job name).
ORACLE = """
SELECT j.name, lo.id, lo.state,
       CASE WHEN lo.state = 'succeeded' THEN lo.finished_at ELSE (
            SELECT finished_at FROM job_runs r
             WHERE r.job_name = j.name AND r.state = 'succeeded'
             ORDER BY r.id DESC LIMIT 1) END,
       CASE WHEN lo.state IS NULL OR lo.state = 'succeeded' THEN 0 ELSE (
            SELECT count(*) FROM (
                SELECT 1 FROM job_runs f
                 WHERE f.job_name = j.name
                   AND f.id > COALESCE((
                        SELECT id FROM job_runs r
                         WHERE r.job_name = j.name AND r.state = 'succeeded'
                         ORDER BY r.id DESC LIMIT 1), 0)
                   AND f.state IN ('failed', 'discarded')
                   AND (f.state = 'failed' OR f.error IS NULL
                        OR f.error NOT LIKE 'cancelled%%')
                 LIMIT %(max)s) AS counted) END
  FROM unnest(%(names)s::text[]) AS j(name)
  LEFT JOIN LATERAL (
        SELECT id, state, finished_at FROM job_runs r
         WHERE r.job_name = j.name
           AND (r.state IN ('succeeded', 'failed')
                OR (r.state = 'discarded'
                    AND (r.error IS NULL OR r.error NOT LIKE 'cancelled%%'))
                OR (r.state = 'running' AND r.attempt > 1))
         ORDER BY r.id DESC LIMIT 1) lo ON true
 ORDER BY j.name
"""
TABLE = """
SELECT j.name, st.outcome_id, st.outcome_state, st.success_at,
       CASE WHEN st.outcome_state IS NULL OR st.outcome_state = 'succeeded' THEN 0
            ELSE LEAST(st.failures, %(max)s) END
  FROM unnest(%(names)s::text[]) AS j(name)
  LEFT JOIN job_run_stats st ON st.job_name = j.name
 ORDER BY j.name
"""


def answers(cur, query: str, cap: int = run_stats.MAX_COUNTED_FAILURES) -> list[tuple]:
    cur.execute(query, {"names": JOBS, "max": cap})
    return cur.fetchall()


@pytest.fixture
def cur(db_url):
    with jobs_cursor(db_url) as c:
        yield c


@pytest.mark.parametrize("seed", range(6))
def test_stats_table_matches_probing_the_runs(cur, engine, seed):
    rnd = random.Random(seed)  # noqa: S311
    done = []
    for _ in range(150):
        done.append(step(cur, rnd))
        assert answers(cur, TABLE) == answers(cur, ORACLE), (seed, " ".join(done))
    assert answers(cur, TABLE, cap=2) == answers(cur, ORACLE, cap=2)
    with engine.connect() as conn:
        _, found = run_stats.job_stats(conn, JOBS)
    oracle = {name: rest for name, *rest in answers(cur, ORACLE)}
    for row, stats in found:
        outcome_id, state, success_at, failures = oracle[row.name]
        assert stats.last_outcome_run_id == outcome_id
        expected = None if state is None else ("succeeded" if state == "succeeded" else "failed")
        assert stats.last_outcome == expected
        assert (stats.last_success_at, stats.consecutive_failures) == (success_at, failures)


@pytest.mark.parametrize("seed", range(3))
def test_lean_healths_match_assess(cur, engine, seed):
    """/metrics and the admin's lists read health without building objects per job: the
    same as `assess`."""
    rnd = random.Random(seed)  # noqa: S311
    cur.execute(
        "UPDATE job_schedules SET enabled = (name <> 'job_c'), cron = '@every 10m',"
        " stale_after_seconds = CASE WHEN name = 'job_b' THEN 60 END,"
        " enabled_at = now() - interval '1 hour', created_at = now() - interval '1 hour'"
    )
    for k in range(60):
        step(cur, rnd)
        if k % 10:
            continue
        cur.execute("UPDATE job_runs SET finished_at = finished_at - interval '5 minutes'")
        with engine.connect() as conn:  # one transaction: one now()
            now, found = run_stats.job_stats(conn)
            same_now, healths = run_stats.job_healths(conn)
            rows = schedules.list_schedules(conn)
            admin_now, admin = run_stats.healths(conn, rows, every=True)
            _, some = run_stats.healths(conn, rows[1:3])
        assert same_now == now == admin_now
        expected = []
        for row, stats in found:
            fresh = assess(row, stats, now)
            success = fresh.last_success_at
            micros = None if success is None else (success - EPOCH) // timedelta(microseconds=1)
            expected.append((row.name, fresh.health, micros, fresh.consecutive_failures))
        assert healths == expected
        assert [row.name for row in rows] == [row.name for row, _ in found]
        lean = [
            (f.health, f.last_success_at, f.consecutive_failures, f.stale_after_seconds)
            for f in (assess(row, stats, now) for row, stats in found)
        ]
        assert [tuple(h) for h in admin] == lean
        assert [tuple(h) for h in some] == lean[1:3]
    assert {health for _, health, *_ in healths} >= {"paused", "stale"}


def test_concurrent_writers_keep_it_exact(cur, db_url):
    """Several connections changing their own runs of the same jobs at once, one statement
    at a time as workers do (batches included): no deadlock, and the probes' answer at the
    end."""
    concurrent_writers(db_url, 100, step)
    final = answers(cur, ORACLE)
    assert any(outcome_id for _, outcome_id, *_ in final)
    assert answers(cur, TABLE) == final


def test_migration_backfills_existing_runs(engine, cur):
    """Runs recorded before migration 0005 are counted by it (down to 0004 and up again)."""
    with engine.connect() as conn:
        cfg = migrate._config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
        conn.commit()
    cur.execute("SELECT to_regclass('job_run_stats')")
    assert cur.fetchone()[0] is None
    rnd = random.Random(7)  # noqa: S311
    for _ in range(120):
        step(cur, rnd)
    expected = answers(cur, ORACLE)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
    assert answers(cur, TABLE) == expected


def test_retention_prune_keeps_stats_exact(cur, engine):
    """Pruning in batches removes jobs' newest successes and outcomes, and failures counted
    after them: the stats still match the runs."""
    old = datetime.now(UTC) - timedelta(days=30)
    # job_a: all old (its newest success and outcome go); job_b: an old success, then old
    # failures and a recent success; job_c: recent failures after an old success.
    for job, states in (
        ("job_a", ["failed", "succeeded", "discarded", "succeeded", "failed"]),
        ("job_b", ["succeeded", "discarded", "failed", "discarded"]),
        ("job_c", ["succeeded", "succeeded"]),
    ):
        for i, state in enumerate(states):
            cur.execute(
                "INSERT INTO job_runs (job_name, trigger, state, finished_at, attempt, error)"
                " VALUES (%s, 'manual', %s, %s, 1, %s)",
                (job, state, old + timedelta(minutes=i), None if state == "succeeded" else "E"),
            )
    cur.execute(
        "INSERT INTO job_runs (job_name, trigger, state, finished_at, attempt, error) VALUES"
        " ('job_b', 'manual', 'succeeded', now(), 1, NULL),"
        " ('job_c', 'manual', 'discarded', now(), 1, 'E'), ('job_c', 'manual', 'failed', now(),"
        " 1, 'E')"
    )
    before = answers(cur, ORACLE)
    assert answers(cur, TABLE) == before
    assert prune_runs(engine, 14, batch=2) == 8  # succeeded and discarded, older than 14 days
    assert answers(cur, TABLE) == answers(cur, ORACLE) != before
