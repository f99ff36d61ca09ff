"""A scheduler instance: compete for the lock, lead while holding it, report as a peer."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from scheduler import metrics
from scheduler.leader import LeaderTerm
from scheduler.leadership import LockSession
from scheduler.outbox import make_broker
from shared import nodes
from shared.db import make_engine
from shared.dependencies import dependencies, readiness
from shared.settings import SCHEDULER_HEARTBEAT_SECONDS, Settings

logger = logging.getLogger(__name__)

FOLLOWER_WAIT_SECONDS = 2.0  # bounds how long a stop request can go unnoticed
RETRY_SECONDS = 1.0


class SchedulerService:
    """Owns the engine, the sending broker and the lock session of one instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings, application_name="srjobs-scheduler")
        self.broker = make_broker(settings)
        self.stop = threading.Event()
        self.role = "follower"
        self._lock: LockSession | None = None
        self._term: LeaderTerm | None = None
        self._beat_now = threading.Event()
        self._needs = dependencies(settings)

    def request_stop(self) -> None:
        """Ask the service to stop (signal handlers call this): a leader steps down at once."""
        self.stop.set()
        self._beat_now.set()
        term, lock = self._term, self._lock
        if term is not None:
            term.wake.set()
        if lock is not None:
            lock.interrupt()

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
            self._beat_now.set()
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
        logger.info(
            "became leader",
            extra={
                "event": "leader_acquired",
                "role": "leader",
                "leader_since": time.time(),
                "backend_pid": lock.backend_pid,
            },
        )
        metrics.LEADER.set(1)
        metrics.LEADERSHIP_CHANGES.inc()
        self._set_role("leader")
        reason = "failed"
        term = LeaderTerm(self.settings, self.engine, self.broker, lock)
        self._term = term
        if self.stop.is_set():
            term.wake.set()
        try:
            reason = term.run(self.stop)
        finally:
            self._term = None
            metrics.LEADER.set(0)
            metrics.LEADERSHIP_CHANGES.inc()
            logger.info(
                "stepped down: %s",
                reason,
                extra={"event": "leader_stepped_down", "role": "follower", "reason": reason},
            )
            self._set_role("follower")

    def readiness(self) -> tuple[bool, dict]:
        """For /readyz: whether the database and Redis answer, with this node's role."""
        return readiness(self._needs, role=self.role, node=self.settings.node_name)

    def _set_role(self, role: str) -> None:
        # The heartbeat thread records it at once: a new leader does not wait on that write.
        self.role = role
        self._beat_now.set()

    def _beat(self) -> None:
        try:
            with self.engine.begin() as conn:
                nodes.beat_scheduler(conn, self.settings.node_name, self.role)
        except SQLAlchemyError as exc:
            logger.debug("heartbeat failed: %s", exc)

    def _heartbeat(self) -> None:
        while not self.stop.is_set():
            self._beat_now.wait(SCHEDULER_HEARTBEAT_SECONDS)
            self._beat_now.clear()
            if not self.stop.is_set():
                self._beat()

    def _forget(self) -> None:
        try:
            with self.engine.begin() as conn:
                nodes.forget_scheduler(conn, self.settings.node_name)
        except SQLAlchemyError:
            logger.debug("could not remove this node's peer row", exc_info=True)
