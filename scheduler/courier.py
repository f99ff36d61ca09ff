"""Delivers recorded alerts to every SRJOBS_ALERT_WEBHOOK_URLS entry, at least once.

Runs on the leader. Its state is the `alerts` table (per target: delivered or not, attempts,
last error; per alert: the next attempt), so a new leader carries on where the last one
stopped. Each target is tried in its own thread, oldest alert first; a target that fails is
left alone for the rest of the pass, so a hanging receiver costs one timeout per pass.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared import alerts, webhooks
from shared.alerts import Alert
from shared.settings import Settings

logger = logging.getLogger(__name__)

BATCH = 100
IDLE_SECONDS = 30.0  # looks for due alerts at least this often (another leader's, restarts)
NOT_TRIED = "not tried: it failed earlier in this pass"
NO_TARGETS = "not sent: SRJOBS_ALERT_WEBHOOK_URLS is not set"

# alert id -> None (accepted) or the error
Results = dict[int, str | None]


def merge(alert: Alert, urls: tuple[str, ...], results: dict[str, Results], now: datetime) -> dict:
    """The alert's per-target state after this pass's results."""
    out = {key: dict(value) for key, value in alert.deliveries.items()}
    for url in urls:
        key = webhooks.target_key(url)
        entry = out.setdefault(
            key,
            {"target": webhooks.mask(url), "delivered_at": None, "attempts": 0, "last_error": None},
        )
        if entry["delivered_at"] or alert.id not in results.get(url, {}):
            continue
        error = results[url][alert.id]
        if error != NOT_TRIED:
            entry["attempts"] += 1
        if error is None:
            entry["delivered_at"], entry["last_error"] = now.isoformat(), None
        else:
            entry["last_error"] = error
    return out


def pending_urls(alert: Alert, urls: tuple[str, ...]) -> list[str]:
    """The targets that have not accepted the alert yet."""
    return [
        u for u in urls if not alert.deliveries.get(webhooks.target_key(u), {}).get("delivered_at")
    ]


class Courier(threading.Thread):
    """Sends due alerts when woken (a new alert) or when the next retry is due."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        super().__init__(name="srjobs-courier", daemon=True)
        self.settings = settings
        self.engine = engine
        self.wake = threading.Event()
        self.stopping = threading.Event()
        urls = settings.alert_webhook_urls
        self._pool = ThreadPoolExecutor(max(1, len(urls)), thread_name_prefix="srjobs-webhook")

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if not self.is_alive():
            self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                wait = IDLE_SECONDS
                try:
                    while self.deliver_due() == BATCH and not self.stopping.is_set():
                        pass
                    wait = self._until_next_due()
                except SQLAlchemyError as exc:
                    logger.warning("alert delivery: database unavailable: %s", exc)
                    wait = 1.0
                except Exception:  # never stop delivering: the state is in the table
                    logger.exception("alert delivery failed; retrying")
                    wait = 1.0
                self.wake.wait(wait)
                self.wake.clear()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _until_next_due(self) -> float:
        with self.engine.connect() as conn:
            seconds = alerts.seconds_until_due(conn)
        return IDLE_SECONDS if seconds is None else min(IDLE_SECONDS, max(0.0, seconds))

    def deliver_due(self) -> int:
        """One pass over the due alerts; returns how many it handled."""
        with self.engine.connect() as conn:
            due = alerts.due(conn, BATCH)
        if not due:
            return 0
        urls = self.settings.alert_webhook_urls
        results: dict[str, Results] = {}
        if urls:
            futures = {url: self._pool.submit(self._send_to, url, due) for url in urls}
            results = {url: future.result() for url, future in futures.items()}
        now = datetime.now(UTC)
        for alert in due:
            self._record(alert, urls, results, now)
        return len(due)

    def _send_to(self, url: str, due: list[Alert]) -> Results:
        out: Results = {}
        failed = False
        for alert in due:
            if url not in pending_urls(alert, (url,)):
                continue
            if failed or self.stopping.is_set():
                out[alert.id] = NOT_TRIED
                continue
            data = webhooks.body(alert)
            headers = webhooks.headers_for(data, self.settings.alert_webhook_secret)
            error = webhooks.post(url, data, headers, self.settings.alert_timeout_seconds)
            out[alert.id] = error
            failed = error is not None
        return out

    def _record(
        self, alert: Alert, urls: tuple[str, ...], results: dict[str, Results], now: datetime
    ) -> None:
        deliveries = merge(alert, urls, results, now)
        entries = [deliveries[webhooks.target_key(u)] for u in urls]
        missing = [e for e in entries if not e["delivered_at"]]
        delivered = bool(urls) and not missing
        errors = [f"{e['target']}: {e['last_error']}" for e in missing if e["last_error"]]
        last_error = "; ".join(errors)[:1000] or (None if urls else NO_TARGETS)
        retry: float | None = None
        give_up_at = alert.created_at + timedelta(hours=self.settings.alert_give_up_hours)
        if not delivered and urls and now < give_up_at:
            retry = webhooks.retry_delay(
                alert.attempts + 1,
                self.settings.alert_retry_seconds,
                self.settings.alert_retry_max_seconds,
            )
        elif not delivered and urls:
            last_error = f"gave up after {self.settings.alert_give_up_hours:g} h: {last_error}"
        with self.engine.begin() as conn:
            alerts.record_attempt(
                conn,
                alert.id,
                deliveries,
                delivered=delivered,
                last_error=last_error,
                retry_in_seconds=retry,
            )
        extra = {"event": "alert_delivery", "alert_id": alert.id, "delivered": delivered}
        if delivered:
            logger.info("alert %d (%s) delivered", alert.id, alert.event, extra=extra)
        elif urls:
            logger.warning(
                "alert %d not delivered: %s; %s",
                alert.id,
                last_error,
                f"retry in {retry:g} s" if retry is not None else "given up",
                extra={**extra, "retry_in": retry},
            )
