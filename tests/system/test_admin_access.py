"""Roles and sign-on against the admin as a real process, over real HTTP connections."""

import base64
import re
import socket

import httpx
import pytest
from sqlalchemy import text
from starlette.routing import Mount, Route

from shared import audit, runs
from shared.settings import Settings
from tests.support.admin import JOB, client_from, free_port, start_webadmin
from tests.support.logs import events
from webadmin.app import create_app
from webadmin.auth import READ_METHODS
from webadmin.security import CSRF_COOKIE

pytestmark = pytest.mark.system

ADMIN_PW = "adm-Pw-7f3e1c"
VIEWER_PW = "view-Pw-2b9d44"
WRONG = ("wrong-Zq81x", "wrong-Kv02y")
BASIC = {
    "ADMIN_USER": "ops",
    "ADMIN_PASSWORD": ADMIN_PW,
    "VIEWER_PASSWORD": VIEWER_PW,
    "LOG_FORMAT": "json",
}
PROXY = {
    "SRJOBS_AUTH_PROXY_HEADER": "X-Forwarded-User",
    "SRJOBS_AUTH_PROXY_FROM": "127.0.0.1",
    "SRJOBS_VIEWERS": "bob@example.com",
    "ADMIN_PASSWORD": ADMIN_PW,
    "LOG_FORMAT": "json",
}
MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PARAM = re.compile(r"{(\w+)(?::\w+)?}")
ACTIONS = re.compile(r"<form|<button", re.IGNORECASE)


def snapshot(engine) -> tuple:
    """Every row a mutation could touch."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(text(query)).all()
            for query in (
                "SELECT * FROM job_schedules ORDER BY name",
                "SELECT * FROM job_runs ORDER BY id",
                "SELECT * FROM audit_log ORDER BY id",
            )
        )


def last_who(engine) -> str:
    with engine.connect() as conn:
        return audit.list_for_job(conn, JOB)[0].who


def finished_run(engine) -> int:
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, JOB)
        runs.start_run(conn, run.id, 1, "w1")
        runs.mark_finished(conn, run.id, "succeeded")
    return run.id


def assert_read_only_page(answer: httpx.Response, user: str) -> None:
    assert answer.status_code == 200, answer.text
    assert not ACTIONS.search(answer.text), "a viewer's page holds a form or a button"
    assert 'data-role="viewer"' in answer.text and f'data-user="{user}"' in answer.text


def test_a_viewer_reads_every_page_and_changes_nothing(services, engine):
    admin, base = start_webadmin(services, BASIC)
    run_id = finished_run(engine)
    before = snapshot(engine)
    with httpx.Client(base_url=base, auth=("viewer", VIEWER_PW), timeout=10) as viewer:
        assert viewer.get("/api/jobs").json()[0]["name"] == JOB
        assert viewer.get(f"/api/runs/{run_id}").status_code == 200
        for page in ("/jobs", f"/jobs/{JOB}", "/runs", f"/runs/{run_id}", "/scheduler"):
            assert_read_only_page(viewer.get(page), "viewer")
        for fragment in ("/fragments/jobs", f"/fragments/jobs/{JOB}/runs", "/fragments/runs"):
            answer = viewer.get(fragment)
            assert answer.status_code == 200 and not ACTIONS.search(answer.text)
        job_page = viewer.get(f"/jobs/{JOB}").text
        assert job_page.count("<li><time") == 5  # the schedule's next fire times, read-only
        assert "(read-only)" in job_page

        for answer in (
            viewer.patch(f"/api/jobs/{JOB}", json={"cron": "@hourly"}),
            viewer.post(f"/api/jobs/{JOB}/runs", json={}),
        ):
            assert answer.status_code == 403 and answer.json()["error"]
        # The page set a genuine CSRF token; the viewer's form posts are still refused.
        token = viewer.cookies[CSRF_COOKIE]
        form = {"csrf_token": token, "cron": "@hourly", "timezone": "UTC", "enabled": "on"}
        assert viewer.post(f"/jobs/{JOB}/schedule", data=form).status_code == 403
        assert viewer.post(f"/jobs/{JOB}/run", data={"csrf_token": token}).status_code == 403
    assert snapshot(engine) == before

    for user, password in [
        ("viewer", WRONG[0]),
        ("ops", WRONG[1]),
        ("ops", VIEWER_PW),
        ("viewer", ADMIN_PW),
        ("admin", ADMIN_PW),
    ]:
        answer = httpx.get(f"{base}/api/jobs", auth=(user, password), timeout=10)
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic")
        answer = httpx.patch(
            f"{base}/api/jobs/{JOB}", json={"cron": "@hourly"}, auth=(user, password)
        )
        assert answer.status_code == 401
    assert snapshot(engine) == before

    # The same token works for full access: it was valid, the role refused the viewer.
    with httpx.Client(
        base_url=base, auth=("ops", ADMIN_PW), cookies={CSRF_COOKIE: token}, timeout=10
    ) as ops:
        page = ops.get(f"/jobs/{JOB}").text
        assert 'data-role="admin"' in page and 'data-user="ops"' in page
        assert 'id="schedule-form"' in page and "data-run-now" in page
        saved = ops.post(f"/jobs/{JOB}/schedule", data=form, follow_redirects=False)
        assert saved.status_code == 303
    assert last_who(engine) == "ops"

    refused = events(admin, "access_refused")
    reasons = {(e["reason"], e["user"]) for e in refused}
    assert ("read_only", "viewer") in reasons and ("bad_credentials", None) in reasons
    log = admin.log()
    for secret in (ADMIN_PW, VIEWER_PW, *WRONG):
        assert secret not in log
    for user, password in [("viewer", VIEWER_PW), ("ops", ADMIN_PW), ("viewer", WRONG[0])]:
        assert base64.b64encode(f"{user}:{password}".encode()).decode() not in log


def concrete(path: str, values: dict[str, str]) -> str:
    """A route's path with its parameters filled in (`1` for any the test does not know)."""
    return PARAM.sub(lambda m: values.get(m.group(1), "1"), path)


