"""Middleware: a SIGTERM that reaches a worker process twice counts once."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

from dramatiq import Broker, Middleware

ECHO_SECONDS = 2.0


def debounce_sigterm(window: float = ECHO_SECONDS) -> None:
    """Ignore a SIGTERM repeated within `window` seconds of the first.

    A SIGTERM sent to the whole process group (systemd, a terminal, `kill -- -PGID`) reaches a
    worker process twice: directly, and forwarded by Dramatiq's parent. Dramatiq reads a
    second SIGTERM as "kill now", which would skip the graceful stop; a later one still does.
    """
    original = signal.getsignal(signal.SIGTERM)
    if not callable(original) or threading.current_thread() is not threading.main_thread():
        return
    first: float | None = None

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal first
        now = time.monotonic()
        if first is not None and now - first < window:
            return
        first = first or now
        original(signum, frame)

    signal.signal(signal.SIGTERM, handler)


class SigtermDebounce(Middleware):
    """Wraps the SIGTERM handler Dramatiq installed in each worker process."""

    def after_process_boot(self, broker: Broker) -> None:
        debounce_sigterm()
