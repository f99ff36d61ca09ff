"""Redis outage: fired runs stay pending, and reach the worker once when Redis is back."""

import pytest
from sqlalchemy import text

from tests.support.runs import queued_run_ids
from tests.support.schedulers import set_cron, start_scheduler, stored_jobs
from tests.support.throwaway import ThrowawayRedis
from tests.support.waiting import wait_for

JOB = "refresh_trace_summaries"


@pytest.fixture
def own_redis():
    server = ThrowawayRedis().start()
    yield server
    server.stop()


def runs_in(engine, *states):
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id, state, send_attempts, attempt, node FROM job_runs"
                " WHERE state = ANY(:s) ORDER BY id"
            ),
            {"s": list(states)},
        ).all()


def test_runs_stay_pending_while_redis_is_down_and_reach_the_worker_once(
    services, engine, settings, own_redis
):
    env = {"REDIS_URL": own_redis.url}
    set_cron(engine, "@every 1s")
    start_scheduler(services, "node-a", **env)
    wait_for(lambda: runs_in(engine, "enqueued"), 30, "a run handed to Redis")

    own_redis.stop()
    wait_for(
        lambda: len([r for r in runs_in(engine, "pending") if r.send_attempts >= 1]) >= 2,
        20,
        "runs left pending while Redis is down",
    )
    set_cron(engine, "0 0 1 1 *")  # no new fires: the set of runs to deliver is now fixed
    wait_for(lambda: stored_jobs(engine)[JOB][0] == "0 0 1 1 *", 5, "the schedule change")
    assert runs_in(engine, "pending")
    stranded = [r.id for r in runs_in(engine, "pending")]

    own_redis.start()
    wait_for(lambda: not runs_in(engine, "pending"), 20, "the outbox to re-send every run")
    queued = queued_run_ids(own_redis.url, settings.redis_namespace)
    assert sorted(queued) == sorted(set(queued)), "a run was sent twice"
    assert set(stranded) <= set(queued)

    services.start("worker", "worker", "--threads", "1", env=env)
    finished = ("succeeded", "discarded")  # a refresh overlapping another one is skipped
    wait_for(
        lambda: {r.id for r in runs_in(engine, *finished)} >= set(stranded),
        60,
        "the worker to take every stranded run",
    )
    done = [r for r in runs_in(engine, *finished) if r.id in stranded]
    assert all(r.attempt == 1 and r.node for r in done)
    wait_for(lambda: not queued_run_ids(own_redis.url, settings.redis_namespace), 10, "acks")
