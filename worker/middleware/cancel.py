"""Middleware: a running run an admin cancelled is stopped.

The admin sets `cancel_requested_at` on the run (POST /api/runs/{id}/cancel). Each worker
process polls for that, every SRJOBS_CANCEL_POLL_SECONDS and only while it runs jobs, with
one query by primary key over the runs it is running. For a cancelled run it:

1. cancels the SQL statement running on each connection the job's thread holds from the
   worker's engine (`connection.cancel()`, a cancel request to the server: the statement
   ends in the server at once, which `pg_stat_activity` shows);
2. raises `RunCancelled` in the job's thread, the way Dramatiq's time limit interrupts a job
   (an asynchronous exception: pure Python code stops at its next bytecode; a blocking
   system call first has to return).

When the job ends, the run is recorded `discarded` with an error beginning `cancelled`, and
the message is given up (never retried). Polling rather than LISTEN keeps one less
connection per process and needs no re-listen logic; the poll is a no-op while idle.

Placed after Retries, outside `srjobs_middleware` (its after-hook runs before Retries' and
before RunOutcome's).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import psycopg2
from dramatiq import Broker
from dramatiq.middleware.threading import Interrupt, raise_thread_exception
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError

from shared import runs
from shared.dispatch import RUN_ID_OPTION
from worker import metrics
from worker.jobs import REGISTRY
from worker.middleware.context import ProcessState, StateMiddleware, attempt_of
from worker.middleware.run_outcome import describe_error
from worker.resources import open_resources

logger = logging.getLogger(__name__)


class RunCancelled(Interrupt):
    """An admin cancelled the run while it ran."""


@dataclass
class Running:
    run_id: int
    attempt: int
    cancelled: bool = False


class Cancellation(StateMiddleware):
    """Interrupts the runs of this process whose cancel an admin asked for."""

    def __init__(self, state: ProcessState) -> None:
        super().__init__(state)
        self._lock = threading.Lock()
        self._running: dict[int, Running] = {}  # thread id -> its run
        self._held: dict[int, set[Any]] = {}  # thread id -> DBAPI connections checked out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def after_process_boot(self, broker: Broker) -> None:
        """Follow the job engine's connections and start polling."""
        self.watch_engine(open_resources(self.state.settings).engine)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="srjobs-cancel", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def watch_engine(self, engine: Engine) -> None:
        """Track which thread holds which connection of `engine` (the jobs' engine)."""
        event.listen(engine, "checkout", self._checked_out)
        event.listen(engine, "checkin", self._checked_in)

    def _checked_out(self, dbapi_conn: Any, record: Any, proxy: Any) -> None:
        with self._lock:
            self._held.setdefault(threading.get_ident(), set()).add(dbapi_conn)

    def _checked_in(self, dbapi_conn: Any, record: Any) -> None:
        with self._lock:
            for held in self._held.values():
                held.discard(dbapi_conn)

    # -- per message -------------------------------------------------------------------
    def before_process_message(self, broker: Broker, message: Any) -> None:
        run_id = message.options.get(RUN_ID_OPTION)
        if run_id is None or message.actor_name not in REGISTRY:
            return
        with self._lock:
            self._running[threading.get_ident()] = Running(run_id, attempt_of(message))

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        with self._lock:
            running = self._running.pop(threading.get_ident(), None)
        if running is None or not running.cancelled:
            return
        # Given up, not retried: Retries (whose hook runs next) aborts a message whose
        # exception matches its `throws` option.
        message.options["throws"] = (BaseException,)
        error = f"{runs.CANCELLED} while running ({describe_error(exception)})"
        ctx = self.state.in_flight.get(message.message_id)  # RunStart's hook runs after this one
        with self.state.engine().begin() as conn:
            runs.mark_finished(
                conn,
                running.run_id,
                runs.DISCARDED,
                error=error,
                attempt=running.attempt,
                started=ctx.start if ctx is not None else None,
            )
        metrics.SKIPPED.labels(message.actor_name, "cancelled").inc()
        logger.warning(
            "run %d of %s cancelled while running",
            running.run_id,
            message.actor_name,
            extra={"event": "run_cancelled", "run_id": running.run_id},
        )

    def after_skip_message(self, broker: Broker, message: Any) -> None:
        with self._lock:
            self._running.pop(threading.get_ident(), None)

    # -- the poller ----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.state.settings.cancel_poll_seconds):
            self.check()

    def check(self) -> list[int]:
        """One poll: interrupt every run of this process whose cancel was asked; their ids."""
        with self._lock:
            threads = {r.run_id: tid for tid, r in self._running.items() if not r.cancelled}
        if not threads:
            return []
        try:
            with self.state.engine().connect() as conn:
                wanted = runs.cancel_requested(conn, sorted(threads))
        except SQLAlchemyError as exc:
            logger.warning("could not look for cancel requests: %s", exc)
            return []
        return [run_id for run_id in wanted if self.interrupt(threads[run_id], run_id)]

    def interrupt(self, thread_id: int, run_id: int) -> bool:
        """Cancel the thread's SQL statements, then raise RunCancelled in it; False when the
        thread has moved on to another run meanwhile."""
        with self._lock:
            running = self._running.get(thread_id)
            if running is None or running.run_id != run_id or running.cancelled:
                return False
            running.cancelled = True
            held = list(self._held.get(thread_id, ()))
            for dbapi_conn in held:
                try:
                    dbapi_conn.cancel()
                except psycopg2.Error as exc:
                    logger.warning("could not cancel a statement of run %d: %s", run_id, exc)
            raise_thread_exception(thread_id, RunCancelled)
        logger.info(
            "interrupting run %d (%d statement(s) cancelled)",
            run_id,
            len(held),
            extra={"event": "run_interrupted", "run_id": run_id, "connections": len(held)},
        )
        return True
