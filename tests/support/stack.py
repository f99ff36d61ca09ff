"""srjobs' worker middlewares on a Dramatiq StubBroker, in this process, over a real database.

Jobs are declared straight on the stub broker (the global broker is left alone) and removed
from the job registry at the end. Workers are real Dramatiq `Worker`s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq import Message, Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from shared.dispatch import RUN_ID_OPTION
from shared.settings import Settings
from worker.jobs import REGISTRY, JobSpec
from worker.middleware import ProcessState, srjobs_middleware

QUEUE = "mw"


class Stack:
    """A stub broker with srjobs' middlewares and the state they share."""

    def __init__(self, settings: Settings) -> None:
        self.broker = StubBroker()
        self.state = ProcessState(settings)
        for middleware in srjobs_middleware(self.state):
            self.broker.add_middleware(middleware, before=Retries)
        self.broker.emit_after("process_boot")
        self.names: list[str] = []

    def declare(
        self, fn: Callable[[], None], *, unique: bool = False, retries: int = 0, **options
    ) -> str:
        """A job of `fn` under a name of its own; `retries` retries one second apart."""
        name = f"mw_{fn.__name__}_{uuid.uuid4().hex[:6]}"
        dramatiq.actor(
            fn,
            broker=self.broker,
            actor_name=name,
            queue_name=QUEUE,
            max_retries=retries,
            min_backoff=1000,
            max_backoff=1000,
            **options,
        )
        REGISTRY[name] = JobSpec(
            name=name,
            actor_name=name,
            schedule="@daily",
            queue=QUEUE,
            timezone="UTC",
            description="",
            enabled=True,
            max_retries=retries,
            unique=unique,
        )
        self.names.append(name)
        return name

    def send(self, job: str, run_id: int | None, **options) -> Message:
        """Send a message of `job` for the run (none: sent from code)."""
        if run_id is not None:
            options[RUN_ID_OPTION] = run_id
        message = Message(QUEUE, job, (), {}, options)
        self.broker.enqueue(message)
        return message

    @contextmanager
    def worker(self, grace_ms: int = 10_000) -> Iterator[Worker]:
        """A running worker of two threads, stopped with `grace_ms` for its jobs to finish."""
        worker = Worker(self.broker, worker_threads=2, worker_timeout=50)
        worker.start()
        try:
            yield worker
        finally:
            worker.stop(timeout=grace_ms)

    def close(self) -> None:
        for name in self.names:
            REGISTRY.pop(name, None)
        self.state.close()
        self.broker.close()
