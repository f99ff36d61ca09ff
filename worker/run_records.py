"""Dramatiq middleware that moves each job's run record through its states.

enqueued -> running -> succeeded | failed (will retry) | discarded (gave up, cannot run).
A message whose run already finished is acknowledged and skipped, so a redelivery after a
crash never runs a job twice.
"""

from __future__ import annotations

import logging
import traceback as tb

from dramatiq import Middleware
from dramatiq.middleware import SkipMessage

from shared import runs
from shared.dispatch import RUN_ID_OPTION
from shared.settings import Settings
from worker.jobs import REGISTRY
from worker.resources import close_resources, open_resources

logger = logging.getLogger(__name__)


def outcome(exception: BaseException | None, message_failed: bool) -> str:
    """The state a finished attempt leaves its run in."""
    if exception is None and not message_failed:
        return "succeeded"
    return "discarded" if message_failed else "failed"


def describe_error(exception: BaseException | None) -> str:
    """`Type: message`, what the run's `error` column shows."""
    if exception is None:
        return "the message was given up before it ran (expired or rejected)"
    text = str(exception)
    return f"{type(exception).__name__}: {text}" if text else type(exception).__name__


class RunRecords(Middleware):
    """Writes `job_runs` transitions; one short statement each, no lock held while a job runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _engine(self):
        return open_resources(self.settings).engine

    def after_process_boot(self, broker) -> None:
        open_resources(self.settings)

    def before_process_stop(self, broker) -> None:
        close_resources()

    def before_process_message(self, broker, message) -> None:
        spec = REGISTRY.get(message.actor_name)
        if spec is None:
            return
        attempt = message.options.get("retries", 0) + 1
        run_id = message.options.get(RUN_ID_OPTION)
        with self._engine().begin() as conn:
            if run_id is None:
                # Sent straight from code with actor.send(): record it now. Retries copy the
                # options, so later attempts carry this id.
                run = runs.create_direct_run(conn, spec.name, self.settings.node_name)
                message.options[RUN_ID_OPTION] = run.id
                logger.info("recorded run %d of %s sent without a run id", run.id, spec.name)
                return
            started = runs.mark_running(conn, run_id, attempt, self.settings.node_name)
        if not started:
            logger.info("run %s of %s already finished: skipping message", run_id, spec.name)
            raise SkipMessage(f"run {run_id} already finished")

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        run_id = message.options.get(RUN_ID_OPTION)
        if run_id is None or message.actor_name not in REGISTRY:
            return
        state = outcome(exception, message.failed)
        error = None if state == "succeeded" else describe_error(exception)
        trace = "".join(tb.format_exception(exception)) if exception is not None else None
        with self._engine().begin() as conn:
            runs.mark_finished(conn, run_id, state, error=error, traceback=trace)
        log = logger.info if state == "succeeded" else logger.warning
        log(
            "run %d of %s %s%s",
            run_id,
            message.actor_name,
            state,
            f": {error}" if error else "",
            extra={"run_id": run_id, "job": message.actor_name, "state": state},
        )
