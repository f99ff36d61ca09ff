"""A scheduler instance: compete for the lock, lead while holding it, report as a peer."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from scheduler.leader import LeaderTerm
from scheduler.leadership import LockSession
from shared import nodes
from shared.db import make_engine
from shared.dispatch import make_sender
from shared.settings import Settings

logger = logging.getLogger(__name__)

FOLLOWER_WAIT_SECONDS = 10.0
RETRY_SECONDS = 1.0


class SchedulerService:
    """Owns the engine, the sending broker and the lock session of one instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings, application_name="srjobs-scheduler")
        self.broker = make_sender(settings)
        self.stop = threading.Event()
        self.role = "follower"
        self._lock: LockSession | None = None

    def request_stop(self) -> None:
        """Ask the service to stop (signal handlers call this)."""
        self.stop.set()
        if self._lock is not None:
            self._lock.interrupt()

    def run(self) -> None:
        heart = threading.Thread(target=self._heartbeat, name="srjobs-heartbeat", daemon=True)
        heart.start()
        try:
            while not self.stop.is_set():
                try:
                    self._compete()
                except (SQLAlchemyError, OSError) as exc:
                    logger.warning("database unavailable: %s; retrying", exc)
                    self._set_role("follower")
                    self.stop.wait(RETRY_SECONDS)
                except Exception:
                    logger.exception("scheduler loop failed; retrying")
                    self._set_role("follower")
                    self.stop.wait(RETRY_SECONDS)
        finally:
            self.stop.set()
            heart.join(timeout=2)
            self._forget()
            self.broker.close()
            self.engine.dispose()

    def _compete(self) -> None:
        lock = LockSession(self.settings)
        self._lock = lock
        try:
            lock.connect()
            while not self.stop.is_set():
                if lock.acquire(FOLLOWER_WAIT_SECONDS):
                    self._lead(lock)
                    return
        finally:
            self._lock = None
            lock.close()

    def _lead(self, lock: LockSession) -> None:
        logger.info("became leader", extra={"role": "leader"})
        self._set_role("leader")
        try:
            LeaderTerm(self.settings, self.engine, self.broker, lock).run(self.stop)
        finally:
            self._set_role("follower")
            logger.info("stepped down", extra={"role": "follower"})

    def _set_role(self, role: str) -> None:
        self.role = role
        self._beat()

    def _beat(self) -> None:
        try:
            with self.engine.begin() as conn:
                nodes.beat_scheduler(conn, self.settings.node_name, self.role)
        except SQLAlchemyError as exc:
            logger.debug("heartbeat failed: %s", exc)

    def _heartbeat(self) -> None:
        while not self.stop.wait(1.0):
            self._beat()

    def _forget(self) -> None:
        try:
            with self.engine.begin() as conn:
                nodes.forget_scheduler(conn, self.settings.node_name)
        except SQLAlchemyError:
            logger.debug("could not remove this node's peer row", exc_info=True)
