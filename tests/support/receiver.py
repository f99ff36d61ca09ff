"""A real HTTP receiver for alert webhooks: answers 2xx, 500 or hangs; may go down and come
back on the same loopback port."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from srjobs.dev import free_port

HANG_LIMIT_SECONDS = 60.0  # a hanging answer is released by stop() or after this


@dataclass(frozen=True)
class Received:
    body: bytes
    headers: dict[str, str]
    at: float  # time.time() when it arrived
    status: int | None  # the answer given (None: it hung)

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """`mode` is `ok` (204), `error` (500) or `hang` (no answer until released)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.requests: list[Received] = []  # every POST, answered or not
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/secret-token"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(length)
                with owner._lock:
                    mode = owner.mode
                    status = {"ok": 204, "error": 500}.get(mode)
                    owner.requests.append(Received(data, dict(self.headers), time.time(), status))
                if status is None:
                    owner._release.wait(HANG_LIMIT_SECONDS)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Go down: the port refuses connections until start() again."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[Received]:
        """The POSTs answered 2xx (made while the mode was ok)."""
        with self._lock:
            return [r for r in self.requests if r.status is not None and r.status < 300]

    def bodies(self) -> list[dict]:
        with self._lock:
            return [r.json for r in self.requests]

    def ids(self) -> set[int]:
        return {b["id"] for b in self.bodies()}
