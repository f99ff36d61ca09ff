"""What the executor hands the outbox, and the runs the outbox holds until their slot."""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field

from shared.bulk_enqueue import Packed
from shared.runs import Run


@dataclass(frozen=True)
class Outgoing:
    run: Run
    actor: str
    queue: str
    handed_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class Handover:
    """One pass's runs (of one slot to come, or of slots past), and the signal that they
    were sent (or left pending)."""

    runs: list[Outgoing]
    done: threading.Event
    not_before: float | None = None  # epoch seconds: the slot, for runs prepared ahead
    packed: list[Packed] = field(default_factory=list)  # encoded ahead by the outbox, per chunk


def held_first(held_in: float, pass_in: float, clearance: float) -> bool:
    """Whether the outbox's next step is a held slot's send rather than its re-send pass: the
    slot's lock check comes first, or the pass (overdue: now) would start less than
    `clearance` seconds before it (a pass's queries must not delay the slot; the pass follows
    the send)."""
    return held_in < max(pass_in, 0.0) + clearance


class Held:
    """Handovers prepared ahead, oldest slot first (used by the outbox's thread only)."""

    def __init__(self) -> None:
        self._items: list[Handover] = []

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(self, handover: Handover) -> None:
        bisect.insort(self._items, handover, key=lambda h: h.not_before or 0.0)

    def seconds_until(self, now: float, lead: float) -> float | None:
        """Seconds from `now` (epoch) to `lead` before the oldest held slot; None: nothing held."""
        if not self._items:
            return None
        return (self._items[0].not_before or 0.0) - lead - now

    def pop(self) -> Handover:
        """The handover of the oldest slot, no longer held."""
        return self._items.pop(0)

    def clear(self) -> int:
        """Drop every held handover (their runs stay pending); how many runs they held."""
        dropped = sum(len(h.runs) for h in self._items)
        self._items.clear()
        return dropped
