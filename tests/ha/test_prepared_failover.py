"""A leader killed (-9) after preparing a fire and before its slot: the next leader sends it
once, not before the slot, and no slot is lost or fired twice."""

import signal
import time

import pytest

from scheduler.sending import ORPHAN_AFTER_SECONDS
from tests.support.runs import broker_copies, get
from tests.support.schedulers import (
    assert_every_slot_once,
    cron_slots,
    lock_holder,
    prepared,
    set_cron,
    start_scheduler,
    waiting_for_lock,
)
from tests.support.waiting import wait_for

# With the failover proofs (`make test-ha`): it waits out the 10 s adoption margin.
pytestmark = [pytest.mark.ha, pytest.mark.timeout(120)]


def test_a_run_prepared_by_a_killed_leader_is_sent_once_by_the_next_not_before_its_slot(
    services, engine, settings
):
    set_cron(engine, "@every 1s")
    a = start_scheduler(services, "node-a")
    wait_for(lambda: lock_holder(engine) == "node-a", 30, "node-a to lead")
    start_scheduler(services, "node-b")
    wait_for(lambda: waiting_for_lock(engine, "node-b"), 30, "node-b to wait for the lock")
    wait_for(lambda: len(cron_slots(engine)) >= 2, 20, "fires by node-a")

    run_id, slot = wait_for(lambda: prepared(engine), 10, "a fire prepared ahead", 0.005)
    a.signal(signal.SIGKILL)
    killed_at = time.time()
    a.proc.wait(10)
    assert killed_at < slot.timestamp(), "killed after the slot: the test missed its window"
    assert broker_copies(settings, run_id) == []

    wait_for(lambda: lock_holder(engine) == "node-b", 10, "node-b to take over")
    sent = wait_for(
        lambda: (r := get(engine, run_id)).state != "pending" and r,
        ORPHAN_AFTER_SECONDS + 15,
        "the next leader to send the prepared run",
    )
    assert sent.state == "enqueued" and sent.enqueued_at >= slot
    assert len(broker_copies(settings, run_id)) == 1
    wait_for(lambda: cron_slots(engine)[-1].timestamp() > slot.timestamp() + 2, 10, "node-b")
    assert_every_slot_once(cron_slots(engine))