def test_a_viewer_reaches_no_mutation_on_any_route(services, engine):
    """Walks every route of the app, so routes added later are covered as they come."""
    admin, base = start_webadmin(services, BASIC)
    values = {"name": JOB, "id": str(finished_run(engine))}
    before = snapshot(engine)
    sent: set[tuple[str, str]] = set()
    with httpx.Client(base_url=base, auth=("viewer", VIEWER_PW), timeout=10) as viewer:
        viewer.get(f"/jobs/{JOB}")
        token = viewer.cookies[CSRF_COOKIE]
        for route in create_app(Settings()).routes:
            if isinstance(route, Mount):
                path, methods = f"{route.path}/app.css", set(MUTATIONS)
            else:
                assert isinstance(route, Route)
                path = concrete(route.path, values)
                methods = set(route.methods or ()) | MUTATIONS
            for method in sorted(methods - READ_METHODS):
                if path == "/healthz":
                    continue  # open to probes; it has no mutation
                as_json = viewer.request(method, path, json={})
                as_form = viewer.request(method, path, data={"csrf_token": token})
                for answer in (as_json, as_form):
                    assert answer.status_code == 403, (method, path, answer.text)
                    assert answer.json()["error"]
                sent.add((method, path))
            if "GET" in methods:
                answer = viewer.get(path)
                assert answer.status_code < 500, path
                if answer.headers.get("content-type", "").startswith("text/html"):
                    assert not ACTIONS.search(answer.text), path
    assert len(sent) > 20
    assert snapshot(engine) == before
    refused = {(e["method"], e["path"]) for e in events(admin, "access_refused")}
    assert sent <= refused  # refused by the role table, not by CSRF or a missing route


