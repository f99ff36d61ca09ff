"""Dramatiq middleware that moves each job's run record through its states.

enqueued -> running -> succeeded | failed (will retry) | discarded (gave up, cannot run).

- One short statement per transition and no lock held while the job runs. `succeeded` is
  written in batches by a background thread (worker/finisher.py); failures at once.
- A message whose run is finished, unknown, or a stale copy of an older attempt is
  acknowledged and skipped, so a redelivery never runs a finished job again.
- A message sent with `actor.send()` (no run id) gets a `manual` run, recorded when it starts;
  the id is stored in the message options so that its retries update the same run.
- Placed before Retries: after-hooks run in reverse order, so Retries has already decided
  (retry, or `message.fail()`) when the outcome is recorded.
- AgeLimit skips a message before this middleware sees it: `after_skip_message` discards its
  run. TimeLimit raises in the job: an ordinary failure, retried.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback as tb

import psycopg2
from dramatiq import Middleware
from dramatiq.middleware import SkipMessage

from shared import runs
from shared.dispatch import RUN_ID_OPTION
from shared.errors import UnknownRun
from shared.settings import Settings
from worker import metrics
from worker.connections import ThreadConnections
from worker.finisher import SuccessBuffer
from worker.heartbeat import Heartbeat, new_worker_id
from worker.jobs import REGISTRY, register_periodic
from worker.resources import close_resources, open_resources
from worker.signals import debounce_sigterm

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


def attempt_of(message) -> int:
    """The attempt a message stands for: 1 + the retries Dramatiq counted before it."""
    return int(message.options.get("retries", 0)) + 1


class RunRecords(Middleware):
    """Writes `job_runs` transitions for every message of a declared job."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker_id = new_worker_id(settings.node_name)
        self.successes = SuccessBuffer(self._engine, settings.run_flush_seconds)
        self.connections = ThreadConnections(settings)
        self._heartbeat: Heartbeat | None = None
        # message id -> (run id, attempt, monotonic start, message) for the jobs running now
        self._running: dict[str, tuple] = {}
        self._lock = threading.Lock()

    @property
    def actor_options(self) -> set[str]:
        return {"periodic"}  # periodiq's option: a default schedule, fired by srjobs

    def after_declare_actor(self, broker, actor) -> None:
        if register_periodic(actor):
            logger.debug("job %s declared with a periodiq schedule", actor.actor_name)

    def _engine(self):
        return open_resources(self.settings).records

    def after_process_boot(self, broker) -> None:
        """Open this process's resources; start the heartbeat and the success flusher."""
        debounce_sigterm()
        with self._lock:
            self.worker_id = new_worker_id(self.settings.node_name)  # a fork's own id
            open_resources(self.settings)
            self._heartbeat = Heartbeat(
                self._engine,
                self.worker_id,
                self.settings.node_name,
                self.settings.worker_heartbeat_seconds,
            ).start()
            self.successes.start()

    def after_worker_shutdown(self, broker, worker) -> None:
        """Hand back unfinished jobs, write the buffered successes, drop the heartbeat row."""
        with self._lock:
            self.hand_back(broker)
            self.successes.stop()
            self.connections.close()
            if self._heartbeat is not None:
                self._heartbeat.stop()
                self._heartbeat = None
            close_resources()

    def hand_back(self, broker) -> None:
        """Jobs still running when the shutdown grace ran out: record the attempt as failed
        and send the next one. The unacknowledged original, if ever redelivered, is stale."""
        for message_id in list(self._running):
            started = self._running.pop(message_id, None)
            if started is None:
                continue
            run_id, attempt, _, message = started
            error = "Interrupted: the worker stopped before the job finished; sent again"
            try:
                with self._engine().begin() as conn:
                    if not runs.mark_finished(conn, run_id, "failed", error=error, attempt=attempt):
                        continue
                broker.enqueue(message.copy(options={"retries": attempt}))
            except Exception:
                logger.exception("could not hand back run %d of %s", run_id, message.actor_name)
                continue
            metrics.RUNS.labels(message.actor_name, "failed").inc()
            logger.warning("run %d of %s handed back: %s", run_id, message.actor_name, error)

    def before_process_message(self, broker, message) -> None:
        spec = REGISTRY.get(message.actor_name)
        if spec is None:
            return
        attempt = attempt_of(message)
        run_id = message.options.get(RUN_ID_OPTION)
        node = self.settings.node_name
        if run_id is None:
            with self._engine().begin() as conn:
                run = runs.create_direct_run(
                    conn, spec.name, node, attempt=attempt, worker=self.worker_id
                )
            message.options[RUN_ID_OPTION] = run_id = run.id
            logger.info("recorded run %d of %s sent without a run id", run_id, spec.name)
        elif not self._start(run_id, attempt):
            with self._engine().connect() as conn:
                self._skip(conn, spec.name, run_id, attempt)
        if spec.unique and not self.connections.run(lambda c: runs.try_lock_job(c, spec.name)):
            self._overlap(spec.name, run_id, attempt)
        self._running[message.message_id] = (run_id, attempt, time.monotonic(), message)

    def _overlap(self, job: str, run_id: int, attempt: int) -> None:
        error = f"Overlap: another run of {job} is running; this one is skipped"
        with self._engine().begin() as conn:
            runs.mark_finished(conn, run_id, "discarded", error=error, attempt=attempt)
        metrics.SKIPPED.labels(job, "overlap").inc()
        logger.warning("run %d of %s discarded: %s", run_id, job, error)
        raise SkipMessage(error)

    def _start(self, run_id: int, attempt: int) -> bool:
        """The `running` transition: one statement on this thread's autocommit connection."""
        node, worker = self.settings.node_name, self.worker_id
        return self.connections.run(
            lambda cursor: runs.start_run(cursor, run_id, attempt, node, worker)
        )

    def _skip(self, conn, job: str, run_id: int, attempt: int) -> None:
        try:
            run = runs.get_run(conn, run_id)
        except UnknownRun:
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

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        started = self._running.pop(message.message_id, None)
        if started is None:  # not a job, or the run could not be marked running
            return
        spec = REGISTRY.get(message.actor_name)
        try:
            self._record(message, started, exception)
        finally:
            if spec is not None and spec.unique:
                self._unlock(spec.name)

    def _unlock(self, job: str) -> None:
        try:
            self.connections.run(lambda c: runs.unlock_job(c, job))
        except psycopg2.Error as exc:  # the lock went with the dropped connection
            logger.warning("could not release the lock of %s: %s", job, exc)

    def _record(self, message, started: tuple, exception: BaseException | None) -> None:
        run_id, attempt, since, _ = started
        seconds = time.monotonic() - since
        state = outcome(exception, message.failed)
        metrics.observe_run(message.actor_name, state, seconds)
        if state == "succeeded":
            self.successes.add((run_id, attempt, seconds))
            logger.debug("run %d of %s succeeded in %.3fs", run_id, message.actor_name, seconds)
            return
        error = describe_error(exception)
        trace = "".join(tb.format_exception(exception)) if exception is not None else None
        with self._engine().begin() as conn:
            runs.mark_finished(conn, run_id, state, error=error, traceback=trace, attempt=attempt)
        logger.warning(
            "run %d of %s %s: %s",
            run_id,
            message.actor_name,
            state,
            error,
            extra={"run_id": run_id, "job": message.actor_name, "state": state},
        )

    def after_skip_message(self, broker, message) -> None:
        """A message skipped by another middleware (AgeLimit) before it ran: discard its run."""
        self._running.pop(message.message_id, None)
        run_id = message.options.get(RUN_ID_OPTION)
        if not message.failed or run_id is None or message.actor_name not in REGISTRY:
            return
        with self._engine().begin() as conn:
            changed = runs.mark_finished(
                conn, run_id, "discarded", error="Expired: the message was too old to run"
            )
        if changed:
            metrics.observe_run(message.actor_name, "discarded", 0.0)
            logger.warning("run %s of %s discarded: expired", run_id, message.actor_name)
