"""The leader's outbox: sends fired runs to the broker and re-sends the ones left pending.

A run is recorded `pending` before its message is sent. When the broker is unreachable it
stays pending; this thread retries it (oldest first, with backoff, a bounded number of
times) once the broker answers again, and adopts runs whose sender died before sending.
Runs prepared ahead of their slot are held (messages built) and sent when the slot comes,
never before, and only after the leader lock was confirmed just before it (`fence`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from scheduler.held import Handover, Held, Outgoing, held_first
from scheduler.sending import (
    MAX_SEND_ATTEMPTS,
    SEND_CHUNK,
    BatchSends,
    make_broker,
    retry_delay,
)
from shared.brokers import SenderBroker
from shared.bulk_enqueue import Packed
from shared.dispatch import run_message
from shared.runs import PendingSend, Run
from shared.settings import Settings

logger = logging.getLogger(__name__)

PASS_SECONDS = 1.0
HANDOVER_WAIT_SECONDS = 1.0  # how long the executor waits for its pass's runs to be sent
FENCE_LEAD_SECONDS = 0.02  # the leader lock is confirmed this long before a held slot
RESEND_CLEARANCE_SECONDS = 0.25  # no re-send pass starts this close before a held slot
PACK_AHEAD_SECONDS = 0.1  # runs held at least this long before their slot are encoded at once
__all__ = ["MAX_SEND_ATTEMPTS", "SEND_CHUNK", "Outbox", "make_broker", "retry_delay"]


class Outbox(BatchSends, threading.Thread):
    """Sends what the executor fires at once, and every second re-sends due pending runs."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        broker: SenderBroker,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        threading.Thread.__init__(self, name="srjobs-outbox", daemon=True)
        BatchSends.__init__(self, engine, broker)
        self.settings = settings
        self.fence = fence  # raises when this node no longer leads (LockSession.confirm)
        self.stopping = threading.Event()
        self._abandon = threading.Event()  # a stop that drops unsent runs
        self._held = Held()  # prepared ahead
        self._drop = False
        self._queue: queue.Queue[Handover | None] = queue.Queue()
        self._fence_ms = 0.0  # the lock's confirmation before the held slot being sent
        self._fence_at_ms = 0.0  # when it began, from that slot

    def send(self, run: Run, actor: str, queue: str) -> None:
        """Hand one just-recorded run over for sending."""
        self.send_many([(run, actor, queue)])

    def send_many(
        self, fired: list[tuple[Run, str, str]], not_before: datetime | None = None
    ) -> None:
        """Hand a pass's just-recorded runs over for sending (called by the executor).

        Runs of a slot past: wait (at most HANDOVER_WAIT_SECONDS) until they are sent or left
        pending, as the caller's next steps (the job store's write, logging) would otherwise
        slow the send down. Runs prepared ahead (`not_before`, their slot): held until then;
        no wait."""
        if not fired:
            return
        handed_at = time.perf_counter()
        done = threading.Event()
        outgoing = [Outgoing(run, actor, queue, handed_at) for run, actor, queue in fired]
        if not_before is not None:
            self._queue.put(Handover(outgoing, done, not_before.timestamp()))
            return
        self._queue.put(Handover(outgoing, done))
        if self.is_alive():
            done.wait(HANDOVER_WAIT_SECONDS)

    def stop(self, drop: bool) -> None:
        """Stop; `drop` abandons unsent runs (left pending for the next leader's outbox)."""
        self._drop = drop
        if drop:
            self._abandon.set()
        self.stopping.set()
        self._queue.put(None)

    def run(self) -> None:
        next_pass = time.monotonic()  # the first pass at once: adopt what the last term left
        while True:
            timeout = next_pass - time.monotonic()
            held = self._held.seconds_until(time.time(), FENCE_LEAD_SECONDS)
            if held is not None and held_first(held, timeout, RESEND_CLEARANCE_SECONDS):
                timeout, first = held, True
            else:
                first = False
            try:
                item = self._queue.get(timeout=max(0.0, timeout))
            except queue.Empty:
                if first:
                    self._send_held(fenced=True)
                elif self.stopping.is_set():
                    return
                else:
                    self._safely(self.resend_pending)
                    next_pass = time.monotonic() + PASS_SECONDS
                continue
            if self._take(item):
                return

    def _take(self, item: Handover | None) -> bool:
        """Hold what is prepared ahead, send the rest now; True at the stop marker."""
        handovers, last = self._drain(item)
        for handover in handovers:
            if handover.not_before is not None:
                handover.done.set()
                self._held.add(self._packed(handover))
        handovers = [h for h in handovers if h.not_before is None]
        batch = [o for h in handovers for o in h.runs]

        def release(handovers: list[Handover] = handovers) -> None:
            for handover in handovers:
                handover.done.set()

        try:
            if self._drop and self.stopping.is_set():
                return True
            if batch:
                self._send_fresh(batch, release)
        finally:
            release()
        if last:
            # The stop marker comes after every run fired before the stop. A clean stop sends
            # the held ones at their slots (the lock is released: no fence; the next leader
            # re-sends a pending run only well after its slot).
            while self._held and not self._abandon.is_set():
                self._send_held(fenced=False)
        return last

    def _send_held(self, fenced: bool) -> None:
        """Send the held runs of the oldest slot when it comes, never before; `fenced`: only
        once the leader lock is confirmed (else they stay pending for the next leader)."""
        handover = self._held.pop()
        slot = handover.not_before or 0.0
        if fenced:
            try:
                confirming = time.perf_counter()
                self._fence_at_ms = (time.time() - slot) * 1000
                self.fence()
                self._fence_ms = (time.perf_counter() - confirming) * 1000
            except Exception as exc:  # LeadershipLost, or the lock session's failure
                dropped = len(handover.runs) + self._held.clear()
                logger.warning(
                    "not sending %d run(s) prepared ahead: %s; they stay pending",
                    dropped,
                    exc,
                    extra={"event": "prepared_runs_left", "runs": dropped},
                )
                return
        while (wait := slot - time.time()) > 0:
            if self._abandon.wait(wait):
                return
        self._safely(
            functools.partial(self._send_fresh, handover.runs, lambda: None, handover.packed)
        )

    def _packed(self, handover: Handover) -> Handover:
        """The held handover with its messages encoded now, one `Packed` per SEND_CHUNK
        (as they will be sent), so that only the round trips to Redis are left at the slot.
        Handed over too close to its slot (a late pass), it is left to be encoded a chunk at a
        time as it is sent: the first chunk then leaves without waiting for the last's."""
        if (handover.not_before or 0.0) - time.time() < PACK_AHEAD_SECONDS:
            return handover
        try:
            messages = [run_message(o.run, o.actor, o.queue) for o in handover.runs]
            packed = [
                self.broker.pack(messages[start : start + SEND_CHUNK])
                for start in range(0, len(messages), SEND_CHUNK)
            ]
        except Exception:
            logger.exception("could not encode prepared runs ahead: encoding them at the slot")
            return handover
        return dataclasses.replace(handover, packed=packed)

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

    def _send_fresh(
        self, batch: list[Outgoing], sent: Callable[[], None], packed: list[Packed] | None = None
    ) -> None:
        """Send just-fired runs (`sent` is called once they are sent or left pending, before
        they are marked enqueued; `packed`: encoded ahead); one `fires_sent` event says where
        the time went."""
        started, started_at = time.perf_counter(), time.time()
        self._mark_ms = self._first_ms = 0.0
        fresh = [(PendingSend(o.run, 0), o.actor, o.queue) for o in batch]
        self._safely(functools.partial(self._send_all, fresh, fresh=True, done=sent, packed=packed))
        total_ms = (time.perf_counter() - started) * 1000
        slots = [o.run.scheduled_at.timestamp() for o in batch if o.run.scheduled_at]
        logger.info(
            "sent %d fired run(s)",
            len(batch),
            extra={
                "event": "fires_sent",
                "runs": len(batch),
                "wait_ms": round((started - batch[0].handed_at) * 1000, 1),
                # From the newest slot to the first send (manual runs: none).
                "late_ms": round((started_at - max(slots)) * 1000, 1) if slots else None,
                "send_ms": round(total_ms - self._mark_ms, 1),
                "mark_ms": round(self._mark_ms, 1),
                "first_ms": round(self._first_ms, 1),
                "fence_ms": round(self._fence_ms, 1),
                "fence_at_ms": round(self._fence_at_ms, 1),
            },
        )
        self._fence_ms = self._fence_at_ms = 0.0
