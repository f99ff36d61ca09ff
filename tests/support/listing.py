"""Schedules of every kind with random histories: what the jobs list is compared on."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from sqlalchemy import text

from tests.support.admin import JOB

CRONS = ["0 0 1 1 *", "@yearly", "30 4 * * 1", "@every 7h", "not a cron"]
ZONES = ["UTC", "Europe/Paris", "Asia/Kolkata", "America/Sao_Paulo"]
STATES = ["pending", "enqueued", "running", "succeeded", "failed", "discarded"]


def add_jobs(engine, names: list[str], rng: random.Random) -> None:
    """Schedules of every kind (an unreadable one too), with random histories."""
    with engine.begin() as conn:
        actor = conn.execute(
            text("SELECT actor FROM job_schedules WHERE name = :n"), {"n": JOB}
        ).scalar_one()
        for name in names:
            conn.execute(
                text(
                    "INSERT INTO job_schedules (name, actor, cron, timezone, enabled, args,"
                    " stale_after_seconds) VALUES (:n, :a, :c, :z, :e, CAST(:args AS jsonb), :s)"
                ),
                {
                    "n": name,
                    "a": actor,
                    "c": rng.choice(CRONS),
                    "z": rng.choice(ZONES),
                    "e": rng.random() < 0.8,
                    "args": json.dumps(rng.choice([{}, {"k": "é日", "n": [1, 2.5, None]}])),
                    "s": rng.choice([None, 60, 86400]),
                },
            )
            for _ in range(rng.randrange(0, 6)):
                state = rng.choice(STATES)
                ago = timedelta(seconds=rng.randrange(1, 10_000), microseconds=rng.choice([0, 7]))
                conn.execute(
                    text(
                        "INSERT INTO job_runs (job_name, trigger, state, started_at, finished_at,"
                        " attempt, error, enqueued_at, args)"
                        " VALUES (:n, 'manual', :state, now() - :ago, CASE WHEN :state IN"
                        " ('succeeded', 'failed', 'discarded') THEN now() - :ago / 2 END,"
                        " 1, :error, now() - :ago, CAST(:args AS jsonb))"
                    ),
                    {
                        "n": name,
                        "state": state,
                        "ago": ago,
                        "error": rng.choice([None, "boom", "cancelled by admin"]),
                        "args": json.dumps(rng.choice([{}, {"x": 2**40}])),
                    },
                )
