"""Acting on a stop signal without waiting for a lock the interrupted code holds."""

from __future__ import annotations

import threading
from collections.abc import Callable


def act_soon(action: Callable[[], object]) -> None:
    """Run `action` (setting an Event, waking a wait) on a short thread of its own.

    A Python signal handler runs in the main thread between two bytecodes, possibly while that
    thread holds the lock `action` needs (an Event's, on its way into or out of `wait`): done in
    the handler itself, it would wait for that lock forever.
    """
    threading.Thread(target=action, name="srjobs-signal", daemon=True).start()
