"""A pass of the leader's APScheduler against real Postgres: fires recorded before the store
moves on, and a pass whose fires could not be recorded leaves its slots due."""

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from scheduler.executor import FireExecutor
from scheduler.jobstore import FencedJobStore
from scheduler.leader import LeaderScheduler
from scheduler.leadership import LockSession
from scheduler.lookahead import LOOKAHEAD_SECONDS
from scheduler.sync import Mirror
from shared import schedules
from shared.errors import LeadershipLost
from tests.support.waiting import wait_for

JOB = "refresh_trace_summaries"


class Collect:
    def __init__(self) -> None:
        self.sent = []
        self.not_before = []

    def send_many(self, fired, not_before=None) -> None:
        self.sent.extend((run.id, actor, queue) for run, actor, queue in fired)
        self.not_before.extend([not_before] * len(fired))


@pytest.fixture
def leader(settings, engine):
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_schedules SET cron = '@every 1s'"))
    lock = LockSession(settings)
    lock.connect()
    assert lock.acquire(1)
    sender = Collect()
    store = FencedJobStore(lock)
    scheduler = LeaderScheduler(store, FireExecutor(lock, sender, 60))
    scheduler.start(paused=True)
    with engine.connect() as conn:
        Mirror(scheduler, store, 60).reconcile(schedules.list_schedules(conn))
    yield scheduler, lock, sender
    scheduler.shutdown(wait=False)
    lock.close()


def stored_next(engine) -> float:
    with engine.connect() as conn:
        return conn.execute(text("SELECT next_run_time FROM apscheduler_jobs")).scalar_one()


def slots(engine) -> list[datetime]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT scheduled_at FROM job_runs ORDER BY 1")).scalars())


def test_unrecorded_fires_leave_their_slots_due(leader, engine, monkeypatch):
    scheduler, lock, sender = leader
    due = stored_next(engine)
    wait_for(lambda: time.time() > due + 1.2, 5, "two slots to be due")

    attempts = []

    def fail(fires, args=None):
        attempts.append(fires)
        raise LeadershipLost("test: the lock session is gone")

    monkeypatch.setattr(lock, "record_cron_runs", fail)
    scheduler.resume()
    wait_for(lambda: len(attempts) >= 2, 5, "two failed passes")
    assert stored_next(engine) == due and slots(engine) == []

    monkeypatch.undo()
    fired = wait_for(lambda: slots(engine), 5, "the pass after the failure to fire")
    # The missed slots, coalesced into one fire; the next pass may have prepared the slot after.
    assert fired[0].timestamp() > due and len(fired) <= 2
    assert all((later - fired[0]).total_seconds() >= 1 for later in fired[1:])
    # The store moves on just after the fire is recorded (two statements): wait for it.
    wait_for(lambda: stored_next(engine) > fired[0].timestamp(), 5, "the store to move on")
    assert sender.sent and sender.sent[0][1:] == (JOB, "default")
    assert fired[0] <= datetime.now(UTC) and sender.not_before[0] is None  # sent at once


def test_a_job_gone_from_the_store_is_put_back_by_the_next_full_sync(leader, engine):
    scheduler, _, _ = leader
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM apscheduler_jobs"))
    mirror = Mirror(scheduler, scheduler._store, 60)
    mirror._signatures = {JOB: "stale"}  # what a mirror believes after the store lost it
    with engine.connect() as conn:
        rows = schedules.list_schedules(conn)
    mirror.refresh_if_drifted()
    mirror.reconcile(rows)
    assert stored_next(engine) > time.time() - 1
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM apscheduler_jobs"))
    mirror._signatures = {JOB: "stale"}
    mirror.reconcile(rows)  # a change for a job the store lost: added back, not an error
    assert stored_next(engine) > time.time() - 1


def test_loading_reads_every_stored_job_by_chunks_and_drops_unreadable_rows(
    leader, engine, monkeypatch
):
    scheduler, _, _ = leader
    monkeypatch.setattr("scheduler.jobstore.CHUNK", 2)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_schedules (name, actor, cron)"
                " SELECT 'lean_' || i, :a, '@hourly' FROM generate_series(1, 4) i"
            ),
            {"a": JOB},
        )
        conn.execute(
            text("INSERT INTO apscheduler_jobs VALUES ('broken', 1, CAST('junk' AS bytea))")
        )
        rows = schedules.list_targets(conn)
    mirror = Mirror(scheduler, scheduler._store, 60)
    mirror.reconcile(rows)
    fresh = Mirror(scheduler, scheduler._store, 60)
    assert fresh.load() == []  # nothing older than the grace
    assert fresh._signatures == mirror._signatures
    assert sorted(fresh._signatures) == sorted([JOB, "lean_1", "lean_2", "lean_3", "lean_4"])
    assert not fresh.reconcile(rows)  # nothing to change
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM apscheduler_jobs ORDER BY 1")).scalars().all()
    assert "broken" not in ids


def test_a_pass_records_a_slot_ahead_and_hands_it_over_to_be_sent_at_the_slot(leader, engine):
    scheduler, _, sender = leader
    scheduler.resume()
    wait_for(lambda: any(nb is not None for nb in sender.not_before), 5, "a fire prepared ahead")
    with engine.connect() as conn:
        ahead = conn.execute(
            text(
                "SELECT id, scheduled_at, created_at FROM job_runs"
                " WHERE scheduled_at > created_at ORDER BY id LIMIT 1"
            )
        ).one()
    # Recorded (pending) within the lookahead before its slot, handed over with that slot.
    assert 0 < (ahead.scheduled_at - ahead.created_at).total_seconds() <= LOOKAHEAD_SECONDS + 0.05
    held = dict(zip([i for i, _, _ in sender.sent], sender.not_before, strict=True))
    assert held[ahead.id] == ahead.scheduled_at
    wait_for(lambda: stored_next(engine) > ahead.scheduled_at.timestamp(), 5, "the store")
