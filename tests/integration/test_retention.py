"""Retention against real Postgres: only old finished runs go, batch by batch, oldest first,
never waiting on a run another transaction holds."""

from datetime import UTC, datetime, timedelta

import psycopg2
from sqlalchemy import text

from shared import runs
from shared.db import dsn
from worker.retention import prune_peers, prune_runs, retention_cutoff

OLD_RUNS = (
    "INSERT INTO job_runs (job_name, trigger, state, started_at, finished_at)"
    " SELECT 'j', 'manual', s, :old, :old + make_interval(secs => g)"
    " FROM unnest(CAST(:states AS text[])) AS s, generate_series(1, :n) AS g"
)


def states(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT state, count(*) FROM job_runs GROUP BY state")).all())


def test_prune_deletes_only_old_finished_runs_in_batches(engine):
    old = datetime.now(UTC) - timedelta(days=20)
    with engine.begin() as conn:
        conn.execute(
            text(OLD_RUNS),
            {"old": old, "n": 5, "states": ["succeeded", "discarded", "failed", "running"]},
        )
        # Finished at the very same moment: a batch boundary among them loses none.
        conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, finished_at)"
                " SELECT 'j', 'manual', 'succeeded', :old FROM generate_series(1, 7)"
            ),
            {"old": old},
        )
        recent = runs.create_manual_run(conn, "k")
        runs.start_run(conn, recent.id, 1, "n")
        runs.mark_finished(conn, recent.id, "succeeded")
    assert prune_runs(engine, 14, batch=3) == 17
    assert states(engine) == {"failed": 5, "running": 5, "succeeded": 1}


def test_prune_stops_at_the_cutoff_and_at_max_rows(engine):
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    with engine.begin() as conn:
        # Finished 13 days 23:59:55 ago up to 14 days 00:00:04 ago, one a second.
        conn.execute(
            text(OLD_RUNS),
            {"old": now - timedelta(days=14, seconds=5), "n": 9, "states": ["succeeded"]},
        )
    assert retention_cutoff(now, 14) == now - timedelta(days=14)
    assert prune_runs(engine, 14, batch=2, now=now, max_rows=3) == 3
    assert prune_runs(engine, 14, batch=2, now=now) == 1  # the 4th finished before the cutoff
    assert states(engine) == {"succeeded": 5}


def test_prune_skips_a_run_another_transaction_holds(engine, db_url):
    old = datetime.now(UTC) - timedelta(days=20)
    with engine.begin() as conn:
        conn.execute(text(OLD_RUNS), {"old": old, "n": 6, "states": ["succeeded"]})
        held = conn.execute(text("SELECT min(id) FROM job_runs")).scalar_one()
    other = psycopg2.connect(dsn(db_url))
    try:
        with other.cursor() as cur:
            cur.execute("SELECT id FROM job_runs WHERE id = %s FOR UPDATE", (held,))
            assert prune_runs(engine, 14, batch=2) == 5  # did not wait for the lock
        other.rollback()
        assert prune_runs(engine, 14, batch=2) == 1  # the next run takes it
    finally:
        other.close()
    assert states(engine) == {}


def test_peers_gone_for_more_than_a_day_are_pruned(engine):
    with engine.begin() as conn:
        for node, seen in (("gone", "25 hours"), ("recent", "23 hours"), ("alive", "0 seconds")):
            conn.execute(
                text(
                    "INSERT INTO scheduler_nodes (node, role, last_seen_at)"
                    " VALUES (:n, 'follower', now() - CAST(:s AS interval))"
                ),
                {"n": node, "s": seen},
            )
            conn.execute(
                text(
                    "INSERT INTO worker_nodes (worker, node, last_seen_at)"
                    " VALUES (:w, :n, now() - CAST(:s AS interval))"
                ),
                {"w": f"{node}/1/x", "n": node, "s": seen},
            )
    assert prune_peers(engine) == {"schedulers": 1, "workers": 1}
    with engine.connect() as conn:
        schedulers = set(conn.execute(text("SELECT node FROM scheduler_nodes")).scalars())
        workers = set(conn.execute(text("SELECT node FROM worker_nodes")).scalars())
    assert schedulers == workers == {"recent", "alive"}
    assert prune_peers(engine) == {"schedulers": 0, "workers": 0}
