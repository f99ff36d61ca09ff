"""Redis Sentinel: the primary is killed -9 under two schedulers, two workers and the admin; the
sentinels promote the replica and everything follows it without a restart."""

import httpx
import pytest

from tests.conftest import service_env
from tests.support.admin import start_webadmin
from tests.support.ha import (
    JOB,
    first_success_after,
    now,
    start_cluster,
    stop_firing,
    succeeded_since,
    unsettled,
)
from tests.support.procs import Services
from tests.support.schedulers import assert_every_slot_once, cron_slots, set_cron
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.ha, pytest.mark.timeout(300)]


@pytest.fixture
def ha_services(settings, redis_group, tmp_path):
    env = {**service_env(settings), "REDIS_URL": redis_group.url}
    services = Services(env, tmp_path)
    yield services
    services.stop_all()


def test_fires_follow_a_sentinel_failover_with_nothing_lost_or_doubled(
    engine, redis_group, ha_services
):
    set_cron(engine, "@every 1s")
    start_cluster(ha_services)
    _, admin = start_webadmin(ha_services)
    started = now()
    wait_for(lambda: succeeded_since(engine, started) >= 3, 90, "runs before the failover")

    killed_at = now()
    old = redis_group.kill_primary()
    wait_for(lambda: redis_group.primary() not in (None, old), 30, "the sentinels to promote")
    first = wait_for(lambda: first_success_after(engine, killed_at), 30, "a run after the kill")
    took = (first - killed_at).total_seconds()
    print(f"\nha: redis primary killed -> first succeeded run: {took:.2f}s")
    wait_for(lambda: succeeded_since(engine, first) >= 3, 30, "firing to go on")

    stop_firing(engine)
    wait_for(lambda: not unsettled(engine), 60, "every run to settle")
    assert_every_slot_once(cron_slots(engine))
    # Readiness and "Run now" go to the new primary too.
    ready = httpx.get(f"{admin}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["redis"] == "ok"
    manual = httpx.post(f"{admin}/api/jobs/{JOB}/runs", json={}, timeout=10)
    assert manual.status_code == 202, manual.text
    run_id = manual.json()["id"]
    wait_for(
        lambda: httpx.get(f"{admin}/api/runs/{run_id}", timeout=5).json()["state"] == "succeeded",
        30,
        "the manual run to succeed",
    )
