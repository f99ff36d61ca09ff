"""Middleware: the outcome of each attempt, running -> succeeded | failed | discarded.

`succeeded` is buffered and written in batches (worker/finisher.py); failures and discards
at once, with their error and traceback. Placed before Retries: after-hooks run in reverse
order, so Retries has already decided (retry, or `message.fail()`) when the outcome is
recorded. AgeLimit skips an expired message before any srjobs middleware sees it:
`after_skip_message` discards its run. TimeLimit raises in the job: an ordinary failure.
"""

from __future__ import annotations

import logging
import time
import traceback as tb

from dramatiq import Broker
from dramatiq.broker import MessageProxy

from shared import runs
from shared.dispatch import RUN_ID_OPTION
from worker import metrics
from worker.jobs import REGISTRY
from worker.middleware.context import RunContext, RunMiddleware

logger = logging.getLogger(__name__)


def outcome(exception: BaseException | None, message_failed: bool) -> str:
    """The state a finished attempt leaves its run in."""
    if exception is None and not message_failed:
        return runs.SUCCEEDED
    return runs.DISCARDED if message_failed else runs.FAILED


def describe_error(exception: BaseException | None) -> str:
    """`Type: message`, what the run's `error` column shows."""
    if exception is None:
        return "the message was given up before it ran (expired or rejected)"
    text = str(exception)
    return f"{type(exception).__name__}: {text}" if text else type(exception).__name__


class RunOutcome(RunMiddleware):
    """Last of the run middlewares: its before-hook stamps the start just before the job
    runs, its after-hooks run first (right after Retries')."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        ctx = self.state.in_flight.get(message.message_id)
        if ctx is not None:
            ctx.started = time.monotonic()

    def after_run(self, message: MessageProxy, exception: BaseException | None) -> None:
        ctx = self.state.in_flight.get(message.message_id)
        if ctx is not None:  # None: not a job, or handed back at shutdown
            self._record(ctx, exception)

    def _record(self, ctx: RunContext, exception: BaseException | None) -> None:
        job, run_id = ctx.message.actor_name, ctx.run_id
        seconds = time.monotonic() - ctx.started
        state = outcome(exception, ctx.message.failed)
        metrics.observe_run(job, state, seconds)
        if state == runs.SUCCEEDED:
            self.state.successes.add((run_id, ctx.attempt, seconds, *ctx.start))
            logger.debug("run %d of %s succeeded in %.3fs", run_id, job, seconds)
            return
        error = describe_error(exception)
        trace = "".join(tb.format_exception(exception)) if exception is not None else None
        with self.state.engine().begin() as conn:
            runs.mark_finished(
                conn,
                run_id,
                state,
                error=error,
                traceback=trace,
                attempt=ctx.attempt,
                started=ctx.start,
            )
        logger.warning(
            "run %d of %s %s: %s",
            run_id,
            job,
            state,
            error,
            extra={"run_id": run_id, "job": job, "state": state},
        )

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        """A message skipped by another middleware (AgeLimit) before it ran: discard its run."""
        run_id = message.options.get(RUN_ID_OPTION)
        if not message.failed or run_id is None or message.actor_name not in REGISTRY:
            return
        with self.state.engine().begin() as conn:
            changed = runs.mark_finished(
                conn, run_id, runs.DISCARDED, error="Expired: the message was too old to run"
            )
        if changed:
            metrics.observe_run(message.actor_name, runs.DISCARDED, 0.0)
            logger.warning("run %s of %s discarded: expired", run_id, message.actor_name)
