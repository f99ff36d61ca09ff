"""Middleware: the `running` transition of each message of a declared job, committed before
the job runs, by a statement prepared once on the thread's connection (worker/connections.py).

A message whose run is finished, unknown, or a stale copy of an older attempt is acknowledged
and skipped, so a redelivery never runs a finished job again. A message sent with
`actor.send()` (no run id) gets a `manual` run, recorded as it starts; the id is stored in the
message options so that its retries update the same run.
"""

from __future__ import annotations

import logging
import time

from dramatiq import Broker
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from shared import runs
from shared.dispatch import RUN_ID_OPTION
from shared.errors import UnknownRun
from worker import metrics
from worker.jobs import REGISTRY
from worker.middleware.context import RunContext, RunMiddleware, attempt_of

logger = logging.getLogger(__name__)


class RunStart(RunMiddleware):
    """Puts each message's run in `state.in_flight` once it is `running`; its after-hooks
    run last of the run middlewares and take it out."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        spec = REGISTRY.get(message.actor_name)
        if spec is None:
            return
        attempt = attempt_of(message)
        run_id = message.options.get(RUN_ID_OPTION)
        state = self.state
        node, worker = state.settings.node_name, state.worker_id
        start = (time.time(), node, worker)
        if run_id is None:
            with state.engine().begin() as conn:
                run = runs.create_direct_run(
                    conn,
                    spec.name,
                    node,
                    attempt=attempt,
                    worker=worker,
                    args=dict(message.kwargs or {}),
                )
            message.options[RUN_ID_OPTION] = run_id = run.id
            logger.info("recorded run %d of %s sent without a run id", run_id, spec.name)
        elif not state.connections.run(runs.start_run_prepared, run_id, attempt, node, worker):
            self._skip(spec.name, run_id, attempt)
        state.in_flight[message.message_id] = RunContext(run_id, attempt, spec, message, start)

    def _skip(self, job: str, run_id: int, attempt: int) -> None:
        with self.state.engine().connect() as conn:
            try:
                run = runs.get_run(conn, run_id)
            except UnknownRun:
                run = None
        if run is None:
            reason = "unknown"
            logger.warning("run %s of %s does not exist: skipping its message", run_id, job)
        else:
            reason = run.state if run.state in runs.FINISHED_STATES else "stale"
            logger.info(
                "run %d of %s is %s at attempt %d: skipping a message for attempt %d",
                run_id,
                job,
                run.state,
                run.attempt,
                attempt,
            )
        metrics.SKIPPED.labels(job, reason).inc()
        raise SkipMessage(f"run {run_id}: {reason}")

    def after_run(self, message: MessageProxy, exception: BaseException | None) -> None:
        self.state.in_flight.pop(message.message_id, None)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.state.in_flight.pop(message.message_id, None)
