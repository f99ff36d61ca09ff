"""A `running` transition Postgres lost (asynchronous commit, then a crash or a failover): the
attempt's outcome records the start again and still lands; nothing finished or moved on is
changed. The lost start is simulated by putting the row back where it was before it."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from shared import runs
from tests.support.runs import get, wait_state
from tests.support.stack import Stack
from worker.connections import ThreadConnections

START = (1_780_000_000.0, "node-b", "node-b/7/abcd1234")  # epoch seconds, node, worker


def lose_start(engine, run_id: int, state: str = "enqueued", attempt: int = 0) -> None:
    """Put the run back in the state its start left, as a crash before the WAL flush would."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE job_runs SET state = :state, attempt = :attempt, started_at = NULL,"
                " node = NULL, worker = NULL WHERE id = :id"
            ),
            {"state": state, "attempt": attempt, "id": run_id},
        )


def enqueued_run(engine, job: str = "j") -> int:
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, job)
        runs.mark_enqueued(conn, run.id)
    return run.id


def worker_of(engine, run_id: int) -> str | None:
    with engine.connect() as conn:
        query = text("SELECT worker FROM job_runs WHERE id = :id")
        return conn.execute(query, {"id": run_id}).scalar()


def test_the_start_connection_commits_asynchronously(settings):
    connections = ThreadConnections(settings, on_connect=runs.prepare_start)
    try:

        def show(cur):
            cur.execute("SHOW synchronous_commit")
            return cur.fetchone()[0]

        assert connections.run(show) == "off"
    finally:
        connections.close()


def test_a_batched_success_records_a_lost_start(engine):
    run_id = enqueued_run(engine)
    lose_start(engine, run_id)  # started, then lost: still `enqueued` at attempt 0
    with engine.begin() as conn:
        assert runs.mark_succeeded_many(conn, [(run_id, 1, 2.5, *START)]) == 1
    got = get(engine, run_id)
    assert (got.state, got.attempt, got.node, got.error) == ("succeeded", 1, "node-b", None)
    assert got.started_at.timestamp() == START[0]
    assert (got.finished_at - got.started_at).total_seconds() == 2.5
    assert got.enqueued_at is not None
    assert worker_of(engine, run_id) == START[2]


def test_a_failure_records_a_lost_start_of_a_retry(engine):
    run_id = enqueued_run(engine)
    with engine.begin() as conn:
        assert runs.start_run(conn, run_id, 1, "node-a", "node-a/1/x")
        assert runs.mark_finished(conn, run_id, "failed", error="E: first", attempt=1)
    # Attempt 2 started, its start was lost: the run reads `failed` at attempt 1.
    with engine.begin() as conn:
        assert runs.mark_finished(
            conn, run_id, "discarded", error="E: second", attempt=2, started=START
        )
    got = get(engine, run_id)
    assert (got.state, got.attempt, got.error, got.node) == ("discarded", 2, "E: second", "node-b")
    assert got.started_at.timestamp() == START[0]


@pytest.mark.parametrize(
    ("state", "attempt", "outcome_attempt"),
    [
        ("succeeded", 1, 1),  # finished
        ("discarded", 0, 1),  # cancelled while it waited
        ("failed", 1, 1),  # this attempt already failed: a stale outcome
        ("running", 2, 1),  # a newer attempt runs
        ("failed", 2, 1),  # a newer attempt failed
    ],
)
def test_an_outcome_never_changes_a_run_that_finished_or_moved_on(
    engine, state, attempt, outcome_attempt
):
    run_id = enqueued_run(engine)
    lose_start(engine, run_id, state, attempt)
    with engine.begin() as conn:
        assert runs.mark_succeeded_many(conn, [(run_id, outcome_attempt, 0.1, *START)]) == 0
        assert not runs.mark_finished(
            conn, run_id, "failed", error="E: x", attempt=outcome_attempt, started=START
        )
    got = get(engine, run_id)
    assert (got.state, got.attempt) == (state, attempt)


def test_an_outcome_at_the_running_attempt_keeps_the_recorded_start(engine):
    run_id = enqueued_run(engine)
    with engine.begin() as conn:
        assert runs.start_run(conn, run_id, 1, "node-a", "node-a/1/x")
        started = runs.get_run(conn, run_id).started_at
        assert runs.mark_succeeded_many(conn, [(run_id, 1, 0.5, *START)]) == 1
    got = get(engine, run_id)
    assert (got.state, got.node, got.started_at) == ("succeeded", "node-a", started)
    assert worker_of(engine, run_id) == "node-a/1/x"


def test_the_worker_finishes_runs_whose_start_was_lost_while_they_ran(settings, engine):
    stack = Stack(settings)
    try:
        lost: list[int] = []

        def ok() -> None:
            lose_start(engine, lost[0])

        def bad() -> None:
            lose_start(engine, lost[1])
            raise ValueError("boom")

        good, failing = stack.declare(ok), stack.declare(bad)
        lost.extend([enqueued_run(engine, good), enqueued_run(engine, failing)])
        began = time.time()
        with stack.worker():
            stack.send(good, lost[0])
            stack.send(failing, lost[1])
            done = wait_state(engine, lost[0], "succeeded", timeout=10)
            gave_up = wait_state(engine, lost[1], "discarded", timeout=10)
        for got in (done, gave_up):
            assert (got.attempt, got.node) == (1, settings.node_name)
            assert began - 1 <= got.started_at.timestamp() <= got.finished_at.timestamp()
            assert worker_of(engine, got.id) == stack.state.worker_id
        assert gave_up.error == "ValueError: boom"
    finally:
        stack.close()


def test_a_run_cancelled_while_its_start_was_lost_is_still_interrupted(engine):
    run_id = enqueued_run(engine)
    with engine.begin() as conn:
        assert runs.start_run(conn, run_id, 1, "node-a", "node-a/1/x")
    lose_start(engine, run_id)
    with engine.begin() as conn:  # the admin sees `enqueued`: discarded at once
        assert runs.cancel_waiting(conn, run_id, "cancelled before it ran")
        # The worker running it still finds the request, and interrupts the job.
        assert runs.cancel_requested(conn, [run_id]) == [run_id]
        assert not runs.mark_succeeded_many(conn, [(run_id, 1, 0.1, *START)])
    assert get(engine, run_id).state == "discarded"
