"""A Postgres restart under a running leader: it steps down, recovers and keeps firing."""

import time

import pytest
from sqlalchemy import create_engine

from shared.db import sqlalchemy_url
from tests.support.logs import events
from tests.support.schedulers import cron_slots, set_cron, start_scheduler
from tests.support.throwaway import throwaway_postgres
from tests.support.waiting import wait_for


@pytest.fixture
def own_postgres():
    with throwaway_postgres() as server:
        yield server


def test_the_leader_keeps_firing_across_a_postgres_restart(own_postgres, services):
    url = own_postgres.admin_url.rsplit("/", 1)[0] + "/srjobs"
    env = {"DATABASE_URL": url}
    migrated = services.run("migrate", env=env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    engine = create_engine(sqlalchemy_url(url), pool_pre_ping=True)
    try:
        set_cron(engine, "@every 1s")
        leader = start_scheduler(services, "node-a", **env)
        wait_for(lambda: len(cron_slots(engine)) >= 2, 30, "fires before the restart")

        restarted_at = time.time()
        own_postgres.restart()
        wait_for(
            lambda: sum(s.timestamp() > restarted_at + 1 for s in cron_slots(engine)) >= 2,
            30,
            "fires after the restart",
        )
        assert events(leader, "leader_stepped_down")
        wait_for(lambda: len(events(leader, "leader_ready")) >= 2, 10, "a second term")
        slots = cron_slots(engine)
        assert len(slots) == len(set(slots))
    finally:
        engine.dispose()
