"""Runs prepared ahead of their slot, against real Postgres and Redis: held by the outbox and
sent at the slot, never before, by this leader or by the outbox that adopts them."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from scheduler.outbox import Outbox, make_broker
from scheduler.sending import ORPHAN_AFTER_SECONDS
from shared import runs
from shared.errors import LeadershipLost
from tests.support.runs import broker_copies, get
from tests.support.waiting import wait_for

JOB = "refresh_trace_summaries"
AHEAD = timedelta(seconds=0.8)


def prepare(engine, slot: datetime) -> runs.Run:
    with engine.begin() as conn:
        run = runs.create_cron_run(conn, JOB, slot)
    assert run is not None
    return run


@pytest.fixture
def outboxes(settings, engine):
    made: list[Outbox] = []

    def make(**kwargs) -> Outbox:
        outbox = Outbox(settings, engine, make_broker(settings), **kwargs)
        outbox.start()
        made.append(outbox)
        return outbox

    yield make
    for outbox in made:
        outbox.stop(drop=True)
        outbox.join(5)


def test_a_prepared_run_is_held_until_its_slot_then_sent_once(settings, engine, outboxes):
    slot = datetime.now(UTC) + AHEAD
    run = prepare(engine, slot)
    outboxes().send_many([(run, JOB, "default")], not_before=slot)

    # Until just before the slot: still pending, and nothing of it in Redis.
    while datetime.now(UTC) < slot - timedelta(milliseconds=30):
        assert get(engine, run.id).state == "pending"
        assert broker_copies(settings, run.id) == []
    sent = wait_for(lambda: (r := get(engine, run.id)).state == "enqueued" and r, 5, "the send")
    assert sent.enqueued_at is not None and sent.enqueued_at >= slot
    assert len(broker_copies(settings, run.id)) == 1


def test_a_leader_that_cannot_confirm_its_lock_leaves_prepared_runs_pending(
    settings, engine, outboxes
):
    checked = []

    def lost() -> None:
        checked.append(datetime.now(UTC))
        raise LeadershipLost("test: the lock session is gone")

    slot = datetime.now(UTC) + AHEAD
    run = prepare(engine, slot)
    outbox = outboxes(fence=lost)
    outbox.send_many([(run, JOB, "default")], not_before=slot)
    wait_for(lambda: checked, 5, "the lock check before the slot")
    assert checked[0] < slot
    wait_for(lambda: datetime.now(UTC) > slot + timedelta(milliseconds=200), 5, "the slot")
    assert get(engine, run.id).state == "pending" and broker_copies(settings, run.id) == []


def test_an_adopting_outbox_never_resends_a_prepared_run_before_its_slot(engine):
    now = datetime.now(UTC)
    ahead = prepare(engine, now + timedelta(seconds=30))
    due = prepare(engine, now - timedelta(seconds=30))
    with engine.begin() as conn:
        # Recorded long ago (its sender gone), its slot still 30 s away: not due.
        conn.execute(
            text("UPDATE job_runs SET created_at = now() - interval '1 hour' WHERE id = :i"),
            {"i": ahead.id},
        )
        # With no grace at all, a never-sent run is due from its slot, not from its record.
        found = {p.run.id for p in runs.pending_to_send(conn, limit=10, orphan_after_seconds=0)}
        assert found == {due.id}
        # Its slot came and went ORPHAN_AFTER_SECONDS ago: adopted.
        conn.execute(
            text("UPDATE job_runs SET scheduled_at = now() - :s WHERE id = :i"),
            {"s": timedelta(seconds=ORPHAN_AFTER_SECONDS + 1), "i": ahead.id},
        )
        grace = ORPHAN_AFTER_SECONDS
        found = {p.run.id for p in runs.pending_to_send(conn, limit=10, orphan_after_seconds=grace)}
    # `due` was recorded just now: its sender may still be at work (left alone, as before).
    assert found == {ahead.id}
