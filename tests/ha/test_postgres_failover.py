"""Postgres with a streaming replica: the primary is killed -9 under two schedulers, two workers
and the admin, the replica is promoted, and srjobs follows DATABASE_URL's host list to it.

Synchronous replication: no commit is lost, so no slot fires twice. Asynchronous: the last
commits before the crash may be lost (a slot whose run record was lost fires again); firing
resumes and every run the new primary knows settles."""

import httpx
import pytest

from shared.db import make_engine
from tests.conftest import flush_namespace, make_settings, service_env
from tests.support.admin import start_webadmin
from tests.support.ha import (
    JOB,
    PostgresPair,
    first_success_after,
    now,
    postgres_pair_available,
    run_ids,
    start_cluster,
    stop_firing,
    succeeded_since,
    unsettled,
)
from tests.support.logs import events, ts
from tests.support.procs import Services
from tests.support.schedulers import cron_slots, lock_holder, set_cron, stored_jobs
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.ha,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not postgres_pair_available(), reason="no pg_basebackup or runuser"),
]


@pytest.fixture(params=["synchronous", "asynchronous"])
def pair(request):
    server = PostgresPair(synchronous=request.param == "synchronous")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def ha_settings(pair):
    settings = make_settings(pair.url)
    yield settings
    flush_namespace(settings)


@pytest.fixture
def ha_services(ha_settings, tmp_path):
    services = Services(service_env(ha_settings), tmp_path)
    yield services
    services.stop_all()


def test_firing_follows_a_promoted_replica(pair, ha_settings, ha_services):
    migrated = ha_services.run("migrate")  # creates the database through the host list
    assert migrated.returncode == 0, migrated.stderr
    engine = make_engine(ha_settings)  # pre-ping: follows the host list to the new primary
    try:
        set_cron(engine, "@every 1s")
        schedulers = start_cluster(ha_services)[:2]
        _, admin = start_webadmin(ha_services)
        started = now()
        wait_for(lambda: succeeded_since(engine, started) >= 3, 90, "runs before the failover")

        killed_at = now()
        pair.kill_primary()
        pair.promote()
        promoted_at = now()
        first = wait_for(lambda: first_success_after(engine, killed_at), 60, "a run after it")
        print(
            f"\nha: postgres ({'sync' if pair.synchronous else 'async'}) primary killed ->"
            f" first succeeded run: {(first - killed_at).total_seconds():.2f}s"
            f" ({(first - promoted_at).total_seconds():.2f}s after the promotion)"
        )
        wait_for(lambda: succeeded_since(engine, first) >= 3, 30, "firing to go on")
        # The leader holds its lock on the new primary; its listener is connected again: a
        # schedule change reaches it at once (the periodic reconcile is a minute away).
        assert lock_holder(engine) in ("ha-scheduler-a", "ha-scheduler-b")
        set_cron(engine, "@every 2s")
        wait_for(lambda: stored_jobs(engine)[JOB][0] == "@every 2s", 10, "the change to arrive")
        # The admin answers from the new primary.
        wait_for(lambda: httpx.get(f"{admin}/readyz", timeout=5).status_code == 200, 30, "readyz")
        assert httpx.get(f"{admin}/api/jobs/{JOB}", timeout=5).json()["cron"] == "@every 2s"

        stop_firing(engine)
        wait_for(lambda: not unsettled(engine), 90, "every run to settle")
        slots = cron_slots(engine)
        assert len(slots) == len(set(slots)), "a slot has two runs"
        # Runs the leader recorded as handed to the broker before the kill (committed):
        acknowledged = {
            run_id
            for proc in schedulers
            for record in events(proc)
            if ts(record) < killed_at.timestamp()
            for run_id in record.get("run_ids", [])
        }
        assert acknowledged
        lost = acknowledged - run_ids(engine)
        print(f"ha: {len(lost)} of {len(acknowledged)} committed runs lost in the failover")
        if pair.synchronous:
            # No commit is lost, so no slot's run is recorded again: each slot ran once.
            assert not lost
    finally:
        engine.dispose()
