"""One term of leadership: APScheduler running, schedules mirrored, fires fenced."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import Engine

from scheduler import metrics
from scheduler.alerting import Alerting
from scheduler.executor import FireExecutor
from scheduler.jobstore import FencedJobStore
from scheduler.leadership import LockSession
from scheduler.listener import Changes, ScheduleListener
from scheduler.loop import LeaderScheduler
from scheduler.outbox import Outbox
from scheduler.reconciler import Reconciler
from scheduler.slots import catch_up_from, is_missed, misfire_grace_seconds
from scheduler.sync import Mirror
from shared import schedules
from shared.brokers import SenderBroker
from shared.errors import LeadershipLost
from shared.settings import Settings

logger = logging.getLogger(__name__)

FULL_SYNC_ABOVE = 500  # a batch of notifications naming more jobs resyncs everything
STOP_JOIN_SECONDS = 3.0


class LeaderTerm:
    """Runs from winning the lock until it is lost or the service stops."""

    def __init__(
        self, settings: Settings, engine: Engine, broker: SenderBroker, lock: LockSession
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.lock = lock
        self.wake = threading.Event()
        self.lost = threading.Event()
        self._sync_mutex = threading.Lock()  # held while the mirror and job store change
        self._full_mutex = threading.Lock()  # one full reconcile at a time
        self._touched: set[str] | None = None  # names applied during a full reconcile's read
        lock.on_lost = self._on_lost
        self.outbox = Outbox(settings, engine, broker, fence=lambda: lock.confirm(engine))
        self.store = FencedJobStore(lock)
        self.scheduler = LeaderScheduler(
            self.store, FireExecutor(lock, self.outbox, settings.misfire_grace_seconds)
        )
        self.mirror = Mirror(self.scheduler, self.store, settings.misfire_grace_seconds)
        self.listener = ScheduleListener(settings, self._on_change)
        self.reconciler = Reconciler(self._reconcile)
        self.alerting = Alerting(settings, engine)

    def run(self, stop: threading.Event) -> str:
        """Lead until `stop` is set or the lock is lost; returns why the term ended."""
        won = time.monotonic()
        reason = "stopping"
        self.scheduler.start(paused=True)
        try:
            self._catch_up(self.mirror.load())
            self.sync(None)
            self.outbox.start()
            self.scheduler.resume()
            logger.info(
                "leading: ready to fire",
                extra={
                    "event": "leader_ready",
                    "leader_ready_at": time.time(),
                    "start_ms": round((time.monotonic() - won) * 1000, 1),
                },
            )
            self.reconciler.start()
            self.listener.start()
            self.alerting.start()
            while not (stop.is_set() or self.lost.is_set()):
                self.wake.wait(self.settings.leader_check_seconds)
                self.wake.clear()
                if stop.is_set() or self.lost.is_set():
                    break
                self.lock.check()
                if not self.scheduler._thread.is_alive():
                    raise LeadershipLost("APScheduler's thread stopped")
            if self.lost.is_set():
                reason = "leader lock session lost"
        except LeadershipLost as exc:
            reason = str(exc)
        finally:
            self._end(dropped=self.lost.is_set() or not stop.is_set())
        return reason

    def _end(self, dropped: bool) -> None:
        # Stop firing, then release the lock at once so a follower takes over without
        # waiting for this node's threads; unsent runs stay pending for the next outbox.
        self.scheduler.shutdown(wait=False)
        released_at = time.time()  # before the release: no successor can be ready earlier
        self.lock.close()
        logger.info(
            "released the leader lock",
            extra={"event": "leader_released", "released_at": released_at},
        )
        self.listener.stop()
        self.reconciler.stop()
        self.alerting.stop()
        self.outbox.stop(drop=dropped)
        for thread in (self.listener, self.reconciler, self.outbox):
            if thread.is_alive():
                thread.join(STOP_JOIN_SECONDS)
        self.alerting.join(STOP_JOIN_SECONDS)

    def _on_lost(self) -> None:
        self.lost.set()
        self.wake.set()

    def _catch_up(self, states: list[dict]) -> None:
        """Skip (and log) stored slots older than the grace; the newest missed one fires.
        `states` are stored jobs' states (Mirror.load returns those that may be missed)."""
        now = datetime.now(UTC)
        moved = []
        for state in states:
            next_run_time = state["next_run_time"]
            if next_run_time is None or not is_missed(
                next_run_time, now, self.settings.misfire_grace_seconds
            ):
                continue  # within the minimum grace: nothing to skip (the common case)
            schedule = state["trigger"].schedule
            grace = misfire_grace_seconds(schedule, now, self.settings.misfire_grace_seconds)
            resume_at = catch_up_from(schedule, next_run_time, now, grace)
            if resume_at is None:
                continue
            logger.warning(
                "skipped the slots of %s from %s to before %s: older than the %ss grace",
                state["id"],
                next_run_time.isoformat(),
                resume_at.isoformat(),
                grace,
                extra={
                    "event": "slots_skipped",
                    "job": state["id"],
                    "first_skipped": next_run_time.isoformat(),
                    "resume_at": resume_at.isoformat(),
                },
            )
            metrics.MISSED.labels(state["id"]).inc()
            moved.append({**state, "next_run_time": resume_at})
        if moved:
            with self.scheduler._jobstores_lock:
                self.store.add_many(moved)

    def sync(self, names: set[str] | None) -> None:
        """Mirror all schedules (names None) or only the named ones."""
        if names is not None:
            with self._sync_mutex:
                with self.engine.connect() as conn:
                    rows = schedules.list_targets(conn, names)
                self.mirror.reconcile(rows, names)
                if self._touched is not None:
                    self._touched |= names
            return
        started = time.monotonic()
        with self._full_mutex:
            # Read without holding up single changes; the ones applied meanwhile came from
            # newer rows than this read, so the full plan leaves them out.
            with self._sync_mutex:
                self._touched = set()
            try:
                with self.engine.connect() as conn:
                    rows = schedules.list_targets(conn)
                with self._sync_mutex:
                    self.mirror.refresh_if_drifted()
                    plan = self.mirror.reconcile(rows, None, skip=self._touched)
            finally:
                with self._sync_mutex:
                    self._touched = None
        took = (time.monotonic() - started) * 1000
        logger.info(
            "reconciled %d schedules in %.1f ms (%d added, %d changed, %d removed)",
            len(rows),
            took,
            len(plan.add),
            len(plan.change),
            len(plan.remove),
            extra={
                "event": "schedules_reconciled",
                "schedules": len(rows),
                "reconcile_ms": round(took, 1),
            },
        )

    def _reconcile(self) -> None:
        """A full reconcile on the reconciler's thread."""
        try:
            self.sync(None)
            metrics.RECONCILES.inc()
        except LeadershipLost:
            return  # the term is ending
        except Exception:
            logger.exception("a full reconcile failed; the next one retries")

    def _on_change(self, changes: Changes | None) -> None:
        if changes is None:
            self.reconciler.request()
            return
        try:
            if len(changes) > FULL_SYNC_ABOVE:
                self.sync(None)
                metrics.RECONCILES.inc()
            else:
                self.sync(set(changes))
        except LeadershipLost:
            return  # the term is ending
        except Exception:
            logger.exception("applying schedule changes failed; the next reconcile retries")
            return
        applied = time.time()
        times = [at for at in changes.values() if at is not None]
        changed = min(times) if times else None
        metrics.RELOADS.inc(len(changes))
        if changed is not None:
            metrics.RELOAD_LATENCY.observe(max(0.0, applied - changed))
        logger.info(
            "applied schedule changes of %s",
            ", ".join(sorted(changes)),
            extra={
                "event": "schedule_applied",
                "jobs": sorted(changes),
                "changed_at": changed,
                "applied_at": applied,
                "reload_ms": None if changed is None else round((applied - changed) * 1000, 3),
            },
        )
