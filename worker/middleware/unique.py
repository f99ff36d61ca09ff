"""Middleware: a job declared `unique` never runs twice at once.

The lock is a Postgres session lock on the worker thread's own connection, taken once the run
is `running` and released once its outcome is recorded; if that connection drops, the server
releases it. A run that would overlap another is discarded and its message skipped.
"""

from __future__ import annotations

import logging

import psycopg2
from dramatiq import Broker
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from shared import runs
from worker import metrics
from worker.middleware.context import RunContext, RunMiddleware

logger = logging.getLogger(__name__)


class UniqueLock(RunMiddleware):
    """Between RunStart and RunOutcome: its before-hook runs after the `running` transition,
    its after-hooks after the outcome is recorded."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        ctx = self.state.in_flight.get(message.message_id)
        if ctx is None or not ctx.spec.unique:
            return
        job = ctx.spec.name
        if self.state.connections.run(runs.try_lock_job, job):
            ctx.locked = True
            return
        error = f"Overlap: another run of {job} is running; this one is skipped"
        with self.state.engine().begin() as conn:
            runs.mark_finished(
                conn,
                ctx.run_id,
                runs.DISCARDED,
                error=error,
                attempt=ctx.attempt,
                started=ctx.start,
            )
        metrics.SKIPPED.labels(job, "overlap").inc()
        logger.warning("run %d of %s discarded: %s", ctx.run_id, job, error)
        raise SkipMessage(error)

    def after_run(self, message: MessageProxy, exception: BaseException | None) -> None:
        self._release(self.state.in_flight.get(message.message_id))

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._release(self.state.in_flight.get(message.message_id))

    def _release(self, ctx: RunContext | None) -> None:
        if ctx is None or not ctx.locked:
            return
        job = ctx.spec.name
        ctx.locked = False
        try:
            self.state.connections.run(runs.unlock_job, job)
        except psycopg2.Error as exc:  # the lock went with the dropped connection
            logger.warning("could not release the lock of %s: %s", job, exc)
