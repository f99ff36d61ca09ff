"""The lock session and the outbox against real Postgres and Redis."""

import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from scheduler.leadership import LockSession
from scheduler.outbox import MAX_SEND_ATTEMPTS, Outbox, make_broker
from scheduler.service import SchedulerService
from shared import runs
from shared.errors import LeadershipLost
from srjobs.dev import free_port
from tests.support.waiting import wait_for


@pytest.fixture
def lock(settings):
    session = LockSession(settings)
    session.connect()
    yield session
    session.close()


def test_one_holder_and_a_fenced_insert(settings, lock, engine):
    assert lock.acquire(1)
    other = LockSession(replace(settings, node_name="other"))
    other.connect()
    try:
        assert not other.acquire(0.2)
        slot = datetime(2026, 1, 1, tzinfo=UTC)
        first = lock.record_cron_run("refresh_trace_summaries", slot)
        assert first is not None and first.state == "pending"
        assert lock.record_cron_run("refresh_trace_summaries", slot) is None  # same slot
        lock.close()
        assert other.acquire(2)
        with pytest.raises(LeadershipLost):
            lock.check()
    finally:
        other.close()


def test_the_lock_is_confirmed_from_another_connection_while_the_session_is_busy(
    settings, lock, engine
):
    with pytest.raises(LeadershipLost):
        lock.confirm(engine)  # not acquired yet
    assert lock.acquire(1)
    with lock.fenced():  # the scheduler's statement in progress: confirm does not wait for it
        lock.confirm(engine)
    with engine.begin() as conn:  # the server ends the session (a freeze past the lease)
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": lock.backend_pid})

    def refused() -> bool:
        try:
            lock.confirm(engine)
        except LeadershipLost:
            return True
        return False

    wait_for(refused, 5, "the ended session's lock to be gone")


def test_a_killed_lock_session_is_a_lost_leadership(settings, engine):
    lost = threading.Event()
    session = LockSession(settings, on_lost=lost.set)
    session.connect()
    try:
        assert session.acquire(1)
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": session.backend_pid})
        with pytest.raises(LeadershipLost):
            session.check()
        assert lost.is_set() and not session.held
        with pytest.raises(LeadershipLost):
            session.record_cron_run("refresh_trace_summaries", datetime.now(UTC))
    finally:
        session.close()


def test_a_session_that_moved_to_another_backend_is_not_trusted(lock):
    # What a transaction-mode pooler does: the next statement runs in another server process.
    assert lock.acquire(1)
    lock.backend_pid = -1
    with pytest.raises(LeadershipLost, match="transaction-mode pooler"):
        lock.check()


def test_outbox_keeps_runs_pending_without_redis_and_sends_them_later(settings, engine):
    with engine.begin() as conn:
        run = runs.create_cron_run(conn, "refresh_trace_summaries", datetime.now(UTC))
    down = Outbox(settings, engine, make_broker(replace(settings, redis_url=dead_redis())))
    down.send(run, "refresh_trace_summaries", "default")
    down.stop(drop=False)
    down.run()
    with engine.connect() as conn:
        state, attempts, next_send = conn.execute(
            text("SELECT state, send_attempts, next_send_at FROM job_runs WHERE id = :i"),
            {"i": run.id},
        ).one()
    assert (state, attempts) == ("pending", 1) and next_send is not None

    up = Outbox(settings, engine, make_broker(settings))
    up.broker_down = True  # as after the failure: the pass pings, then re-sends eagerly
    up.resend_pending()
    with engine.connect() as conn:
        assert runs.get_run(conn, run.id).state == "enqueued"


def dead_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_many_fires_in_one_statement_skip_slots_already_fired(lock, engine):
    assert lock.acquire(1)
    slot = datetime(2026, 1, 1, tzinfo=UTC)
    first = lock.record_cron_runs([("a", slot), ("b", slot)])
    assert sorted((r.job_name, r.scheduled_at, r.state) for r in first) == [
        ("a", slot, "pending"),
        ("b", slot, "pending"),
    ]
    again = lock.record_cron_runs([("a", slot), ("c", slot)])
    assert [(r.job_name, r.scheduled_at) for r in again] == [("c", slot)]
    with engine.begin() as conn:
        assert runs.mark_enqueued_many(conn, [r.id for r in first]) == 2
        assert runs.mark_enqueued_many(conn, [r.id for r in first]) == 0


def test_readiness_says_the_role_and_whether_database_and_redis_answer(settings):
    up = SchedulerService(settings)
    down = SchedulerService(
        replace(
            settings,
            database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x",
            redis_url=dead_redis(),
        )
    )
    try:
        assert up.readiness() == (
            True,
            {"role": "follower", "node": settings.node_name, "database": "ok", "redis": "ok"},
        )
        ready, details = down.readiness()
        assert not ready
        assert details["database"].startswith("unavailable")
        assert details["redis"].startswith("unavailable")
    finally:
        for service in (up, down):
            service.broker.close()
            service.engine.dispose()


def test_outbox_adopts_a_run_its_sender_never_sent_and_gives_up_after_the_limit(settings, engine):
    with engine.begin() as conn:
        fresh = runs.create_cron_run(
            conn, "refresh_trace_summaries", datetime(2026, 1, 1, tzinfo=UTC)
        )
        orphan = runs.create_cron_run(
            conn, "refresh_trace_summaries", datetime(2026, 1, 2, tzinfo=UTC)
        )
        doomed = runs.create_cron_run(
            conn, "refresh_trace_summaries", datetime(2026, 1, 3, tzinfo=UTC)
        )
        conn.execute(
            text("UPDATE job_runs SET created_at = now() - interval '1 minute' WHERE id = :i"),
            {"i": orphan.id},
        )
        conn.execute(
            text(
                "UPDATE job_runs SET send_attempts = :n, next_send_at = now() - interval '1 s'"
                " WHERE id = :i"
            ),
            {"n": MAX_SEND_ATTEMPTS - 1, "i": doomed.id},
        )
    down = Outbox(settings, engine, make_broker(replace(settings, redis_url=dead_redis())))
    down.resend_pending()  # the oldest due run (the orphan) fails: the pass stops there
    down.resend_pending()  # the broker still does not answer: nothing is tried
    up = Outbox(settings, engine, make_broker(settings))
    up.broker_down = True  # the same outbox, now that Redis answers: re-send eagerly
    up.resend_pending()
    with engine.connect() as conn:
        states = {r.id: r.state for r in runs.list_runs(conn, "refresh_trace_summaries")}
    assert states[fresh.id] == "pending"  # its sender may still be at work: left alone
    assert states[orphan.id] == "enqueued"
    assert states[doomed.id] == "enqueued"  # the broker answers again before its last try

    with engine.begin() as conn:
        last = runs.create_cron_run(
            conn, "refresh_trace_summaries", datetime(2026, 1, 4, tzinfo=UTC)
        )
        conn.execute(
            text("UPDATE job_runs SET send_attempts = :n, next_send_at = now() WHERE id = :i"),
            {"n": MAX_SEND_ATTEMPTS - 1, "i": last.id},
        )
    down.broker_down = False
    down.resend_pending()
    with engine.connect() as conn:
        given_up = runs.get_run(conn, last.id)
    assert given_up.state == "discarded" and "after 30 attempts" in given_up.error
