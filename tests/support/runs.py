"""Sending runs to real workers and waiting for their records."""

from __future__ import annotations

import json

import redis
from dramatiq import Message
from sqlalchemy import Engine

from shared import runs, schedules
from shared.brokers import redis_client
from shared.dispatch import RUN_ID_OPTION, build_message
from shared.settings import Settings
from tests.support.waiting import wait_for

EXAMPLES = "tests.example_jobs"


def send_run(engine: Engine, broker, job: str, *args, options=None, **kwargs) -> runs.Run:
    """Record a manual run of `job` and send its message, as "Run now" does."""
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, job)
        row = schedules.get_schedule(conn, job)
    broker.enqueue(
        build_message(row.actor, row.queue, run.id, args=args, kwargs=kwargs, **(options or {}))
    )
    with engine.begin() as conn:
        runs.mark_enqueued(conn, run.id)
    return run


def get(engine: Engine, run_id: int) -> runs.Run:
    with engine.connect() as conn:
        return runs.get_run(conn, run_id)


def wait_state(engine: Engine, run_id: int, states, timeout: float = 30) -> runs.Run:
    """Wait until the run is in one of `states`; return it."""
    states = (states,) if isinstance(states, str) else tuple(states)
    return wait_for(
        lambda: (r := get(engine, run_id)).state in states and r,
        timeout,
        f"run {run_id} to be {'/'.join(states)}",
    )


def traceback_of(engine: Engine, run_id: int) -> str | None:
    with engine.connect() as conn:
        return runs.get_traceback(conn, run_id)


def broker_copies(settings: Settings, run_id: int, dead_letters: bool = True) -> list[Message]:
    """The messages of a run Dramatiq still holds in Redis: queued, delayed for a retry,
    fetched but not acknowledged, and (unless `dead_letters` is False) dead-lettered after a
    final failure. None once a worker has acknowledged it."""
    client = redis_client(settings.redis_url)
    try:
        found = []
        for key in client.scan_iter(f"{settings.redis_namespace}:*.msgs", count=1000):
            if not dead_letters and key.endswith(b".XQ.msgs"):
                continue
            for raw in client.hvals(key):
                message = Message.decode(raw)
                if message.options.get(RUN_ID_OPTION) == run_id:
                    found.append(message)
        return found
    finally:
        client.close()


def queued_run_ids(url: str, namespace: str, queue: str = "default") -> list[int]:
    """The run ids of the messages waiting in a queue of the Redis at `url`."""
    client = redis.Redis.from_url(url)
    try:
        messages = client.hvals(f"{namespace}:{queue}.msgs")
    finally:
        client.close()
    return [json.loads(m)["options"][RUN_ID_OPTION] for m in messages]
