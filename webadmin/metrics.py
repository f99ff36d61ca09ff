"""Prometheus metrics of the admin: request latency by route template, method and status."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webadmin.asgi import HttpMiddleware

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def make_registry() -> tuple[CollectorRegistry, Histogram]:
    """A registry of the app's own (one per app, so that tests can build many apps)."""
    registry = CollectorRegistry()
    latency = Histogram(
        "srjobs_admin_http_request_duration_seconds",
        "Admin HTTP request latency, by route template, method and status",
        ["route", "method", "status"],
        buckets=BUCKETS,
        registry=registry,
    )
    return registry, latency


class MetricsMiddleware(HttpMiddleware):
    """Times every HTTP request; the label is the matched route's template, not the URL."""

    def __init__(self, app: ASGIApp, latency: Histogram) -> None:
        super().__init__(app)
        self.latency = latency

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.latency.labels(template, scope["method"], str(status)).observe(
                time.perf_counter() - started
            )
