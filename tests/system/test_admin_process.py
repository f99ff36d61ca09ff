"""The admin as a real process: concurrent "Run now", drain on SIGTERM, API fuzzing."""

import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import text

from shared import runs
from tests.support.admin import JOB, start_webadmin
from tests.support.logs import wait_event
from tests.support.waiting import wait_for

pytestmark = pytest.mark.system
CLICKS = 50


def test_fifty_concurrent_run_now_make_one_run_then_sigterm_drains(services, engine):
    admin, base = start_webadmin(services, env={"LOG_FORMAT": "json"})
    barrier = threading.Barrier(CLICKS, timeout=20)

    def click(_: int) -> httpx.Response:
        with httpx.Client(base_url=base, timeout=30) as client:
            barrier.wait()
            return client.post(f"/api/jobs/{JOB}/runs", json={})

    with ThreadPoolExecutor(CLICKS) as pool:
        answers = list(pool.map(click, range(CLICKS)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * (CLICKS - 1), codes
    created = next(a.json() for a in answers if a.status_code == 202)
    assert {a.json()["run"]["id"] for a in answers if a.status_code == 409} == {created["id"]}
    with engine.connect() as conn:
        assert [r.id for r in runs.list_runs(conn, JOB)] == [created["id"]]

    started = time.monotonic()
    admin.signal(signal.SIGTERM)
    code = admin.proc.wait(10)
    assert time.monotonic() - started < 10
    # uvicorn re-raises the signal once it has drained, so the exit status may say SIGTERM.
    assert code in (0, -signal.SIGTERM), admin.log()
    wait_event(admin, "admin_stopped", 5)  # the lifespan closed its engine, broker and client


def refuses(base: str) -> bool:
    """True once nothing listens on the admin's port any more (it is shutting down)."""
    host, port = base.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), 1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_lets_a_request_in_flight_finish(services, engine):
    """A "Run now" blocked on its job's lock when SIGTERM arrives still gets its answer."""
    admin, base = start_webadmin(services)
    blocker = engine.connect()
    blocker.execute(
        text("SELECT pg_advisory_xact_lock(:cls, hashtext(:name))"),
        {"cls": runs.MANUAL_LOCK_CLASS, "name": JOB},
    )
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            lambda: httpx.post(f"{base}/api/jobs/{JOB}/runs", json={}, timeout=20)
        )
        wait_for(lambda: lock_waiters(engine) == 1, 10, "the request to wait for the job lock")
        admin.signal(signal.SIGTERM)
        wait_for(lambda: refuses(base), 10, "the admin to stop accepting connections")
        assert admin.proc.poll() is None  # still draining
        blocker.rollback()
        blocker.close()
        answer = pending.result(timeout=15)
    assert answer.status_code == 202, answer.text
    assert admin.proc.wait(10) in (0, -signal.SIGTERM)


def lock_waiters(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                " AND datname = current_database()"
            )
        ).scalar()


@pytest.mark.timeout(360)  # a fixed number of examples: its run time grows with the load
def test_openapi_fuzzing_finds_no_server_error(services):
    _, base = start_webadmin(services)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    seen: dict[str, set[int]] = {}

    for operation in operations:
        # Random names rarely hit a job: fuzz with the real job's name too, and negative data.
        fixed = {"name": JOB} if "{name}" in operation.path else None
        strategy = st.one_of(
            operation.as_strategy(),
            operation.as_strategy(path_parameters=fixed),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=strategy)
        @hypothesis_settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case) -> None:
            response = case.call(base_url=base, timeout=10)
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        exercise()
    assert all(code < 500 for codes in seen.values() for code in codes), seen
    assert len(seen) == len(operations)
    for label in (
        "POST /api/jobs",
        "DELETE /api/jobs/{name}",
        "GET /api/actors",
        "GET /api/runs",
        "POST /api/runs/{id}/cancel",
        "POST /api/runs/{id}/retry",
    ):
        assert label in seen, sorted(seen)
