"""The leader's outbox: sends fired runs to the broker and re-sends the ones left pending.

A run is recorded `pending` before its message is sent. When the broker is unreachable it
stays pending; this thread retries it (oldest first, with backoff, a bounded number of
times) once the broker answers again, and adopts runs whose sender died before sending.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from scheduler import metrics
from shared import runs, schedules
from shared.dispatch import make_sender, run_message, send_backoff_seconds
from shared.runs import PendingSend, Run
from shared.settings import Settings

logger = logging.getLogger(__name__)

PASS_SECONDS = 1.0
BATCH = 200
MARK_EVERY = 20  # sent runs marked enqueued per statement
MAX_SEND_ATTEMPTS = 30  # with the 60 s backoff cap: about 25 minutes of broker failures
ORPHAN_AFTER_SECONDS = 10.0  # a run never sent for this long lost its sender
BROKER_ERRORS = (redis.RedisError, OSError)


def make_broker(settings: Settings) -> RedisBroker:
    """A send-only broker whose Redis calls time out instead of hanging the outbox."""
    return make_sender(settings, retry_on_timeout=False)


def retry_delay(send_attempts: int) -> float | None:
    """Seconds until the next try after `send_attempts` failed hand-overs; None: give up."""
    if send_attempts >= MAX_SEND_ATTEMPTS:
        return None
    return send_backoff_seconds(send_attempts)


@dataclass(frozen=True)
class Outgoing:
    run: Run
    actor: str
    queue: str
    handed_at: float = field(default_factory=time.perf_counter)


class Outbox(threading.Thread):
    """Sends what the executor fires at once, and every second re-sends due pending runs."""

    def __init__(self, settings: Settings, engine: Engine, broker: RedisBroker) -> None:
        super().__init__(name="srjobs-outbox", daemon=True)
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.stopping = threading.Event()
        self._drop = False
        self._queue: queue.Queue[Outgoing | None] = queue.Queue()
        self.broker_down = False
        self._mark_ms = 0.0  # spent marking sent runs enqueued, for the `fires_sent` event

    def send(self, run: Run, actor: str, queue: str) -> None:
        """Hand a just-recorded run over for sending (called by the executor)."""
        self._queue.put(Outgoing(run, actor, queue))

    def stop(self, drop: bool) -> None:
        """Stop; `drop` abandons unsent runs (left pending for the next leader's outbox)."""
        self._drop = drop
        self.stopping.set()
        self._queue.put(None)

    def run(self) -> None:
        next_pass = time.monotonic()  # the first pass at once: adopt what the last term left
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, next_pass - time.monotonic()))
            except queue.Empty:
                if self.stopping.is_set():
                    return
                self._safely(self.resend_pending)
                next_pass = time.monotonic() + PASS_SECONDS
                continue
            batch, last = self._drain(item)
            if self._drop and self.stopping.is_set():
                return
            if batch:
                self._send_fresh(batch)
            if last:
                return  # the stop marker comes after every run fired before the stop

    def _drain(self, first: Outgoing | None) -> tuple[list[Outgoing], bool]:
        """Everything queued now (one pass's fires go out together); True at the stop marker."""
        batch, item = [], first
        while item is not None:
            batch.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _send_fresh(self, batch: list[Outgoing]) -> None:
        """Send just-fired runs; one `fires_sent` event says where the time went."""
        started = time.perf_counter()
        self._mark_ms = 0.0
        fresh = [(PendingSend(o.run, 0), o.actor, o.queue) for o in batch]
        self._safely(functools.partial(self._send_all, fresh, fresh=True))
        total_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "sent %d fired run(s)",
            len(batch),
            extra={
                "event": "fires_sent",
                "runs": len(batch),
                "wait_ms": round((started - batch[0].handed_at) * 1000, 1),
                "send_ms": round(total_ms - self._mark_ms, 1),
                "mark_ms": round(self._mark_ms, 1),
            },
        )

    def _safely(self, work: Callable[[], object]) -> None:
        try:
            work()
        except SQLAlchemyError as exc:
            logger.warning("outbox: database unavailable: %s", exc)
        except Exception:
            logger.exception("outbox step failed; the next pass retries")

    def _send_all(self, batch: list[tuple[PendingSend, str, str]], fresh: bool) -> bool:
        """Send in order, marking the sent runs enqueued a few at a time; False when the broker
        failed (fresh runs after the failure are marked for a retry, not tried)."""
        sent: list[tuple[Run, datetime]] = []
        try:
            for k, (pending, actor, queue_name) in enumerate(batch):
                if self.broker_down and fresh:
                    # Do not wait on a broker known to be down: the pass retries with backoff.
                    for rest, _, _ in batch[k:]:
                        self._failed(rest, "the broker was unreachable")
                    return False
                try:
                    self.broker.enqueue(run_message(pending.run, actor, queue_name))
                except BROKER_ERRORS as exc:
                    self.broker_down = True
                    self._failed(pending, str(exc))
                    if fresh:
                        for rest, _, _ in batch[k + 1 :]:
                            self._failed(rest, "the broker was unreachable")
                    return False
                sent.append((pending.run, datetime.now(UTC)))
                if len(sent) == MARK_EVERY:  # so the admin sees them enqueued soon
                    self._mark_sent(sent)
                    sent = []
            return True
        finally:
            self._mark_sent(sent)

    def _mark_sent(self, sent: list[tuple[Run, datetime]]) -> None:
        if not sent:
            return
        started = time.perf_counter()
        ids = [run.id for run, _ in sent]
        with self.engine.begin() as conn:
            runs.mark_enqueued_many(conn, ids, [at for _, at in sent])
        self._mark_ms += (time.perf_counter() - started) * 1000
        logger.info(
            "enqueued %d run(s): %s",
            len(sent),
            ", ".join(str(i) for i in ids[:20]) + (" ..." if len(ids) > 20 else ""),
            extra={"run_ids": ids},
        )

    def _failed(self, pending: PendingSend, reason: str) -> None:
        run, attempts = pending.run, pending.send_attempts + 1
        delay = retry_delay(attempts)
        with self.engine.begin() as conn:
            if delay is None:
                runs.mark_finished(
                    conn,
                    run.id,
                    "discarded",
                    error=f"could not hand the run to the broker after {attempts} attempts:"
                    f" {reason}",
                )
            else:
                runs.mark_send_failed(conn, run.id, delay)
        if delay is None:
            metrics.OUTBOX_SENDS.labels("given_up").inc()
            logger.error("gave up sending run %d of %s: %s", run.id, run.job_name, reason)
        else:
            metrics.OUTBOX_SENDS.labels("failed").inc()
            logger.warning(
                "broker unreachable, run %d of %s stays pending (retry in %.0fs): %s",
                run.id,
                run.job_name,
                delay,
                reason,
                extra={"job": run.job_name, "run_id": run.id},
            )

    def resend_pending(self) -> None:
        """One pass: re-send due pending runs, oldest first, until the broker fails."""
        eager = False
        if self.broker_down:
            try:
                self.broker.client.ping()
            except BROKER_ERRORS:
                self._update_gauge()
                return
            logger.info("the broker answers again: re-sending pending runs")
            self.broker_down, eager = False, True
        with self.engine.connect() as conn:
            due = runs.pending_to_send(
                conn, limit=BATCH, orphan_after_seconds=ORPHAN_AFTER_SECONDS, eager=eager
            )
            rows = schedules.get_schedules(conn, {p.run.job_name for p in due}) if due else []
        jobs = {row.name: row for row in rows}
        batch = []
        for pending in due:
            job = jobs.get(pending.run.job_name)
            if job is None:
                with self.engine.begin() as conn:
                    runs.mark_finished(
                        conn, pending.run.id, "discarded", error="its job no longer exists"
                    )
                continue
            batch.append((pending, job.actor, job.queue))
        if batch:
            if self._send_all(batch, fresh=False):
                metrics.OUTBOX_SENDS.labels("sent").inc(len(batch))
        self._update_gauge()

    def _update_gauge(self) -> None:
        with self.engine.connect() as conn:
            metrics.OUTBOX_PENDING.set(runs.count_pending(conn))
