"""Retention against real Postgres: only old finished runs go, batch by batch."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from shared import runs
from worker.retention import prune_runs


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
