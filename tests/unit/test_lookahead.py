"""Which slots a pass prepares ahead, when the next pass wakes, the outbox's held runs."""

import threading
from datetime import UTC, datetime, timedelta

from scheduler.held import Handover, Held, held_first
from scheduler.lookahead import LOOKAHEAD_SECONDS, horizon, slots_taken, wake_in

NOW = datetime(2026, 1, 1, 12, 0, 30, 700000, tzinfo=UTC)
S = timedelta(seconds=1)
SLOT = datetime(2026, 1, 1, 12, 0, 31, tzinfo=UTC)  # 0.3 s after NOW


def test_a_slot_within_the_lookahead_is_taken_ahead():
    assert horizon(NOW) == NOW + timedelta(seconds=LOOKAHEAD_SECONDS)
    assert slots_taken([SLOT], NOW) == [SLOT]


def test_slots_past_are_taken_as_before_and_a_slot_to_come_waits_for_the_next_pass():
    missed = [SLOT - 3 * S, SLOT - 2 * S, SLOT - S]
    # The missed slots go to the executor, which coalesces them into the newest: the slot to
    # come is not folded into them (it fires at its own time, prepared by the next pass).
    assert slots_taken([*missed, SLOT], NOW) == missed
    assert slots_taken(missed, NOW) == missed


def test_only_the_first_slot_to_come_is_taken():
    assert slots_taken([SLOT, SLOT + timedelta(milliseconds=100)], NOW) == [SLOT]
    assert slots_taken([NOW], NOW) == [NOW]  # a slot due right now is past, not ahead


def test_the_next_pass_wakes_the_lookahead_before_the_next_run():
    assert wake_in(None, NOW) is None
    assert wake_in(SLOT + S, NOW) == (SLOT + S - NOW).total_seconds() - LOOKAHEAD_SECONDS
    assert wake_in(SLOT, NOW) == 0.0  # already within the lookahead: at once
    assert wake_in(SLOT - S, NOW) == 0.0


def held(at: float | None) -> Handover:
    return Handover([], threading.Event(), at)


def test_held_runs_come_out_oldest_slot_first():
    runs = Held()
    assert not runs and runs.seconds_until(100.0, 0.02) is None
    later, sooner = held(105.0), held(101.0)
    runs.add(later)
    runs.add(sooner)
    assert runs.seconds_until(100.0, 0.5) == 0.5
    assert runs.pop() is sooner and runs.pop() is later and not runs
    runs.add(held(1.0))
    assert runs.clear() == 0 and not runs


def test_the_outbox_sends_a_held_slot_before_a_resend_pass_that_would_crowd_it():
    # The slot's lock check in 0.5 s, the pass in 0.1 s: the pass has 0.4 s, it goes first.
    assert not held_first(0.5, 0.1, clearance=0.25)
    # The pass would start 0.2 s before the lock check: it waits until after the send.
    assert held_first(0.3, 0.1, clearance=0.25)
    # A pass overdue (the last send took long) still yields to a slot due within the clearance.
    assert held_first(-0.01, -0.5, clearance=0.25)
    assert held_first(0.2, -0.5, clearance=0.25)
    assert not held_first(0.3, -0.5, clearance=0.25)
