"""Run records written by real worker processes: every transition, retries, skips."""

import time

import httpx
from dramatiq import Message
from sqlalchemy import text

from shared import runs, schedules
from shared.dispatch import RUN_ID_OPTION, make_sender
from srjobs.dev import free_port
from tests.support.runs import EXAMPLES, broker_copies, get, send_run, traceback_of, wait_state
from tests.support.waiting import wait_for


def schedule_of(engine, name):
    with engine.connect() as conn:
        try:
            return schedules.get_schedule(conn, name)
        except Exception:
            return None


def test_added_job_is_seeded_run_recorded_and_measured(services, settings, engine):
    # An admin already changed this job's schedule: seeding must not overwrite it.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_schedules (name, actor, queue, cron)"
                " VALUES ('example_count_traces', 'example_count_traces', 'examples', '@hourly')"
            )
        )
    port = free_port()
    worker = services.start(
        "worker",
        "worker",
        "--processes",
        "2",
        "--threads",
        "2",
        env={"SRJOBS_JOB_MODULES": EXAMPLES, "SRJOBS_HEALTH_PORT": str(port)},
    )
    periodiq_row = wait_for(lambda: schedule_of(engine, "example_periodiq"), 30, "seeding")
    assert periodiq_row.cron == "*/10 * * * *"
    assert schedule_of(engine, "example_count_traces").cron == "@hourly"
    assert schedule_of(engine, "srjobs_prune_runs") and schedule_of(engine, "srjobs_rescue_runs")

    broker = make_sender(settings)
    try:
        sent = send_run(engine, broker, "example_count_traces")
        assert get(engine, sent.id).state == "enqueued"
        done = wait_state(engine, sent.id, "succeeded")
        assert done.trigger == "manual" and done.attempt == 1 and done.node and not done.error
        assert done.enqueued_at <= done.started_at <= done.finished_at

        periodic = wait_state(engine, send_run(engine, broker, "example_periodiq").id, "succeeded")
        assert periodic.attempt == 1
    finally:
        broker.close()

    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    metrics = wait_for(
        lambda: (
            (t := httpx.get(f"{base}/metrics", timeout=5).text).count(
                'job="example_count_traces",outcome="succeeded"'
            )
            >= 2
            and t
        ),
        10,
        "run metrics",
    )
    assert 'srjobs_worker_runs_total{job="example_count_traces",outcome="succeeded"} 1.0' in metrics
    assert "srjobs_worker_run_duration_seconds_bucket" in metrics
    assert worker.proc.poll() is None


def test_retries_permanent_errors_direct_sends_and_skips(services, settings, engine):
    services.start("worker", "worker", "--threads", "2", env={"SRJOBS_JOB_MODULES": EXAMPLES})
    wait_for(lambda: schedule_of(engine, "example_fails"), 30, "seeding")
    broker = make_sender(settings)
    try:
        # Retried with the job's backoff, then given up: failed -> ... -> discarded.
        flaky = send_run(engine, broker, "example_fails", "flaky")
        run = wait_state(engine, flaky.id, "discarded")
        assert run.attempt == 3  # max_retries=2
        assert run.error == "FlakyUpstream: upstream answered 503 (flaky)"
        assert "raise FlakyUpstream" in traceback_of(engine, flaky.id)

        # Declared permanent (`permanent=` and PermanentJobError): no retry.
        for kind, error in (
            ("config", "BadConfig: the API key is missing"),
            ("permanent", "PermanentJobError: the target was deleted"),
        ):
            run = wait_state(
                engine, send_run(engine, broker, "example_fails", kind).id, "discarded"
            )
            assert (run.attempt, run.error) == (1, error)

        # actor.send() from code, without a run id: a manual run is recorded.
        broker.enqueue(Message("examples", "example_count_traces", (), {}, {}))
        direct = wait_for(
            lambda: [
                r for r in list_runs(engine, "example_count_traces") if r.state == "succeeded"
            ],
            30,
            "a run for the direct message",
        )[0]
        assert direct.trigger == "manual" and direct.attempt == 1 and direct.node

        # Messages that must not run: a finished run, an unknown run, a stale attempt.
        with engine.begin() as conn:
            finished = runs.create_manual_run(conn, "example_count_traces")
            runs.start_run(conn, finished.id, 1, "elsewhere")
            runs.mark_finished(conn, finished.id, "succeeded")
            stale = runs.create_manual_run(conn, "example_slow")
            runs.start_run(conn, stale.id, 2, "elsewhere")
            runs.mark_finished(conn, stale.id, "failed", error="E: x")
        for run_id, actor, retries in (
            (finished.id, "example_count_traces", 0),
            (999_999, "example_count_traces", 0),
            (stale.id, "example_slow", 0),  # attempt 1 of a run whose attempt 2 failed
        ):
            broker.enqueue(
                Message(
                    "default" if actor == "example_slow" else "examples",
                    actor,
                    (),
                    {},
                    {RUN_ID_OPTION: run_id, "retries": retries},
                )
            )
        skipped = (finished.id, 999_999, stale.id)
        wait_for(
            lambda: not any(broker_copies(settings, run_id) for run_id in skipped),
            30,
            "the three messages to be acknowledged without running",
        )

        # Too old to run (Dramatiq's AgeLimit): the run is discarded, not left enqueued.
        with engine.begin() as conn:
            expired = runs.create_manual_run(conn, "example_count_traces")
        broker.enqueue(
            Message(
                "examples",
                "example_count_traces",
                (),
                {},
                {RUN_ID_OPTION: expired.id, "max_age": 1000},
                message_timestamp=int(time.time() * 1000) - 60_000,
            )
        )
        run = wait_state(engine, expired.id, "discarded")
        assert run.error.startswith("Expired") and run.started_at is None
        with engine.connect() as conn:  # the unknown run's message created no run
            assert (
                conn.execute(text("SELECT count(*) FROM job_runs WHERE id = 999999")).scalar() == 0
            )
        assert (get(engine, finished.id).node, get(engine, finished.id).attempt) == ("elsewhere", 1)
        assert (get(engine, stale.id).state, get(engine, stale.id).attempt) == ("failed", 2)
    finally:
        broker.close()


def list_runs(engine, job):
    with engine.connect() as conn:
        return runs.list_runs(conn, job)


def test_migrate_seeds_declared_jobs_without_overwriting(services, engine):
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_schedules SET cron = '@hourly', enabled = false"))
    result = services.run("migrate", env={"SRJOBS_JOB_MODULES": EXAMPLES})
    assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        rows = {r.name: r for r in schedules.list_schedules(conn)}
    assert {"example_count_traces", "example_periodiq", "srjobs_prune_runs"} <= set(rows)
    assert (
        rows["example_fails"].cron == "@daily" and rows["example_count_traces"].queue == "examples"
    )
    assert (rows["refresh_trace_summaries"].cron, rows["refresh_trace_summaries"].enabled) == (
        "@hourly",
        False,
    )
