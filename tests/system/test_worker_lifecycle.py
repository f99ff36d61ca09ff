"""A worker stopped with SIGTERM hands back its job; one killed with SIGKILL is rescued."""

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from shared import runs
from shared.dispatch import dispatch, make_sender
from tests.support.logs import wait_event
from tests.support.runs import EXAMPLES, get, send_run, wait_state
from tests.support.waiting import wait_for

SLOW = {"SRJOBS_JOB_MODULES": EXAMPLES, "EXAMPLE_SLOW_SECONDS": "60"}
FAST = {"SRJOBS_JOB_MODULES": EXAMPLES, "EXAMPLE_SLOW_SECONDS": "0"}
QUICK_HEARTBEAT = {"SRJOBS_WORKER_HEARTBEAT_SECONDS": "0.2", "SRJOBS_WORKER_DEAD_SECONDS": "1"}


def seeded(engine, name="example_slow"):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT 1 FROM job_schedules WHERE name = :n"), {"n": name}
        ).scalar()


def test_sigterm_exits_within_10s_and_hands_back_the_job(services, settings, engine):
    # Default shutdown grace: the job gets 6 s to finish, then it is handed back.
    first = services.start("worker", "worker", "--threads", "2", env=SLOW)
    wait_for(lambda: seeded(engine), 30, "seeding")
    broker = make_sender(settings)
    try:
        sent = send_run(engine, broker, "example_slow")
        wait_state(engine, sent.id, "running")
        stopped_at = time.monotonic()
        first.signal(signal.SIGTERM)
        try:
            first.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the worker did not exit within 10 s of SIGTERM") from None
        assert time.monotonic() - stopped_at < 10
        assert first.proc.returncode == 0, first.log()
        run = get(engine, sent.id)
        assert run.state == "failed" and run.error.startswith("Interrupted"), run

        # The next attempt was handed back to the broker: another worker finishes it.
        services.start("worker", "worker", "--threads", "2", env=FAST)
        done = wait_state(engine, sent.id, "succeeded")
        assert done.attempt == 2 and done.error is None
    finally:
        broker.close()


def test_run_of_a_killed_worker_is_rescued_and_retried(services, settings, engine):
    doomed = services.start("worker", "worker", "--threads", "2", env={**SLOW, **QUICK_HEARTBEAT})
    wait_for(lambda: seeded(engine, "srjobs_rescue_runs"), 30, "seeding")
    broker = make_sender(settings)
    try:
        sent = send_run(engine, broker, "example_slow")
        running = wait_state(engine, sent.id, "running")
        doomed.signal(signal.SIGKILL)
        doomed.proc.wait(10)
        assert get(engine, sent.id).state == "running"  # nobody is left to say otherwise

        rescuer = services.start(
            "worker",
            "worker",
            "--threads",
            "2",
            env={**FAST, **QUICK_HEARTBEAT, "LOG_FORMAT": "json"},
        )

        def rescued():
            # The built-in rescue job, as the scheduler would fire it every minute.
            rescue = send_run(engine, broker, "srjobs_rescue_runs")
            wait_state(engine, rescue.id, ("succeeded", "failed", "discarded"))
            return get(engine, sent.id).attempt > running.attempt

        wait_for(rescued, 30, "the orphaned run to be rescued", interval=0.3)
        done = wait_state(engine, sent.id, "succeeded")
        assert done.attempt == 2 and done.node != running.node
        rescue = wait_event(rescuer, "run_rescued", 5, run_id=sent.id)
        assert rescue["state"] == "failed" and rescue["error"].startswith("WorkerLost")
    finally:
        broker.close()


def test_a_unique_job_never_overlaps_itself(services, settings, engine):
    env = {**SLOW, "SRJOBS_WORKER_SHUTDOWN_SECONDS": "0.5"}
    services.start("worker", "worker", "--threads", "2", env=env)
    wait_for(lambda: seeded(engine, "example_exclusive"), 30, "seeding")
    broker = make_sender(settings)
    try:
        slot = datetime(2026, 1, 1, tzinfo=UTC)
        with engine.begin() as conn:
            fires = [
                runs.create_cron_run(conn, "example_exclusive", slot + timedelta(minutes=m))
                for m in (0, 1)
            ]
        first, second = fires
        assert dispatch(engine, broker, first, "example_exclusive", "default")
        wait_state(engine, first.id, "running")
        assert dispatch(engine, broker, second, "example_exclusive", "default")
        run = wait_state(engine, second.id, "discarded")
        assert run.error == (
            "Overlap: another run of example_exclusive is running; this one is skipped"
        )
        assert get(engine, first.id).state == "running"
    finally:
        broker.close()
