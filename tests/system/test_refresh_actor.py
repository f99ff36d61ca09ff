"""The refresh actor in a real worker process against the real materialized view."""

from sqlalchemy import text

from shared import runs
from shared.dispatch import dispatch, make_sender
from tests.support.spans import insert_trace
from tests.support.waiting import wait_for


def summary_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT trace_id FROM otel_trace_summaries")).scalars())


def run_now(engine, broker):
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, "refresh_trace_summaries")
    assert dispatch(engine, broker, run, "refresh_trace_summaries", "default")
    return run


def finished(engine, run_id):
    with engine.connect() as conn:
        run = runs.get_run(conn, run_id)
    return run if run.state in ("succeeded", "failed", "discarded") else None


def test_view_rows_change_after_new_spans_and_a_run(services, settings, engine):
    broker = make_sender(settings)
    services.start("worker", "worker", "--threads", "2")
    try:
        first = insert_trace(engine)
        assert first not in summary_ids(engine)
        sent = run_now(engine, broker)
        run = wait_for(lambda: finished(engine, sent.id), 60, "first run")
        assert run.state == "succeeded" and run.trigger == "manual"
        assert first in summary_ids(engine)

        second = insert_trace(engine, services=("web",))
        assert second not in summary_ids(engine)
        sent = run_now(engine, broker)
        run = wait_for(lambda: finished(engine, sent.id), 60, "second run")
        assert run.state == "succeeded"
        assert {first, second} <= summary_ids(engine)
    finally:
        broker.close()
