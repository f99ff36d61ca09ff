"""Middleware: the worker process's resources, opened at boot and closed last at shutdown."""

from __future__ import annotations

from dramatiq import Broker, Middleware, Worker

from worker.middleware.context import ProcessState


class ProcessResources(Middleware):
    """First in srjobs' stack, so that its after-hooks run after every other one's."""

    def __init__(self, state: ProcessState) -> None:
        self.state = state

    def after_process_boot(self, broker: Broker) -> None:
        self.state.boot()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.state.close()
