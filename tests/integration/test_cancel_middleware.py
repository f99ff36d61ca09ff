"""The Cancellation middleware in-process: a StubBroker and a Dramatiq worker thread, with the
run records in real Postgres."""

import time

import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import text

from shared import runs
from shared.dispatch import run_message
from tests.support.waiting import wait_for
from worker.jobs import REGISTRY, JobSpec
from worker.middleware.cancel import Cancellation
from worker.middleware.context import ProcessState
from worker.resources import close_resources, open_resources

ACTOR = "inproc_spin"


@pytest.fixture
def stack(settings):
    broker = StubBroker()
    cancellation = Cancellation(ProcessState(settings))
    broker.add_middleware(cancellation)  # last: its after-hook runs before Retries'

    @dramatiq.actor(broker=broker, actor_name=ACTOR, max_retries=3, min_backoff=10)
    def spin(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pass

    REGISTRY[ACTOR] = JobSpec(ACTOR, ACTOR, None, "default", "UTC", "", True)
    broker.emit_after("process_boot")
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        yield broker, cancellation
    finally:
        worker.stop()
        broker.emit_before("worker_shutdown", worker)
        REGISTRY.pop(ACTOR, None)
        close_resources()


def test_a_cancelled_loop_is_interrupted_discarded_and_not_retried(stack, engine):
    broker, cancellation = stack
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO job_schedules (name, actor, cron) VALUES (:n, :n, '@daily')"),
            {"n": ACTOR},
        )
        run = runs.create_manual_run(conn, ACTOR, args={"seconds": 60})
        assert runs.start_run(conn, run.id, 1, "test-node")  # RunRecords' step, not under test
    broker.enqueue(run_message(run, ACTOR, "default"))
    wait_for(lambda: cancellation._running, 10, "the job to start")
    assert cancellation.check() == []  # nothing asked yet
    with engine.begin() as conn:
        assert runs.request_cancel(conn, run.id)
    stopped = time.monotonic()
    broker.join("default", fail_fast=False, timeout=10_000)
    assert time.monotonic() - stopped < 5
    with engine.connect() as conn:
        done = runs.get_run(conn, run.id)
    assert done.state == "discarded" and done.error.startswith("cancelled while running")
    assert "RunCancelled" in done.error
    assert not broker.queues["default.DQ"].qsize()  # no retry scheduled
    assert broker.dead_letters and broker.dead_letters[-1].message_id


def test_a_statement_in_the_server_is_cancelled(stack, settings, engine):
    broker, _ = stack
    jobs_engine = open_resources(settings).engine

    @dramatiq.actor(broker=broker, actor_name="inproc_sleep", max_retries=3)
    def sleep_in_sql() -> None:
        with jobs_engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(60)"))

    REGISTRY["inproc_sleep"] = JobSpec(
        "inproc_sleep", "inproc_sleep", None, "default", "UTC", "", True
    )
    try:
        with engine.begin() as conn:
            run = runs.create_manual_run(conn, "inproc_sleep")
            assert runs.start_run(conn, run.id, 1, "test-node")
        broker.enqueue(run_message(run, "inproc_sleep", "default"))

        def sleeping() -> bool:
            with engine.connect() as conn:
                return bool(
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                            " AND query = 'SELECT pg_sleep(60)' AND datname = current_database()"
                        )
                    ).scalar()
                )

        wait_for(sleeping, 10, "the statement in the server")
        with engine.begin() as conn:
            runs.request_cancel(conn, run.id)
        wait_for(lambda: not sleeping(), 5, "the statement cancelled in the server")
        broker.join("default", fail_fast=False, timeout=10_000)
        with engine.connect() as conn:
            assert runs.get_run(conn, run.id).state == "discarded"
    finally:
        REGISTRY.pop("inproc_sleep", None)
