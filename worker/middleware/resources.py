"""Middleware: the worker process's resources, opened at boot and closed last at shutdown."""

from __future__ import annotations

from dramatiq import Broker, Worker

from worker.middleware.context import StateMiddleware


class ProcessResources(StateMiddleware):
    """First in srjobs' stack, so that its after-hooks run after every other one's."""

    def after_process_boot(self, broker: Broker) -> None:
        self.state.boot()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.state.close()
