"""LOG_FORMAT=json: one JSON object per line with the contract's fields, and no secrets."""

import json

from sqlalchemy import text

from tests.support.logs import wait_event

SECRET = "s3cret-pw"  # trust auth ignores it; it must still never reach a log line


def with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, at_host = rest.split("@", 1)
    return f"{scheme}://{user}:{SECRET}@{at_host}"


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_json_logs_parse_and_hide_the_password(services, settings, engine):
    env = {
        "LOG_FORMAT": "json",
        "DATABASE_URL": with_password(settings.database_url),
        "NODE_NAME": "json-node",
    }
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_schedules SET cron = '@every 1s'"))
    scheduler = services.start("scheduler", "scheduler", env=env)
    wait_event(scheduler, "run_fired", 30, job="refresh_trace_summaries")
    assert scheduler.stop() == 0
    output = scheduler.log()
    assert SECRET not in output
    records = json_lines(output)
    assert records
    for record in records:
        assert {"ts", "level", "service", "node", "event", "message"} <= set(record)
        assert record["service"] == "scheduler" and record["node"] == "json-node"
    fire = next(r for r in records if r["event"] == "run_fired")
    assert fire["job"] == "refresh_trace_summaries" and fire["run_id"] > 0 and fire["slot"]
