"""How the outbox sends runs prepared ahead, against real Postgres and Redis: their messages
are encoded before the slot, so only the round trips to Redis are left at it; each chunk's
runs record the moment that chunk was in Redis, not the end of the whole slot's send."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from scheduler.outbox import SEND_CHUNK, Outbox, make_broker
from shared import runs
from shared.bulk_enqueue import Packed
from shared.dispatch import RUN_ID_OPTION
from tests.support.runs import queued_run_ids
from tests.support.waiting import wait_for

JOB = "refresh_trace_summaries"
RUNS = 2 * SEND_CHUNK + 10  # three chunks
AHEAD = timedelta(seconds=1.5)


def record(engine, n: int) -> list[runs.Run]:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with engine.begin() as conn:
        return runs.create_cron_runs(conn, [(JOB, base - timedelta(seconds=i)) for i in range(n)])


@pytest.fixture
def outbox(settings, engine):
    made = Outbox(settings, engine, make_broker(settings))
    yield made
    made.stop(drop=True)
    made.join(5)


def test_prepared_runs_are_encoded_ahead_and_each_chunk_records_its_own_time(
    settings, engine, outbox
):
    packed_at: list[datetime] = []
    sends: list[tuple[datetime, datetime, list[int]]] = []  # (called, returned, run ids)
    lock = threading.Lock()
    real_pack, real_send = outbox.broker.pack, outbox.broker.send_packed

    def pack(messages):
        packed = real_pack(messages)
        with lock:
            packed_at.append(datetime.now(UTC))
        return packed

    def send_packed(packed: Packed) -> None:
        called = datetime.now(UTC)
        real_send(packed)
        ids = [m.options[RUN_ID_OPTION] for m in packed.messages]
        with lock:
            sends.append((called, datetime.now(UTC), ids))

    outbox.broker.pack = pack  # type: ignore[method-assign]
    outbox.broker.send_packed = send_packed  # type: ignore[method-assign]
    outbox.start()
    fired = record(engine, RUNS)
    slot = datetime.now(UTC) + AHEAD
    outbox.send_many([(run, JOB, "default") for run in fired], not_before=slot)

    def enqueued() -> dict[int, datetime]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, state, enqueued_at FROM job_runs")).all()
        done = {r.id: r.enqueued_at for r in rows if r.state == "enqueued"}
        return done if len(done) == len(fired) else {}

    enqueued_at = wait_for(enqueued, AHEAD.total_seconds() + 10, "the prepared runs to be sent")
    # Encoded before the slot, one packed chunk per pipeline; sent from the slot on.
    assert len(packed_at) == len(sends) == 3
    assert max(packed_at) < slot <= min(called for called, _, _ in sends)
    assert [len(ids) for _, _, ids in sends] == [SEND_CHUNK, SEND_CHUNK, 10]
    assert [i for _, _, ids in sends for i in ids] == [run.id for run in fired]
    # Each run's enqueued_at: once its own chunk was in Redis, before the next was sent.
    next_called = [called for called, _, _ in sends[1:]] + [datetime.max.replace(tzinfo=UTC)]
    for (_, returned, ids), latest in zip(sends, next_called, strict=True):
        assert all(returned <= enqueued_at[i] <= latest for i in ids)
    assert sorted(queued_run_ids(settings.redis_url, settings.redis_namespace)) == sorted(
        run.id for run in fired
    )


def test_no_resend_pass_starts_just_before_a_held_slot_and_one_follows_its_send(engine, outbox):
    passes: list[datetime] = []
    real_pass = outbox.resend_pending

    def resend_pending() -> None:
        passes.append(datetime.now(UTC))
        real_pass()

    outbox.resend_pending = resend_pending  # type: ignore[method-assign]
    fired = record(engine, 3)
    outbox.start()
    wait_for(lambda: passes, 5, "the outbox's first pass")
    # The next pass would start about a second after the first: just before this slot.
    slot = passes[0] + timedelta(seconds=1.1)
    outbox.send_many([(run, JOB, "default") for run in fired], not_before=slot)
    wait_for(lambda: any(p > slot for p in passes), 10, "a pass after the slot")

    # Passes run every second, but none in the clearance before the slot's lock check (0.2 s
    # of its 0.27 s is asserted: a loaded machine may wake the thread late).
    quiet_from = slot - timedelta(seconds=0.2)
    assert not [p for p in passes if quiet_from <= p < slot]
    with engine.connect() as conn:
        sent = conn.execute(text("SELECT min(enqueued_at) FROM job_runs")).scalar_one()
    assert sent is not None and slot <= sent


def test_runs_handed_over_just_before_their_slot_are_encoded_a_chunk_at_a_time(
    settings, engine, outbox
):
    steps: list[tuple[str, datetime]] = []
    real_pack, real_send = outbox.broker.pack, outbox.broker.send_packed

    def pack(messages):
        steps.append(("encode", datetime.now(UTC)))
        return real_pack(messages)

    def send_packed(packed: Packed) -> None:
        real_send(packed)
        steps.append(("send", datetime.now(UTC)))

    outbox.broker.pack = pack  # type: ignore[method-assign]
    outbox.broker.send_packed = send_packed  # type: ignore[method-assign]
    outbox.start()
    fired = record(engine, SEND_CHUNK + 10)
    slot = datetime.now(UTC) + timedelta(seconds=0.05)  # a late pass: no time to encode ahead
    outbox.send_many([(run, JOB, "default") for run in fired], not_before=slot)

    wait_for(lambda: len(steps) == 4, 10, "both chunks to be sent")
    # At the send, never before the slot; the first chunk sent before the second is encoded.
    assert [step for step, _ in steps] == ["encode", "send", "encode", "send"]
    assert slot <= steps[0][1]
    assert sorted(queued_run_ids(settings.redis_url, settings.redis_namespace)) == sorted(
        run.id for run in fired
    )
