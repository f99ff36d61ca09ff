"""Middleware: the flusher of batched `succeeded` transitions runs while the worker does."""

from __future__ import annotations

from dramatiq import Broker, Middleware, Worker

from worker.middleware.context import ProcessState


class FlushSuccesses(Middleware):
    """Starts `state.successes` (worker/finisher.py) at worker boot; at shutdown writes
    everything it still holds."""

    def __init__(self, state: ProcessState) -> None:
        self.state = state

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self.state.successes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.state.successes.stop()
