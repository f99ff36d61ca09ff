"""srjobs' worker middlewares in-process: StubBroker, real Postgres, real Dramatiq Worker."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest
from dramatiq import Message
from periodiq import cron
from prometheus_client import REGISTRY as METRICS
from sqlalchemy import text

from shared import runs
from shared.dispatch import RUN_ID_OPTION
from tests.support.runs import get, wait_state
from tests.support.stack import QUEUE, Stack
from tests.support.waiting import wait_for
from worker.jobs import REGISTRY
from worker.rescue import rescue_orphans

SLOT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def stack(settings):
    s = Stack(settings)
    yield s
    s.close()


def cron_runs(engine, job: str, n: int) -> list[runs.Run]:
    with engine.begin() as conn:
        made = [runs.create_cron_run(conn, job, SLOT + timedelta(minutes=m)) for m in range(n)]
        runs.mark_enqueued_many(conn, [r.id for r in made])
    return made


def worker_of(engine, run_id: int) -> str | None:
    with engine.connect() as conn:
        query = text("SELECT worker FROM job_runs WHERE id = :id")
        return conn.execute(query, {"id": run_id}).scalar()


def skipped(job: str, reason: str) -> float:
    labels = {"job": job, "reason": reason}
    return METRICS.get_sample_value("srjobs_worker_skipped_messages_total", labels) or 0.0


def heartbeat_rows(engine, worker_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM worker_nodes WHERE worker = :w"), {"w": worker_id}
        ).scalar()


def test_successes_are_batched_failures_written_at_once(settings, engine):
    stack = Stack(dataclasses.replace(settings, run_flush_seconds=60))
    try:

        def bad() -> None:
            raise ValueError("boom")

        ok = stack.declare(lambda: None)
        failing = stack.declare(bad)
        good, broken = cron_runs(engine, ok, 3), cron_runs(engine, failing, 1)[0]
        with stack.worker():
            wait_for(lambda: heartbeat_rows(engine, stack.state.worker_id), 10, "a heartbeat")
            for run in good:
                stack.send(ok, run.id)
            stack.send(failing, broken.id)
            # No retry left: discarded, and written at once with its error.
            done = wait_state(engine, broken.id, "discarded", timeout=10)
            assert done.error == "ValueError: boom" and done.attempt == 1
            with engine.connect() as conn:
                assert "ValueError: boom" in runs.get_traceback(conn, broken.id)
            # Succeeded runs wait in the buffer (60 s interval) while the worker runs.
            wait_for(lambda: stack.state.successes.pending() == 3, 10, "buffered successes")
            assert {get(engine, r.id).state for r in good} == {"running"}
        # The worker stopped: the buffer was written, the heartbeat row removed.
        for run in good:
            got = get(engine, run.id)
            assert (got.state, got.attempt, got.node) == ("succeeded", 1, settings.node_name)
            assert got.started_at <= got.finished_at
            assert worker_of(engine, run.id) == stack.state.worker_id
        assert heartbeat_rows(engine, stack.state.worker_id) == 0
    finally:
        stack.close()


def test_a_failed_attempt_is_retried_on_the_same_run(stack, engine):
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first")

    job = stack.declare(flaky, retries=2)
    (run,) = cron_runs(engine, job, 1)
    with stack.worker():
        stack.send(job, run.id)
        failed = wait_state(engine, run.id, "failed", timeout=10)
        assert (failed.attempt, failed.error) == (1, "RuntimeError: first")
        done = wait_state(engine, run.id, "succeeded", timeout=10)
    assert (done.attempt, done.error, len(calls)) == (2, None, 2)


def test_finished_unknown_and_stale_messages_are_skipped(stack, engine):
    calls: list[int] = []
    job = stack.declare(lambda: calls.append(1))
    finished, stale = cron_runs(engine, job, 2)
    with engine.begin() as conn:
        runs.start_run(conn, finished.id, 1, "elsewhere")
        runs.mark_finished(conn, finished.id, "succeeded")
        runs.start_run(conn, stale.id, 2, "elsewhere")
        runs.mark_finished(conn, stale.id, "failed", error="E: x")
    before = {r: skipped(job, r) for r in ("succeeded", "unknown", "stale")}
    with stack.worker():
        stack.send(job, finished.id)
        stack.send(job, 999_999)
        stack.send(job, stale.id, retries=0)  # attempt 1 of a run whose attempt 2 failed
        stack.broker.join(QUEUE, timeout=10_000)
    assert calls == []
    assert {r: skipped(job, r) - before[r] for r in before} == {
        "succeeded": 1,
        "unknown": 1,
        "stale": 1,
    }
    assert (get(engine, finished.id).state, get(engine, finished.id).node) == (
        "succeeded",
        "elsewhere",
    )
    assert (get(engine, stale.id).state, get(engine, stale.id).attempt) == ("failed", 2)


def test_a_message_sent_from_code_gets_a_manual_run(stack, engine):
    job = stack.declare(lambda: None)
    with stack.worker():
        message = stack.send(job, None)
        stack.broker.join(QUEUE, timeout=10_000)
        with engine.connect() as conn:
            (run,) = runs.list_runs(conn, job)
        done = wait_state(engine, run.id, "succeeded", timeout=10)
    assert (done.trigger, done.attempt, done.node) == ("manual", 1, stack.state.settings.node_name)
    assert message.message_id  # the run was recorded for this message


def test_an_expired_message_discards_its_run(stack, engine):
    calls: list[int] = []
    job = stack.declare(lambda: calls.append(1))
    (run,) = cron_runs(engine, job, 1)
    with stack.worker():
        too_old = int(datetime.now(UTC).timestamp() * 1000) - 60_000
        options = {RUN_ID_OPTION: run.id, "max_age": 1000}
        stack.broker.enqueue(Message(QUEUE, job, (), {}, options, message_timestamp=too_old))
        done = wait_state(engine, run.id, "discarded", timeout=10)
    assert done.error.startswith("Expired") and done.started_at is None and calls == []


def test_a_unique_job_is_discarded_while_another_run_holds_the_lock(stack, engine):
    entered, gate = threading.Event(), threading.Event()

    def exclusive() -> None:
        entered.set()
        gate.wait(10)

    job = stack.declare(exclusive, unique=True)
    first, second, third = cron_runs(engine, job, 3)
    with stack.worker():
        stack.send(job, first.id)
        assert entered.wait(10)
        stack.send(job, second.id)
        overlapped = wait_state(engine, second.id, "discarded", timeout=10)
        assert overlapped.error == f"Overlap: another run of {job} is running; this one is skipped"
        assert get(engine, first.id).state == "running"
        gate.set()
        wait_state(engine, first.id, "succeeded", timeout=10)
        stack.send(job, third.id)  # the lock was released with the first run's outcome
        wait_state(engine, third.id, "succeeded", timeout=10)


def test_a_job_still_running_at_shutdown_is_handed_back(stack, engine):
    entered, gate = threading.Event(), threading.Event()

    def stuck() -> None:
        entered.set()
        gate.wait(30)

    job = stack.declare(stuck, retries=3)
    (run,) = cron_runs(engine, job, 1)
    try:
        with stack.worker(grace_ms=300):
            stack.send(job, run.id)
            assert entered.wait(10)
        handed = get(engine, run.id)
        assert handed.state == "failed" and handed.error.startswith("Interrupted")
        (resent,) = [Message.decode(m) for m in stack.broker.queues[QUEUE].queue]
        assert resent.options["retries"] == 1
        assert resent.options[RUN_ID_OPTION] == run.id
    finally:
        gate.set()  # the old thread finishes; its message's run is no longer in flight
    with stack.worker():
        done = wait_state(engine, run.id, "succeeded", timeout=10)
    assert done.attempt == 2 and done.error is None


def test_an_orphan_is_rescued_and_runs_again_here(stack, engine):
    job = stack.declare(lambda: None, retries=3)
    (run,) = cron_runs(engine, job, 1)
    with engine.begin() as conn:
        runs.start_run(conn, run.id, 1, "gone", "gone/1/dead")
        conn.execute(
            text("UPDATE job_runs SET started_at = now() - interval '1 minute' WHERE id = :id"),
            {"id": run.id},
        )
    counts = rescue_orphans(engine, stack.broker, 30)
    assert counts == {"failed": 1, "discarded": 0}
    with stack.worker():
        done = wait_state(engine, run.id, "succeeded", timeout=10)
    assert done.attempt == 2 and done.node == stack.state.settings.node_name
    assert worker_of(engine, run.id) == stack.state.worker_id
    with engine.connect() as conn:
        assert runs.find_orphans(conn, 30) == []


def test_a_periodiq_actor_is_adopted_as_a_job(stack):
    def tick() -> None:
        """Ticks."""

    name = f"mw_periodiq_{id(tick)}"
    dramatiq.actor(tick, broker=stack.broker, actor_name=name, periodic=cron("*/5 * * * *"))
    stack.names.append(name)
    spec = REGISTRY[name]
    assert (spec.schedule, spec.description, spec.queue) == ("*/5 * * * *", "Ticks.", "default")
