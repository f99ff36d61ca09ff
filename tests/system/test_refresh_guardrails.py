"""The refresh job's guardrails, each against a real worker and a real materialized view."""

from sqlalchemy import text

from shared.dispatch import make_sender
from tests.conftest import make_settings, service_env
from tests.support.logs import wait_event
from tests.support.procs import Services
from tests.support.runs import broker_copies, send_run, wait_state
from tests.support.throwaway import throwaway_postgres
from tests.support.waiting import wait_for
from worker.refresh import REFRESH_LOCK_CLASS, TRACE_SUMMARIES_VIEW

JOB = "refresh_trace_summaries"
FINISHED = ("succeeded", "discarded")


def populated(engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT relispopulated FROM pg_class WHERE oid = to_regclass(:v)"),
            {"v": TRACE_SUMMARIES_VIEW},
        ).scalar()


def test_guardrails_discard_with_a_reason_and_the_worker_keeps_serving(services, settings, engine):
    worker = services.start("worker", "worker", "--threads", "2", env={"LOG_FORMAT": "json"})
    broker = make_sender(settings)
    try:
        # Another refresh holds the view's lock: skipped at once, not queued behind it.
        with engine.connect() as holder:
            holder.execute(
                text("SELECT pg_advisory_xact_lock(:c, hashtext(:v))"),
                {"c": REFRESH_LOCK_CLASS, "v": TRACE_SUMMARIES_VIEW},
            )
            run = wait_state(engine, send_run(engine, broker, JOB).id, FINISHED)
            holder.rollback()
        assert (run.state, run.attempt) == ("discarded", 1)
        assert run.error == (
            "RefreshBusy: a refresh of 'otel_trace_summaries' is already running; skipped"
        )

        # Never populated: one plain REFRESH instead of CONCURRENTLY, and it says so.
        with engine.begin() as conn:
            conn.execute(text("REFRESH MATERIALIZED VIEW otel_trace_summaries WITH NO DATA"))
        assert not populated(engine)
        run = wait_state(engine, send_run(engine, broker, JOB).id, FINISHED)
        assert run.state == "succeeded" and populated(engine)
        wait_event(worker, "refresh_plain", 5, view=TRACE_SUMMARIES_VIEW)

        # No unique index: a clear error, no retries.
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX otel_trace_summaries_trace_id"))
        run = wait_state(engine, send_run(engine, broker, JOB).id, FINISHED)
        assert (run.state, run.attempt) == ("discarded", 1)
        assert run.error.startswith("NoUniqueIndex: cannot refresh 'otel_trace_summaries'")
        assert "unique index" in run.error

        # The view is gone: discarded once, naming the view; no retry storm.
        with engine.begin() as conn:
            conn.execute(text("DROP MATERIALIZED VIEW otel_trace_summaries"))
        run = wait_state(engine, send_run(engine, broker, JOB).id, FINISHED)
        assert (run.state, run.attempt) == ("discarded", 1)
        assert "otel_trace_summaries" in run.error and run.error.startswith("ViewMissing")

        # The worker keeps serving other jobs.
        other = wait_state(engine, send_run(engine, broker, "srjobs_prune_runs").id, FINISHED)
        assert other.state == "succeeded"
        # Nothing was retried: every attempt above is 1 and no message waits for a retry.
        with engine.connect() as conn:
            ids = list(conn.execute(text("SELECT id FROM job_runs")).scalars())
        wait_for(
            lambda: not any(broker_copies(settings, r, dead_letters=False) for r in ids),
            10,
            "every message done with (acknowledged or dead-lettered), none waiting for a retry",
        )
        assert worker.proc.poll() is None
    finally:
        broker.close()


def test_database_down_fails_and_retries_with_backoff(tmp_path):
    """The worker's database goes away: the message is retried with backoff until it is back."""
    with throwaway_postgres() as pg:
        s = make_settings(pg.url)
        from shared.migrate import migrate

        migrate(s, [])
        from shared.db import make_engine

        engine = make_engine(s)
        services = Services({**service_env(s), "SRJOBS_WORKER_HEARTBEAT_SECONDS": "0.5"}, tmp_path)
        broker = make_sender(s)
        try:
            port = pick_port()
            worker = services.start(
                "worker", "worker", "--threads", "2", env={"SRJOBS_HEALTH_PORT": str(port)}
            )
            wait_for(lambda: ready(port) == 200, 30, "worker ready")
            sent = send_run(
                engine,
                broker,
                JOB,
                options={"min_backoff": 300, "max_backoff": 1000, "max_retries": 100},
            )
            engine.dispose()
            pg.stop()
            wait_for(lambda: ready(port) == 503, 30, "readyz to report the database down")
            wait_for(
                lambda: any(m.options.get("retries", 0) >= 2 for m in broker_copies(s, sent.id)),
                30,
                "two retries with backoff",
            )
            pg.start()
            run = wait_state(engine, sent.id, "succeeded", timeout=60)
            assert run.attempt >= 2
            assert ready(port) == 200
            assert worker.proc.poll() is None
        finally:
            broker.close()
            services.stop_all()
            engine.dispose()


def pick_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ready(port: int) -> int:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code
