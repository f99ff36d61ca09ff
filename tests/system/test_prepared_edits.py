"""A change landing within the lookahead of a slot the leader already prepared: the prepared
run still fires at its slot (a pause or edit applies from the next slot); a cancel of it holds."""

from datetime import timedelta

from sqlalchemy import text

from tests.support.runs import get
from tests.support.schedulers import cron_slots, lock_holder, prepared, set_cron, start_scheduler
from tests.support.waiting import wait_for
from webadmin.control import cancel_run

JOB = "refresh_trace_summaries"


def leading(services, engine) -> None:
    set_cron(engine, "@every 1s")
    start_scheduler(services, "node-a")
    wait_for(lambda: lock_holder(engine) == "node-a", 30, "node-a to lead")
    wait_for(lambda: len(cron_slots(engine)) >= 2, 20, "fires")


def test_a_schedule_paused_after_its_slot_was_prepared_fires_that_slot_only(services, engine):
    leading(services, engine)
    run_id, slot = wait_for(lambda: prepared(engine), 10, "a fire prepared ahead", 0.005)
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_schedules SET enabled = false WHERE name = :n"), {"n": JOB})
    sent = wait_for(lambda: (r := get(engine, run_id)).state == "enqueued" and r, 5, "the send")
    assert sent.enqueued_at >= slot
    wait_for(lambda: get(engine, run_id).enqueued_at + timedelta(seconds=2) < now(engine), 5, "2s")
    assert cron_slots(engine)[-1] == slot  # nothing after it


def test_a_prepared_run_cancelled_before_its_slot_stays_cancelled(services, engine):
    leading(services, engine)
    run_id, slot = wait_for(lambda: prepared(engine), 10, "a fire prepared ahead", 0.005)
    cancelled = cancel_run(engine, run_id, "test")
    assert cancelled.state == "discarded" and cancelled.error.startswith("cancelled")
    wait_for(lambda: now(engine) > slot + timedelta(seconds=1), 5, "the slot to pass")
    after = get(engine, run_id)
    # Its message may reach Redis at the slot; the worker skips a finished run.
    assert after.state == "discarded" and after.enqueued_at is None


def now(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT clock_timestamp()")).scalar_one()
