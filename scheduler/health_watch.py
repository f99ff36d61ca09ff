"""The leader's health watch: records one alert per change of a job's health.

It wakes when a run gets an outcome (the `srjobs_runs` notification of a trigger on
`job_runs`), when a schedule changes (`srjobs_schedules`), when a job's staleness deadline
passes, and for a full pass every SRJOBS_HEALTH_PASS_SECONDS (and after each reconnect, as
notifications sent meanwhile are lost). Which transitions were alerted lives in
`job_alert_state`, changed in the transaction that records the alert.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable

from psycopg2.extensions import connection as Connection
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from scheduler.listener import parse_payload
from scheduler.notifications import ListeningThread
from shared import alerts, run_stats, runs, webhooks
from shared.errors import UnknownRun
from shared.freshness import QUIET, Freshness, alert_event, assess, next_alerted
from shared.schedules import ScheduleRow
from shared.settings import Settings

logger = logging.getLogger(__name__)

DEADLINE_MARGIN = 0.05
RECORD_BATCH = 200  # changes per transaction


def alert_details(
    event: str, row: ScheduleRow, fresh: Freshness, run: runs.Run | None, admin_url: str | None
) -> dict:
    """The webhook body's fields besides id, event, job, health and at."""
    link = webhooks.job_link(admin_url, row.name)
    details = {
        "consecutive_failures": fresh.consecutive_failures,
        "last_success_at": fresh.last_success_at.isoformat() if fresh.last_success_at else None,
        "run": run.as_json() if run is not None else None,
        "text": webhooks.summary(
            event,
            row.name,
            consecutive_failures=fresh.consecutive_failures,
            last_success_at=fresh.last_success_at,
            stale_after_seconds=fresh.stale_after_seconds,
            error=run.error if run is not None else None,
            link=link,
        ),
    }
    if link:
        details["url"] = link
    return details


class HealthWatch(ListeningThread):
    """Evaluates health on notifications and deadlines; `on_alert` wakes the courier."""

    channels = ("srjobs_runs", "srjobs_schedules")
    lost_event = "health_watch_lost"

    def __init__(self, settings: Settings, engine: Engine, on_alert: Callable[[], None]) -> None:
        super().__init__(settings, name="srjobs-health-watch")
        self.engine = engine
        self.on_alert = on_alert
        self.alerted: dict[str, str] = {}
        self.deadlines: dict[str, float] = {}  # job -> epoch seconds it turns stale
        # The same deadlines by time, with superseded entries left in until they surface:
        # the soonest in O(log n), not a scan of 100,000 jobs at every notification.
        self._heap: list[tuple[float, str]] = []

    def serve(self, conn: Connection) -> None:
        with self.engine.connect() as db:
            self.alerted = alerts.alerted_states(db)
        recorded = self.evaluate(None)
        logger.info(
            "health watch: first pass done, %d alert(s) recorded",
            recorded,
            extra={"event": "health_watch_ready", "recorded": recorded},
        )
        next_full = time.monotonic() + self.settings.health_pass_seconds
        while True:
            timeout = min(next_full - time.monotonic(), self._until_deadline())
            if (payloads := self.wait(conn, timeout)) is None:
                return
            if time.monotonic() >= next_full:
                self.evaluate(None)
                next_full = time.monotonic() + self.settings.health_pass_seconds
                continue
            names = self._due_names() | {parse_payload(p)[0] for p in payloads}
            if names:
                self.evaluate(sorted(names))

    def _set_deadline(self, name: str, at: float) -> None:
        if self.deadlines.get(name) == at:
            return
        self.deadlines[name] = at
        heapq.heappush(self._heap, (at, name))
        if len(self._heap) > 2 * len(self.deadlines) + 1000:  # drop the superseded entries
            self._heap = [(when, job) for job, when in self.deadlines.items()]
            heapq.heapify(self._heap)

    def _soonest(self) -> float | None:
        heap = self._heap
        while heap and self.deadlines.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # superseded or dropped
        return heap[0][0] if heap else None

    def _until_deadline(self) -> float:
        soonest = self._soonest()
        return float("inf") if soonest is None else soonest - time.time()

    def _due_names(self) -> set[str]:
        now = time.time()
        due = []
        while (soonest := self._soonest()) is not None and soonest <= now:
            due.append(heapq.heappop(self._heap))
        for entry in due:  # still due until evaluated (which sets or drops each)
            heapq.heappush(self._heap, entry)
        return {name for _, name in due}

    def evaluate(self, names: list[str] | None) -> int:
        """Assess the named jobs (None: all) and record their changes; returns how many."""
        with self.engine.connect() as conn:
            now, found = run_stats.job_stats(conn, names)
        skew = time.time() - now.timestamp()
        seen = set()
        changes: list[tuple[ScheduleRow, Freshness, str]] = []
        for row, stats in found:
            seen.add(row.name)
            fresh = assess(row, stats, now)
            if fresh.stale_at is None:
                self.deadlines.pop(row.name, None)
            else:  # a moment past it, in this process's clock, and never in a tight loop
                at = fresh.stale_at.timestamp() + skew + DEADLINE_MARGIN
                self._set_deadline(row.name, max(at, time.time() + DEADLINE_MARGIN))
            event = alert_event(self.alerted.get(row.name, QUIET), fresh.health)
            if event is not None:
                changes.append((row, fresh, event))
        for name in set(names if names is not None else self.deadlines) - seen:
            self.deadlines.pop(name, None)  # the job is gone
        recorded = 0
        for start in range(0, len(changes), RECORD_BATCH):
            recorded += self._record(changes[start : start + RECORD_BATCH])
        if recorded:
            self.on_alert()
        return recorded

    def _record(self, changes: list[tuple[ScheduleRow, Freshness, str]]) -> int:
        """Record a batch of changes in one transaction, a savepoint each (a job deleted
        meanwhile loses only its own); returns how many were recorded."""
        done: list[tuple[ScheduleRow, Freshness, str, str, int]] = []
        adopted = False
        with self.engine.begin() as conn:
            for row, fresh, event in changes:
                before = self.alerted.get(row.name, QUIET)
                after = next_alerted(before, fresh.health)
                try:
                    with conn.begin_nested():
                        run = None
                        if event != "job.stale" and fresh.cause_run_id is not None:
                            try:
                                run = runs.get_run(conn, fresh.cause_run_id)
                            except UnknownRun:
                                run = None
                        details = alert_details(event, row, fresh, run, self.settings.admin_url)
                        alert_id = alerts.record_transition(
                            conn, row.name, before, after, event, fresh.health, details
                        )
                except IntegrityError:
                    logger.info("job %s was deleted before its alert was recorded", row.name)
                    continue
                if alert_id is None:  # recorded by another evaluator: adopt its state
                    adopted = True
                else:
                    done.append((row, fresh, event, after, alert_id))
            states = alerts.alerted_states(conn) if adopted else {}
        recorded = {row.name for row, *_ in done}
        for row, _, _ in changes:
            if adopted and row.name not in recorded:
                self.alerted[row.name] = states.get(row.name, QUIET)
        for row, fresh, event, after, alert_id in done:
            self.alerted[row.name] = after
            logger.info(
                "job %s is %s: alert %d (%s)",
                row.name,
                fresh.health,
                alert_id,
                event,
                extra={
                    "event": "alert_recorded",
                    "job": row.name,
                    "alert_id": alert_id,
                    "alert_event": event,
                    "health": fresh.health,
                },
            )
        return len(done)
