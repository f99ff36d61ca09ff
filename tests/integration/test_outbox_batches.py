"""The outbox's batched path against real Postgres and a Redis of its own: a pass's runs go to
Redis in pipelines and are marked enqueued together; Redis going away between two pipelines
leaves the unsent runs pending, and they reach Redis once when it is back."""

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from scheduler.outbox import SEND_CHUNK, Outbox, make_broker
from shared import runs
from tests.support.runs import queued_run_ids
from tests.support.throwaway import ThrowawayRedis
from tests.support.waiting import wait_for

JOB = "refresh_trace_summaries"
RUNS = 2 * SEND_CHUNK + 100  # three pipelines


@pytest.fixture
def own_redis():
    server = ThrowawayRedis().start()
    yield server
    server.stop()


def fire(engine, n: int) -> list[runs.Run]:
    base = datetime.now(UTC).replace(microsecond=0)
    fires = [(JOB, base - timedelta(seconds=i)) for i in range(n)]
    with engine.begin() as conn:
        return runs.create_cron_runs(conn, fires)


def states(engine) -> dict[int, tuple[str, int, datetime | None]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, state, send_attempts, enqueued_at FROM job_runs"))
        return {r.id: (r.state, r.send_attempts, r.enqueued_at) for r in rows}


def send_through(outbox: Outbox, fired: list[runs.Run]) -> None:
    """Hand the runs over and let the outbox send them, then stop (in this thread)."""
    outbox.send_many([(run, JOB, "default") for run in fired])
    outbox.stop(drop=False)
    thread = threading.Thread(target=outbox.run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


def test_a_pass_goes_to_redis_in_pipelines_and_each_run_is_marked_enqueued(
    settings, engine, own_redis
):
    settings = replace(settings, redis_url=own_redis.url)
    fired = fire(engine, RUNS)
    send_through(Outbox(settings, engine, make_broker(settings)), fired)

    after = states(engine)
    assert {after[r.id][0] for r in fired} == {"enqueued"}
    assert all(after[r.id][2] is not None for r in fired)
    assert sorted(queued_run_ids(own_redis.url, settings.redis_namespace)) == sorted(
        r.id for r in fired
    )


def test_redis_going_away_between_pipelines_leaves_the_rest_pending_then_sent_once(
    settings, engine, own_redis
):
    settings = replace(settings, redis_url=own_redis.url)
    fired = fire(engine, RUNS)
    outbox = Outbox(settings, engine, make_broker(settings))
    before_outage: list[int] = []
    real_enqueue_many = outbox.broker.enqueue_many

    def enqueue_then_redis_goes(messages):
        real_enqueue_many(messages)
        if not before_outage:  # after the first pipeline: Redis stops (its data with it)
            before_outage.extend(queued_run_ids(own_redis.url, settings.redis_namespace))
            own_redis.stop()

    outbox.broker.enqueue_many = enqueue_then_redis_goes  # type: ignore[method-assign]
    send_through(outbox, fired)

    after = states(engine)
    enqueued = {i for i, (state, _, _) in after.items() if state == "enqueued"}
    pending = {i for i, (state, attempts, _) in after.items() if state == "pending" and attempts}
    assert enqueued == set(before_outage) and len(enqueued) == SEND_CHUNK
    assert pending == {r.id for r in fired} - enqueued

    own_redis.start()  # an empty Redis on the same port
    up = Outbox(settings, engine, make_broker(settings))
    up.broker_down = True  # as after the failure: the pass pings, then re-sends

    def all_sent() -> bool:
        up.resend_pending()
        return not any(state == "pending" for state, _, _ in states(engine).values())

    wait_for(all_sent, 30, "the pending runs to be re-sent")
    resent = queued_run_ids(own_redis.url, settings.redis_namespace)
    assert sorted(resent) == sorted(pending)  # each once, and none of those sent before
    assert set(before_outage).isdisjoint(resent)
