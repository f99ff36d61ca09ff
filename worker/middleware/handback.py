"""Middleware: jobs still running when the shutdown grace ran out are handed back."""

from __future__ import annotations

import logging

from dramatiq import Broker, Worker

from shared import runs
from worker import metrics
from worker.middleware.context import StateMiddleware

logger = logging.getLogger(__name__)

INTERRUPTED = "Interrupted: the worker stopped before the job finished; sent again"


class HandBack(StateMiddleware):
    """After the worker stopped (its threads had SRJOBS_WORKER_SHUTDOWN_SECONDS to finish),
    records each run still in flight as `failed` and sends its next attempt. The original
    message is not acknowledged; if it is ever redelivered, it is a stale copy."""

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        in_flight = self.state.in_flight
        for message_id in list(in_flight):
            ctx = in_flight.pop(message_id, None)
            if ctx is None:
                continue
            job = ctx.message.actor_name
            try:
                with self.state.engine().begin() as conn:
                    changed = runs.mark_finished(
                        conn,
                        ctx.run_id,
                        runs.FAILED,
                        error=INTERRUPTED,
                        attempt=ctx.attempt,
                        started=ctx.start,
                    )
                if not changed:
                    continue
                broker.enqueue(ctx.message.copy(options={"retries": ctx.attempt}))
            except Exception:
                logger.exception("could not hand back run %d of %s", ctx.run_id, job)
                continue
            metrics.RUNS.labels(job, runs.FAILED).inc()
            logger.warning("run %d of %s handed back: %s", ctx.run_id, job, INTERRUPTED)
