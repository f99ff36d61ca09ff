"""Access settings and the auth decisions: who a request is and what its role allows."""

import base64
import ipaddress

import pytest
from starlette.datastructures import Headers
from starlette.routing import Mount, Route

from shared.errors import ConfigError
from shared.settings import Settings
from webadmin.app import create_app
from webadmin.auth import (
    OPEN,
    READ_METHODS,
    Identity,
    Refusal,
    Role,
    authorize,
    identify,
    required_role,
    trusted,
)

PROXY_ENV = {
    "SRJOBS_AUTH_PROXY_HEADER": "X-Forwarded-User",
    "SRJOBS_AUTH_PROXY_FROM": "127.0.0.1, 10.1.0.0/16, ::1, fd00:1::/64",
    "SRJOBS_VIEWERS": "Bob@Example.com, carol",
}
MUTATIONS = ("POST", "PUT", "PATCH", "DELETE")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def who(settings: Settings, client: str | None, headers: dict | list) -> Identity | Refusal:
    raw = (
        [(k.lower().encode(), v.encode()) for k, v in headers]
        if isinstance(headers, list)
        else [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    )
    return identify(settings, client, Headers(raw=raw))


def test_access_settings_are_read_and_default_to_off():
    off = Settings.from_env({})
    assert off.viewer_user == "viewer" and off.viewer_password is None
    assert off.auth_proxy_header is None and off.auth_proxy_from == () and off.viewers == set()
    s = Settings.from_env({**PROXY_ENV, "VIEWER_PASSWORD": "look-only", "VIEWER_USER": "oncall"})
    assert (s.viewer_user, s.viewer_password) == ("oncall", "look-only")
    assert s.auth_proxy_header == "x-forwarded-user"
    assert s.auth_proxy_from == tuple(
        ipaddress.ip_network(n) for n in ("127.0.0.1", "10.1.0.0/16", "::1", "fd00:1::/64")
    )
    assert s.viewers == {"bob@example.com", "carol"}
    assert "look-only" not in repr(s)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_FROM": "10.0.0.300"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_FROM": "10.0.0.0/33"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_FROM": "10.0.0.1/8"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_FROM": "fd00::/129"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_FROM": "proxy.internal"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_FROM": "0.0.0.0/0"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_FROM": "::/0"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_HEADER": "X Forwarded User"}, "SRJOBS_AUTH_PROXY_HEADER"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_HEADER": "X-User:"}, "SRJOBS_AUTH_PROXY_HEADER"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_HEADER": "Authorization"}, "SRJOBS_AUTH_PROXY_HEADER"),
        ({**PROXY_ENV, "SRJOBS_AUTH_PROXY_HEADER": "cookie"}, "SRJOBS_AUTH_PROXY_HEADER"),
        ({"SRJOBS_AUTH_PROXY_HEADER": "X-Forwarded-User"}, "SRJOBS_AUTH_PROXY_FROM"),
        ({"SRJOBS_AUTH_PROXY_FROM": "127.0.0.1"}, "SRJOBS_AUTH_PROXY_HEADER"),
        ({"SRJOBS_VIEWERS": "bob"}, "SRJOBS_VIEWERS"),
        ({"VIEWER_PASSWORD": "x", "VIEWER_USER": "admin"}, "VIEWER_USER"),
        ({"VIEWER_PASSWORD": "x", "VIEWER_USER": "ops", "ADMIN_USER": "ops"}, "VIEWER_USER"),
    ],
)
def test_bad_access_settings_fail_naming_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_the_table_lets_viewers_read_and_keeps_every_mutation_for_full_access():
    assert required_role("GET", "/healthz") is None
    assert required_role("POST", "/healthz") is None  # 405 from the route, nothing to protect
    for method in READ_METHODS:
        assert required_role(method, "/api/jobs") is Role.READ
    for method in (*MUTATIONS, "TRACE", "PROPFIND"):
        assert required_role(method, "/api/jobs") is Role.FULL
        assert required_role(method, "/some/future/route") is Role.FULL


def test_every_route_of_the_app_keeps_its_mutations_from_viewers():
    """Walks the real route list, so a route added later is covered without editing this."""
    app = create_app(Settings())
    seen = 0
    for route in app.routes:
        if isinstance(route, Mount):
            methods = set(MUTATIONS)
        else:
            assert isinstance(route, Route)
            methods = set(route.methods or ()) | set(MUTATIONS)
        for method in methods:
            role = required_role(method, route.path)
            if method in READ_METHODS:
                assert role in (None, Role.READ), (method, route.path)
            elif route.path != "/healthz":
                assert role is Role.FULL, (method, route.path)
                assert authorize(Identity("v", Role.READ, "basic"), role) is not None
                seen += 1
    assert seen > 4 * 20


