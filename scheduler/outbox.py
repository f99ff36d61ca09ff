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
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from scheduler import metrics
from shared import runs, schedules
from shared.brokers import SenderBroker
from shared.dispatch import make_sender, run_message, send_backoff_seconds
from shared.runs import PendingSend, Run
from shared.settings import Settings

logger = logging.getLogger(__name__)

PASS_SECONDS = 1.0
BATCH = 200
HANDOVER_WAIT_SECONDS = 1.0  # how long the executor waits for its pass's runs to be sent
SEND_CHUNK = 250  # messages per Redis pipeline, marked enqueued in one statement
MAX_SEND_ATTEMPTS = 30  # with the 60 s backoff cap: about 25 minutes of broker failures
ORPHAN_AFTER_SECONDS = 10.0  # a run never sent for this long lost its sender
BROKER_ERRORS = (redis.RedisError, OSError)


def make_broker(settings: Settings) -> SenderBroker:
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


@dataclass(frozen=True)
class Handover:
    """One pass's runs, and the signal that they were sent (or left pending)."""

    runs: list[Outgoing]
    done: threading.Event


class Outbox(threading.Thread):
    """Sends what the executor fires at once, and every second re-sends due pending runs."""

    def __init__(self, settings: Settings, engine: Engine, broker: SenderBroker) -> None:
        super().__init__(name="srjobs-outbox", daemon=True)
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.stopping = threading.Event()
        self._drop = False
        self._queue: queue.Queue[Handover | None] = queue.Queue()
        self.broker_down = False
        self._mark_ms = 0.0  # spent marking sent runs enqueued, for the `fires_sent` event

    def send(self, run: Run, actor: str, queue: str) -> None:
        """Hand one just-recorded run over for sending."""
        self.send_many([(run, actor, queue)])

    def send_many(self, fired: list[tuple[Run, str, str]]) -> None:
        """Hand a pass's just-recorded runs over for sending (called by the executor), and
        wait (at most HANDOVER_WAIT_SECONDS) until they are sent or left pending: the caller's
        next steps (the job store's write, logging) would otherwise slow the send down."""
        if not fired:
            return
        handed_at = time.perf_counter()
        done = threading.Event()
        self._queue.put(
            Handover([Outgoing(run, actor, queue, handed_at) for run, actor, queue in fired], done)
        )
        if self.is_alive():
            done.wait(HANDOVER_WAIT_SECONDS)

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
            handovers, last = self._drain(item)
            batch = [o for h in handovers for o in h.runs]

            def release(handovers: list[Handover] = handovers) -> None:
                for handover in handovers:
                    handover.done.set()

            try:
                if self._drop and self.stopping.is_set():
                    return
                if batch:
                    self._send_fresh(batch, release)
            finally:
                release()
            if last:
                return  # the stop marker comes after every run fired before the stop

    def _drain(self, first: Handover | None) -> tuple[list[Handover], bool]:
        """Everything queued now (one pass's fires go out together); True at the stop marker."""
        handovers: list[Handover] = []
        item = first
        while item is not None:
            handovers.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return handovers, False
        return handovers, True

    def _send_fresh(self, batch: list[Outgoing], sent: Callable[[], None]) -> None:
        """Send just-fired runs (`sent` is called once they are sent or left pending, before
        they are marked enqueued); one `fires_sent` event says where the time went."""
        started = time.perf_counter()
        self._mark_ms = 0.0
        fresh = [(PendingSend(o.run, 0), o.actor, o.queue) for o in batch]
        self._safely(functools.partial(self._send_all, fresh, fresh=True, done=sent))
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

    def _send_all(
        self,
        batch: list[tuple[PendingSend, str, str]],
        fresh: bool,
        done: Callable[[], None] = lambda: None,
    ) -> bool:
        """Send in order, a pipeline of SEND_CHUNK messages per Redis round trip, then mark
        the sent runs enqueued in one statement (each chunk's time); False when the broker
        failed. A failed chunk's runs stay pending (any of them may have reached Redis: a copy
        sent again is a stale copy to the worker); later chunks are not tried."""
        sent: list[tuple[Run, datetime]] = []
        try:
            for start in range(0, len(batch), SEND_CHUNK):
                chunk = batch[start : start + SEND_CHUNK]
                if self.broker_down and fresh:
                    # Do not wait on a broker known to be down: the pass retries with backoff.
                    self._failed(batch[start:], "the broker was unreachable")
                    return False
                try:
                    self.broker.enqueue_many([run_message(p.run, a, q) for p, a, q in chunk])
                except BROKER_ERRORS as exc:
                    self.broker_down = True
                    # Fresh runs all wait for a retry; a re-send pass stops at its oldest run.
                    self._failed(batch[start:] if fresh else chunk[:1], str(exc))
                    return False
                sent_at = datetime.now(UTC)
                sent.extend((p.run, sent_at) for p, _, _ in chunk)
            return True
        finally:
            done()
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

    def _failed(self, failed: list[tuple[PendingSend, str, str]], reason: str) -> None:
        """Count a failed hand-over of each run (one statement): pending for a retry, or
        discarded once out of attempts."""
        retry: list[tuple[Run, float]] = []
        for pending, _, _ in failed:
            run, attempts = pending.run, pending.send_attempts + 1
            delay = retry_delay(attempts)
            if delay is not None:
                retry.append((run, delay))
                continue
            with self.engine.begin() as conn:
                runs.mark_finished(
                    conn,
                    run.id,
                    "discarded",
                    error=f"could not hand the run to the broker after {attempts} attempts:"
                    f" {reason}",
                )
            metrics.OUTBOX_SENDS.labels("given_up").inc()
            logger.error("gave up sending run %d of %s: %s", run.id, run.job_name, reason)
        if not retry:
            return
        with self.engine.begin() as conn:
            runs.mark_send_failed_many(conn, [r.id for r, _ in retry], [d for _, d in retry])
        metrics.OUTBOX_SENDS.labels("failed").inc(len(retry))
        first, delay = retry[0]
        logger.warning(
            "broker unreachable, %d run(s) stay pending (run %d of %s: retry in %.0fs): %s",
            len(retry),
            first.id,
            first.job_name,
            delay,
            reason,
            extra={"job": first.job_name, "run_id": first.id, "runs": len(retry)},
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