def test_sign_on_header_counts_only_from_the_proxy_address(services, engine):
    admin, base = start_webadmin(services, PROXY)
    # oauth2-proxy passes the client's address on in X-Forwarded-For: trust is the peer's.
    alice = {"X-Forwarded-User": "alice@example.com", "X-Forwarded-For": "203.0.113.7"}
    bob = {"X-Forwarded-User": "Bob@Example.com"}
    with client_from("127.0.0.1", base) as proxy, client_from("127.0.0.2", base) as outsider:
        page = proxy.get(f"/jobs/{JOB}", headers=alice)
        assert page.status_code == 200 and 'data-user="alice@example.com"' in page.text
        assert 'data-role="admin"' in page.text and 'id="schedule-form"' in page.text
        assert proxy.patch(f"/api/jobs/{JOB}", json={"cron": "@hourly"}, headers=alice).is_success
        assert last_who(engine) == "alice@example.com"

        assert_read_only_page(proxy.get(f"/jobs/{JOB}", headers=bob), "Bob@Example.com")
        before = snapshot(engine)
        assert (
            proxy.patch(f"/api/jobs/{JOB}", json={"cron": "@daily"}, headers=bob).status_code == 403
        )

        # From any other address the header is ignored: Basic credentials or nothing.
        spoofed = {**alice, "X-Forwarded-For": "127.0.0.1"}
        for headers in (alice, spoofed):
            assert outsider.get("/api/jobs", headers=headers).status_code == 401
            answer = outsider.patch(f"/api/jobs/{JOB}", json={"cron": "@daily"}, headers=headers)
            assert answer.status_code == 401
        assert outsider.get("/api/jobs", auth=("admin", "nope"), headers=alice).status_code == 401

        # Refused from the proxy itself: an empty name, a list, two header lines.
        for headers in (
            {"X-Forwarded-User": ""},
            {"X-Forwarded-User": "alice@example.com, mallory"},
            [("X-Forwarded-User", "alice@example.com"), ("X-Forwarded-User", "mallory")],
        ):
            answer = proxy.patch(f"/api/jobs/{JOB}", json={"cron": "@daily"}, headers=headers)
            assert answer.status_code == 403 and answer.json()["error"]
            assert proxy.get("/jobs", headers=headers).status_code == 403
        assert snapshot(engine) == before

        with_basic = outsider.patch(
            f"/api/jobs/{JOB}", json={"enabled": False}, headers=alice, auth=("admin", ADMIN_PW)
        )
        assert with_basic.status_code == 200
    assert last_who(engine) == "admin"  # the Basic user, never the ignored header
    ignored = events(admin, "proxy_header_ignored")
    assert ignored and {e["client"] for e in ignored} == {"127.0.0.2"}
    invalid = [e for e in events(admin, "access_refused") if e["reason"] == "proxy_header_invalid"]
    assert {e["client"] for e in invalid} == {"127.0.0.1"}
    assert ADMIN_PW not in admin.log()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_sign_on_over_ipv6(services, engine):
    env = {**PROXY, "SRJOBS_AUTH_PROXY_FROM": "::1/128", "SRJOBS_VIEWERS": ""}
    _, base = start_webadmin(services, env, host="::1")
    with httpx.Client(base_url=base, timeout=10) as proxy:
        carol = {"X-Forwarded-User": "carol"}
        assert proxy.patch(f"/api/jobs/{JOB}", json={"cron": "@hourly"}, headers=carol).is_success
        assert proxy.get("/api/jobs").status_code == 401
    assert last_who(engine) == "carol"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({**PROXY, "SRJOBS_AUTH_PROXY_FROM": "127.0.0.0/40"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY, "SRJOBS_AUTH_PROXY_FROM": "fe80::zz"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY, "SRJOBS_AUTH_PROXY_HEADER": "X User"}, "SRJOBS_AUTH_PROXY_HEADER"),
        ({"SRJOBS_AUTH_PROXY_HEADER": "X-Forwarded-User"}, "SRJOBS_AUTH_PROXY_FROM"),
    ],
)
def test_bad_access_settings_stop_the_admin(services, env, name):
    done = services.run("webadmin", "--port", str(free_port()), env=env, timeout=60)
    assert done.returncode != 0
    assert name in done.stderr and "Traceback" not in done.stderr
