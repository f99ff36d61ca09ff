"""Helpers for admin tests: an in-process client, a real admin process, CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from starlette.testclient import TestClient

from shared.settings import Settings
from srjobs.dev import free_port
from tests.support.procs import Service, Services
from tests.support.waiting import wait_for
from webadmin.app import create_app

JOB = "refresh_trace_summaries"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def admin_client(settings: Settings, loopback_only: bool = True, **kwargs) -> Iterator[TestClient]:
    """The app in-process with its lifespan running (engine, sending broker)."""
    kwargs.setdefault("base_url", "http://localhost")
    with TestClient(create_app(settings, loopback_only=loopback_only), **kwargs) as client:
        yield client


def csrf_token(client: TestClient | httpx.Client, page: str = f"/jobs/{JOB}") -> str:
    """Load a page (which sets the CSRF cookie) and return the token its forms carry."""
    response = client.get(page)
    assert response.status_code == 200, response.text
    match = TOKEN.search(response.text)
    assert match, "no CSRF token in the page"
    return match.group(1)


def client_from(source: str, base: str, **kwargs) -> httpx.Client:
    """An HTTP client whose connections leave from the local address `source` (127.0.0.2, ...)."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=base, transport=transport, timeout=10, **kwargs)


def start_webadmin(
    services: Services, env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> tuple[Service, str]:
    """A real `srjobs webadmin` process; returns it and its base URL once /healthz answers."""
    port = free_port()
    proc = services.start("webadmin", "webadmin", "--host", host, "--port", str(port), env=env)
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def up() -> bool:
        assert proc.proc.poll() is None, f"webadmin exited:\n{proc.log()}"
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200

    wait_for(up, 30, "the admin to answer /healthz", interval=0.1)
    return proc, base
