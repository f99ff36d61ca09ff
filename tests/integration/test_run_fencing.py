"""The worker's run-record statements in real Postgres: stale copies, batches, orphans."""

import time

from sqlalchemy import text

from shared import nodes, runs
from worker.connections import ThreadConnections


def success(run_id, attempt, seconds):
    """A succeeded attempt as the worker buffers it (started now, by `node`, `w/1/a`)."""
    return (run_id, attempt, seconds, time.time(), "node", "w/1/a")


def start(engine, run_id, attempt, worker="w/1/a"):
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            ok = runs.start_run(cur, run_id, attempt, "node", worker)
        raw.commit()
        return ok
    finally:
        raw.close()


def test_only_the_next_attempt_starts_after_a_failure(engine):
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, "j")
    assert start(engine, run.id, 1)
    assert start(engine, run.id, 1)  # a redelivery of the running attempt
    with engine.begin() as conn:
        assert runs.mark_finished(conn, run.id, "failed", error="E: x", attempt=1)
    assert not start(engine, run.id, 1)  # the failed attempt's stale copy
    assert start(engine, run.id, 2)
    with engine.begin() as conn:
        assert not runs.mark_finished(conn, run.id, "failed", error="late", attempt=1)
        assert runs.mark_succeeded_many(conn, [success(run.id, 2, 1.5)]) == 1
        done = runs.get_run(conn, run.id)
    assert (done.state, done.attempt, done.error) == ("succeeded", 2, None)
    assert (done.finished_at - done.started_at).total_seconds() == 1.5
    assert not start(engine, run.id, 3)


def test_batched_success_skips_runs_that_moved_on(engine):
    with engine.begin() as conn:
        a, b = runs.create_manual_run(conn, "a"), runs.create_manual_run(conn, "b")
    start(engine, a.id, 1)
    start(engine, b.id, 2)
    with engine.begin() as conn:
        assert runs.mark_succeeded_many(conn, [success(a.id, 1, 0.1), success(b.id, 1, 0.1)]) == 1
        assert runs.get_run(conn, b.id).state == "running"


def test_orphans_are_runs_of_silent_workers(engine):
    with engine.begin() as conn:
        alive, dead, gone = (runs.create_manual_run(conn, n) for n in ("alive", "dead", "gone"))
        nodes.beat_worker(conn, "w/alive", "n1")
        nodes.beat_worker(conn, "w/dead", "n2")
    start(engine, alive.id, 1, "w/alive")
    start(engine, dead.id, 1, "w/dead")
    start(engine, gone.id, 1, "w/never-registered")
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_runs SET started_at = now() - interval '1 minute'"))
        conn.execute(
            text(
                "UPDATE worker_nodes SET last_seen_at = now() - interval '1 minute'"
                " WHERE worker = 'w/dead'"
            )
        )
        found = runs.find_orphans(conn, 30)
    assert sorted(o.job_name for o in found) == ["dead", "gone"]
    with engine.begin() as conn:
        assert runs.mark_lost(conn, dead.id, 1, "failed", "WorkerLost: x")
        assert not runs.mark_lost(conn, dead.id, 2, "failed", "WorkerLost: x")


def test_the_prepared_start_fences_like_the_plain_one(settings, engine):
    # Past Postgres' first five custom plans, so the cached generic plan is exercised too.
    connections = ThreadConnections(settings, on_connect=runs.prepare_start)

    def start_prepared(run_id, attempt):
        return connections.run(
            lambda cur: runs.start_run_prepared(cur, run_id, attempt, "node", "w/1/a")
        )

    try:
        with engine.begin() as conn:
            ids = [runs.create_manual_run(conn, f"j{i}").id for i in range(8)]
        assert all(start_prepared(run_id, 1) for run_id in ids)
        run_id = ids[0]
        assert start_prepared(run_id, 1)  # a redelivery of the running attempt
        with engine.begin() as conn:
            assert runs.mark_finished(conn, run_id, "failed", error="E: x", attempt=1)
        assert not start_prepared(run_id, 1)  # the failed attempt's stale copy
        assert start_prepared(run_id, 2)
        with engine.begin() as conn:
            assert runs.mark_succeeded_many(conn, [success(run_id, 2, 0.5)]) == 1
        assert not start_prepared(run_id, 3)  # finished: a redelivery is skipped
        assert not start_prepared(10**12, 1)  # unknown
        with engine.begin() as conn:
            row = conn.execute(
                text("SELECT state, attempt, node, worker FROM job_runs WHERE id = :id"),
                {"id": ids[1]},
            ).one()
        assert tuple(row) == ("running", 1, "node", "w/1/a")
    finally:
        connections.close()


def test_a_replaced_connection_is_prepared_again(settings, engine):
    connections = ThreadConnections(settings, on_connect=runs.prepare_start)
    try:
        with engine.begin() as conn:
            first, second = (runs.create_manual_run(conn, n).id for n in ("a", "b"))
        assert connections.run(lambda cur: runs.start_run_prepared(cur, first, 1, "n", None))
        pid = connections.run(
            lambda cur: (cur.execute("SELECT pg_backend_pid()"), cur.fetchone())[1][0]
        )
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        # The server dropped the connection: the call reconnects, prepares and starts the run.
        assert connections.run(lambda cur: runs.start_run_prepared(cur, second, 1, "n", None))
        with engine.begin() as conn:
            assert runs.get_run(conn, second).state == "running"
    finally:
        connections.close()
