"""Messages for runs: the one message builder, and the admin's send of a "Run now" run.

Every srjobs message (the leader's outbox, "Run now", orphan rescue) is built by
`build_message`; the leader's outbox (scheduler/outbox.py) sends fired and pending runs in
batches itself, with the same backoff (`send_backoff_seconds`)."""

from __future__ import annotations

import logging

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine

from shared import runs
from shared.brokers import SenderBroker, sender_broker
from shared.runs import Run
from shared.settings import Settings

logger = logging.getLogger(__name__)

RUN_ID_OPTION = "srjobs_run_id"


def make_sender(settings: Settings, **redis_options: object) -> SenderBroker:
    """A broker used only to send messages: no actors, no middleware, no connection yet.

    Redis calls time out (`socket_timeout`, ...) rather than hang a sender."""
    options = {"socket_timeout": 5, "socket_connect_timeout": 2, **redis_options}
    return sender_broker(settings.redis_url, settings.redis_namespace, **options)


def build_message(
    actor: str,
    queue: str,
    run_id: int | None,
    *,
    args: tuple = (),
    kwargs: dict | None = None,
    **options: object,
) -> Message:
    """The Dramatiq message for a run (the worker reads the run id from its options; None
    for a message sent without one); `options` such as `retries` are Dramatiq's."""
    if run_id is not None:
        options[RUN_ID_OPTION] = run_id
    return Message(
        queue_name=queue, actor_name=actor, args=args, kwargs=kwargs or {}, options=options
    )


def run_message(run: Run, actor: str, queue: str) -> Message:
    """The message of a recorded run: its `args` as the actor's keyword arguments."""
    return build_message(actor, queue, run.id, kwargs=dict(run.args))


def send_backoff_seconds(send_attempts: int) -> float:
    """How long the outbox waits before re-sending after `send_attempts` failures."""
    return float(min(60, 2 ** max(0, send_attempts - 1)))


def dispatch(engine: Engine, broker: RedisBroker, run: Run, actor: str, queue: str) -> bool:
    """Send one run's message, then mark it enqueued; on a broker error it stays pending
    for the leader's outbox to re-send."""
    try:
        broker.enqueue(run_message(run, actor, queue))
    except (redis.RedisError, OSError) as exc:
        logger.warning(
            "broker unreachable, run %d of %s stays pending: %s", run.id, run.job_name, exc
        )
        with engine.begin() as conn:
            runs.mark_send_failed(conn, run.id, send_backoff_seconds(1))
        return False
    with engine.begin() as conn:
        runs.mark_enqueued(conn, run.id)
    return True
