"""Retention against real Postgres: only old finished runs go, batch by batch."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from shared import runs
from worker.retention import prune_peers, prune_runs


def test_prune_deletes_only_old_finished_runs_in_batches(engine):
    old = datetime.now(UTC) - timedelta(days=20)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, started_at, finished_at)"
                " SELECT 'j', 'manual', s, :old, :old"
                " FROM unnest(ARRAY['succeeded', 'discarded', 'failed', 'running']) AS s,"
                " generate_series(1, 5)"
            ),
            {"old": old},
        )
        recent = runs.create_manual_run(conn, "k")
        runs.start_run(conn, recent.id, 1, "n")
        runs.mark_finished(conn, recent.id, "succeeded")
    assert prune_runs(engine, 14, batch=3) == 10
    with engine.connect() as conn:
        left = dict(conn.execute(text("SELECT state, count(*) FROM job_runs GROUP BY state")).all())
    assert left == {"failed": 5, "running": 5, "succeeded": 1}


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
