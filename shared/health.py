"""A small HTTP endpoint for a service without a web server of its own (scheduler, worker):
`/healthz` (the process answers), `/readyz` (its dependencies answer), `/metrics`."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)

# Returns (ready, details); details are shown as JSON.
ReadinessCheck = Callable[[], tuple[bool, dict]]


class HealthServer:
    """Serves health and metrics on `port` in a daemon thread; port 0 in settings means off."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: ReadinessCheck,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._send(200, "application/json", b'{"status": "ok"}')
                elif self.path == "/readyz":
                    ready, details = owner._ready()
                    body = json.dumps({"ready": ready, **details}).encode()
                    self._send(200 if ready else 503, "application/json", body)
                elif self.path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                else:
                    self._send(404, "application/json", b'{"error": "not found"}')

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("health request: %s", format % args)

        self._readiness = readiness
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="srjobs-health", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def _ready(self) -> tuple[bool, dict]:
        try:
            return self._readiness()
        except Exception as exc:  # a failing check means "not ready", never a 500
            return False, {"error": f"{type(exc).__name__}: {exc}"}

    def start(self) -> HealthServer:
        self._thread.start()
        logger.info("health and metrics on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