def test_without_credentials_configured_everyone_has_full_access():
    assert who(Settings(), "203.0.113.5", {}) == OPEN
    assert who(Settings(), None, {"x-forwarded-user": "mallory"}) == OPEN


def test_basic_decides_between_the_admin_and_the_viewer():
    s = Settings(admin_user="ops", admin_password="a-secret", viewer_password="v-secret")
    assert who(s, "10.0.0.1", basic("ops", "a-secret")) == Identity("ops", Role.FULL, "basic")
    assert who(s, "10.0.0.1", basic("viewer", "v-secret")) == Identity("viewer", Role.READ, "basic")
    for user, password in [("ops", "v-secret"), ("viewer", "a-secret"), ("viewer", "")]:
        refused = who(s, "10.0.0.1", basic(user, password))
        assert isinstance(refused, Refusal) and refused.status == 401 and refused.challenge
        assert refused.reason == "bad_credentials"
    missing = who(s, "10.0.0.1", {})
    assert isinstance(missing, Refusal) and missing.reason == "no_credentials"


def test_a_viewer_alone_gives_nobody_full_access():
    s = Settings(viewer_password="v")
    assert who(s, "127.0.0.1", basic("viewer", "v")) == Identity("viewer", Role.READ, "basic")
    refused = who(s, "127.0.0.1", {})
    assert isinstance(refused, Refusal) and refused.status == 401


def test_the_proxy_header_counts_only_from_a_trusted_address():
    s = Settings.from_env({**PROXY_ENV, "ADMIN_PASSWORD": "pw"})
    alice = {"x-forwarded-user": "alice"}
    for client in ("127.0.0.1", "10.1.200.3", "::1", "fd00:1::9", "::ffff:127.0.0.1"):
        assert who(s, client, alice) == Identity("alice", Role.FULL, "proxy"), client
    for client in ("127.0.0.2", "10.2.0.1", "fd00:2::1", "::ffff:127.0.0.2", None, "testclient"):
        refused = who(s, client, alice)
        assert isinstance(refused, Refusal) and refused.status == 401, client
        # Ignored, not refused: Basic credentials still work from there.
        assert who(s, client, {**alice, **basic("admin", "pw")}) == Identity(
            "admin", Role.FULL, "basic"
        )
    # From the proxy without the header (a skipped route), Basic applies.
    assert who(s, "127.0.0.1", basic("admin", "pw")).via == "basic"


def test_proxy_viewers_are_matched_without_case():
    s = Settings.from_env(PROXY_ENV)
    for user in ("bob@example.com", "BOB@example.COM", "Carol"):
        found = who(s, "127.0.0.1", {"x-forwarded-user": user})
        assert found == Identity(user, Role.READ, "proxy")
        assert authorize(found, Role.FULL) is not None and authorize(found, Role.READ) is None
    assert who(s, "127.0.0.1", {"x-forwarded-user": "bobby"}).role is Role.FULL


@pytest.mark.parametrize(
    "headers",
    [
        [("x-forwarded-user", "")],
        [("x-forwarded-user", "   ")],
        [("x-forwarded-user", "alice, mallory")],
        [("x-forwarded-user", "alice,")],
        [("x-forwarded-user", "alice"), ("x-forwarded-user", "mallory")],
        [("x-forwarded-user", "alice\tx")],
        [("x-forwarded-user", "a" * 201)],
    ],
)
def test_a_malformed_proxy_header_is_refused_even_with_basic(headers):
    s = Settings.from_env({**PROXY_ENV, "ADMIN_PASSWORD": "pw"})
    refused = who(s, "127.0.0.1", [*headers, *basic("admin", "pw").items()])
    assert isinstance(refused, Refusal) and refused.status == 403
    assert refused.reason == "proxy_header_invalid"


def test_trusted_needs_an_ip_inside_a_network():
    nets = (ipaddress.ip_network("192.168.0.0/24"), ipaddress.ip_network("2001:db8::/32"))
    assert trusted(nets, "192.168.0.77") and trusted(nets, "2001:db8::1")
    assert not trusted(nets, "192.168.1.1") and not trusted(nets, "2001:db9::1")
    assert not trusted(nets, "") and not trusted(nets, None) and not trusted((), "192.168.0.1")
