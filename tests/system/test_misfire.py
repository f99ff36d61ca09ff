"""Misfires: a new leader after a gap fires the newest missed slot once; older ones are
skipped (coalesced, or beyond the grace) and logged."""

import signal
import time
from datetime import timedelta

from tests.support.logs import wait_event
from tests.support.schedulers import cron_slots, set_cron, start_scheduler
from tests.support.waiting import wait_for

ONE = timedelta(seconds=1)


def stop_after_fires(engine, service, count):
    wait_for(lambda: len(cron_slots(engine)) >= count, 30, f"{count} fires")
    service.signal(signal.SIGTERM)
    assert service.proc.wait(10) == 0
    last = cron_slots(engine)[-1]
    # The gap: let at least three slots pass with no scheduler running.
    wait_for(lambda: time.time() > last.timestamp() + 3.5, 10, "a gap of three slots")
    return last


def test_a_new_leader_catches_up_the_newest_missed_slot_once(services, engine):
    set_cron(engine, "@every 1s")
    last = stop_after_fires(engine, start_scheduler(services, "node-a"), 2)

    b = start_scheduler(services, "node-b")
    caught = wait_for(lambda: [s for s in cron_slots(engine) if s > last], 30, "a catch-up")[0]
    assert caught - last >= 3 * ONE  # the slots of the gap were coalesced into one fire
    coalesced = wait_event(b, "slot_coalesced", 5, slot=caught.isoformat())
    assert coalesced["first_missed"] == (last + ONE).isoformat()
    assert coalesced["slot"] == caught.isoformat()
    last = stop_after_fires(engine, b, len(cron_slots(engine)) + 2)

    # With a 1 s grace the stored next run (the gap's first slot) is too old: skipped, logged.
    c = start_scheduler(services, "node-c", SRJOBS_MISFIRE_GRACE_SECONDS="1")
    caught = wait_for(lambda: [s for s in cron_slots(engine) if s > last], 30, "a fire")[0]
    skipped = wait_event(c, "slots_skipped", 5, job="refresh_trace_summaries")
    assert skipped["first_skipped"] == (last + ONE).isoformat()
    assert caught - last >= 3 * ONE
    slots = cron_slots(engine)
    assert len(slots) == len(set(slots))
