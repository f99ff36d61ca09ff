"""Sending runs to the broker in batches and recording what came of it (the outbox's part
that talks to Redis and `job_runs`): pipelines of SEND_CHUNK messages, one statement to mark
them enqueued, backoff and giving up for failed hand-overs, the re-send of pending runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from scheduler import metrics
from shared import runs, schedules
from shared.brokers import SenderBroker
from shared.bulk_enqueue import Packed
from shared.dispatch import make_sender, run_message, send_backoff_seconds
from shared.runs import PendingSend, Run
from shared.settings import Settings

logger = logging.getLogger(__name__)

BATCH = 200
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


class BatchSends:
    """Sends batches of runs and records the outcome; `broker_down` after a broker failure."""

    def __init__(self, engine: Engine, broker: SenderBroker) -> None:
        self.engine = engine
        self.broker = broker
        self.broker_down = False
        self._mark_ms = 0.0  # spent marking sent runs enqueued, for the `fires_sent` event
        self._first_ms = 0.0  # from the start of a send to its first chunk in Redis, too

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
        packed: list[Packed] | None = None,
    ) -> bool:
        """Send in order, a pipeline of SEND_CHUNK messages per Redis round trip, then mark
        the sent runs enqueued in one statement (each chunk's time); False when the broker
        failed. A failed chunk's runs stay pending (any of them may have reached Redis: a copy
        sent again is a stale copy to the worker); later chunks are not tried."""
        sent: list[tuple[Run, datetime]] = []
        started = time.perf_counter()
        try:
            for start in range(0, len(batch), SEND_CHUNK):
                chunk = batch[start : start + SEND_CHUNK]
                if self.broker_down and fresh:
                    # Do not wait on a broker known to be down: the pass retries with backoff.
                    self._failed(batch[start:], "the broker was unreachable")
                    return False
                try:
                    if packed:  # encoded ahead, one per chunk
                        self.broker.send_packed(packed[start // SEND_CHUNK])
                    else:
                        self.broker.enqueue_many([run_message(p.run, a, q) for p, a, q in chunk])
                except BROKER_ERRORS as exc:
                    self.broker_down = True
                    # Fresh runs all wait for a retry; a re-send pass stops at its oldest run.
                    self._failed(batch[start:] if fresh else chunk[:1], str(exc))
                    return False
                sent_at = datetime.now(UTC)
                if not sent:
                    self._first_ms = (time.perf_counter() - started) * 1000
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
