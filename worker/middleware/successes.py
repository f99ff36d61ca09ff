"""Middleware: the flusher of batched `succeeded` transitions runs while the worker does."""

from __future__ import annotations

from dramatiq import Broker, Worker

from worker.middleware.context import StateMiddleware


class FlushSuccesses(StateMiddleware):
    """Starts `state.successes` (worker/finisher.py) at worker boot; at shutdown writes
    everything it still holds."""

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self.state.successes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.state.successes.stop()
