"""What srjobs' middlewares share, passed to each explicitly: the process and each run.

`ProcessState` belongs to one worker process: its identity in `worker_nodes`, the records
engine, each thread's connection, the buffer of succeeded runs and the runs in flight.
`RunContext` is one message of a declared job from its `running` transition to its outcome.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from sqlalchemy import Engine

from shared import runs
from shared.settings import Settings
from worker.connections import ThreadConnections
from worker.finisher import SuccessBuffer
from worker.jobs import JobSpec
from worker.resources import close_resources, open_resources


def new_worker_id(node: str) -> str:
    """`node/pid/boot`: unique per process lifetime even when NODE_NAME and pid repeat."""
    return f"{node}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def attempt_of(message: MessageProxy) -> int:
    """The attempt a message stands for: 1 + the retries Dramatiq counted before it."""
    return int(message.options.get("retries", 0)) + 1


@dataclass
class RunContext:
    """A message whose run is `running` here; `started` is stamped just before the job runs."""

    run_id: int
    attempt: int
    spec: JobSpec
    message: MessageProxy
    # The start this worker recorded (epoch seconds, node, worker): every outcome carries it,
    # so that an outcome still lands when Postgres lost the start (shared/runs/finish.py).
    start: tuple[float, str, str | None]
    started: float = 0.0  # time.monotonic()
    locked: bool = False  # holds the `unique` job lock on this thread's connection


class ProcessState:
    """The per-process state every srjobs middleware of a broker is built with."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker_id = new_worker_id(settings.node_name)
        self.connections = ThreadConnections(settings, on_connect=runs.prepare_start)
        self.successes = SuccessBuffer(self.engine, settings.run_flush_seconds)
        # message id -> its run, from the `running` transition until the outcome is recorded
        self.in_flight: dict[str, RunContext] = {}

    def engine(self) -> Engine:
        """The autocommit engine of run records (opened on first use)."""
        return open_resources(self.settings).records

    def boot(self) -> None:
        """A (forked) process's own worker id, and its engines opened."""
        self.worker_id = new_worker_id(self.settings.node_name)
        open_resources(self.settings)

    def close(self) -> None:
        """Close each thread's connection and the engines."""
        self.connections.close()
        close_resources()


class StateMiddleware(Middleware):
    """A middleware built with the process's shared state."""

    def __init__(self, state: ProcessState) -> None:
        self.state = state


class RunMiddleware(StateMiddleware):
    """A middleware with a part in each message's run: `after_run` is called when the
    message was processed, whether the job returned or raised."""

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        self.after_run(message, exception)

    def after_run(self, message: MessageProxy, exception: BaseException | None) -> None:
        """The job of `message` returned (`exception` None) or raised."""
