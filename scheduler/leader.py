"""One term of leadership: APScheduler running, schedules mirrored, fires fenced."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine

from scheduler.executor import FireExecutor
from scheduler.leadership import LockSession
from scheduler.listener import ScheduleListener
from scheduler.sync import Mirror
from shared import schedules
from shared.dispatch import dispatch
from shared.errors import LeadershipLost
from shared.settings import Settings

logger = logging.getLogger(__name__)


class LeaderTerm:
    """Runs from winning the lock until it is lost or the service stops."""

    def __init__(
        self, settings: Settings, engine: Engine, broker: RedisBroker, lock: LockSession
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.lock = lock
        self.lost = threading.Event()
        self._sync_mutex = threading.Lock()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine)},
            executors={"default": FireExecutor(self.fire)},
            timezone="UTC",
        )
        self.mirror = Mirror(self.scheduler)

    def fire(self, job_name: str, kwargs: dict, slot: datetime) -> None:
        """Record the slot's run through the lock session (the fence), then send it."""
        try:
            run = self.lock.record_cron_run(job_name, slot)
        except LeadershipLost:
            logger.warning("not firing %s for %s: leadership lost", job_name, slot.isoformat())
            self.lost.set()
            return
        if run is None:
            logger.info(
                "slot %s of %s already fired elsewhere",
                slot.isoformat(),
                job_name,
                extra={"job": job_name, "slot": slot.isoformat()},
            )
            return
        logger.info(
            "fired %s slot %s as run %d",
            job_name,
            slot.isoformat(),
            run.id,
            extra={"job": job_name, "slot": slot.isoformat(), "run_id": run.id},
        )
        dispatch(self.engine, self.broker, run, kwargs["actor"], kwargs["queue"])

    def sync(self, names: set[str] | None) -> None:
        """Mirror all schedules (names None) or only the named ones."""
        with self._sync_mutex:
            with self.engine.connect() as conn:
                rows = schedules.list_schedules(conn)
            self.mirror.reconcile(rows, names)

    def run(self, stop: threading.Event) -> None:
        """Lead until `stop` is set or the lock is lost; always shuts APScheduler down."""
        term_stop = threading.Event()
        listener = ScheduleListener(self.settings, self._on_change, term_stop)
        self.scheduler.start(paused=True)
        try:
            self.sync(None)
            self.scheduler.resume()
            listener.start()
            next_reconcile = self.settings.reconcile_seconds
            while not (stop.is_set() or self.lost.is_set()):
                if stop.wait(self.settings.leader_check_seconds):
                    break
                self.lock.check()
                next_reconcile -= self.settings.leader_check_seconds
                if next_reconcile <= 0:
                    self.sync(None)
                    next_reconcile = self.settings.reconcile_seconds
        except LeadershipLost as exc:
            logger.warning("leadership lost: %s", exc)
        finally:
            term_stop.set()
            self.scheduler.shutdown(wait=False)
            if listener.is_alive():
                listener.join(timeout=2)

    def _on_change(self, names: set[str] | None) -> None:
        try:
            self.sync(names)
        except Exception:
            logger.exception("applying schedule changes failed; the next reconcile retries")
