"""Who is asking and what they may do: one middleware, one table of roles.

Identity comes from, in order: no credentials configured at all (everyone has full access, as
without ADMIN_PASSWORD); the sign-on header, but only from an address in
SRJOBS_AUTH_PROXY_FROM; HTTP Basic as ADMIN_USER or VIEWER_USER. `POLICY` then says which role
a request needs; no route handler checks roles itself.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.access import IPNetwork, viewer_key
from shared.settings import Settings
from webadmin.asgi import HttpMiddleware
from webadmin.security import check_basic, send_json

logger = logging.getLogger(__name__)

MAX_USER_LENGTH = 200  # audit_log.who keeps 200 characters
CHALLENGE = (b"www-authenticate", b'Basic realm="srjobs", charset="UTF-8"')


class Role(enum.Enum):
    """What an identity may do; FULL includes everything READ may."""

    READ = "viewer"
    FULL = "admin"


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Rule:
    """Requests matching `methods` (None: any) on `path` (None: any) need `role` (None: nobody)."""

    methods: frozenset[str] | None
    path: str | None
    role: Role | None


# Which role a request needs; the first matching rule wins. Reads are for viewers; every other
# method, on every route present or future, needs full access.
POLICY: tuple[Rule, ...] = (
    Rule(None, "/healthz", None),  # liveness probes carry no credentials
    Rule(READ_METHODS, None, Role.READ),
    Rule(None, None, Role.FULL),
)


def required_role(method: str, path: str) -> Role | None:
    """The role `method path` needs under POLICY; None when it is open to anyone."""
    for rule in POLICY:
        if (rule.methods is None or method in rule.methods) and rule.path in (None, path):
            return rule.role
    raise AssertionError("POLICY ends with a rule that matches everything")


@dataclass(frozen=True)
class Identity:
    """Who is signed in: `user` is None when the admin has no credentials configured."""

    user: str | None
    role: Role
    via: str  # "basic", "proxy" or "open"

    @property
    def can_write(self) -> bool:
        """True when this identity may change things (the pages show it forms and buttons)."""
        return self.role is Role.FULL


OPEN = Identity(None, Role.FULL, "open")
NOBODY = Identity(None, Role.READ, "none")  # what a template assumes when no one was decided


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away: its status, the `{"error"}` text and a log reason."""

    status: int
    error: str
    reason: str
    challenge: bool = False  # ask the browser for Basic credentials


def auth_required(settings: Settings) -> bool:
    """True when any way of signing in is configured; otherwise the admin is open."""
    return bool(settings.admin_password or settings.viewer_password or settings.auth_proxy_header)


def trusted(networks: tuple[IPNetwork, ...], host: str | None) -> bool:
    """True when the peer address `host` lies in one of `networks`."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers this way
    return any(address in network for network in networks)


def proxy_identity(settings: Settings, values: list[str]) -> Identity | Refusal:
    """The user a trusted proxy names: exactly one plain, non-empty name."""
    user = values[0].strip() if len(values) == 1 else ""
    if not user or "," in user or not user.isprintable() or len(user) > MAX_USER_LENGTH:
        return Refusal(403, "the sign-on header must name exactly one user", "proxy_header_invalid")
    role = Role.READ if viewer_key(user) in settings.viewers else Role.FULL
    return Identity(user, role, "proxy")


def basic_identity(settings: Settings, header: str | None) -> Identity | Refusal:
    """The Basic user, checking both configured pairs every time (constant time each)."""
    admin = viewer = None
    if settings.admin_password is not None:
        admin = check_basic(header, settings.admin_user, settings.admin_password)
    if settings.viewer_password is not None:
        viewer = check_basic(header, settings.viewer_user, settings.viewer_password)
    if admin is not None:
        return Identity(admin, Role.FULL, "basic")
    if viewer is not None:
        return Identity(viewer, Role.READ, "basic")
    has_basic = settings.admin_password is not None or settings.viewer_password is not None
    if not has_basic:
        return Refusal(401, "sign in through the single sign-on proxy", "no_credentials")
    reason = "bad_credentials" if header else "no_credentials"
    return Refusal(401, "authentication required", reason, challenge=True)


def identify(settings: Settings, client: str | None, headers: Headers) -> Identity | Refusal:
    """Who sent a request from peer address `client` with `headers`."""
    if not auth_required(settings):
        return OPEN
    name = settings.auth_proxy_header
    if name and trusted(settings.auth_proxy_from, client):
        values = headers.getlist(name)
        if values:
            return proxy_identity(settings, values)
    return basic_identity(settings, headers.get("authorization"))


def authorize(identity: Identity, required: Role) -> Refusal | None:
    """None when `identity` holds the role a request needs."""
    if required is Role.FULL and identity.role is not Role.FULL:
        error = f"{identity.user} has read-only access: this request would change something"
        return Refusal(403, error, "read_only")
    return None


class AuthMiddleware(HttpMiddleware):
    """Decides each request's identity and refuses what its role does not allow."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        super().__init__(app)
        self.settings = settings

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        required = required_role(scope["method"], scope["path"])
        if required is None:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else None
        headers = Headers(scope=scope)
        name = self.settings.auth_proxy_header
        if name and name in headers and not trusted(self.settings.auth_proxy_from, client):
            logger.info(
                "ignored the sign-on header from untrusted %s",
                client,
                extra={"event": "proxy_header_ignored", "client": client},
            )
        found = identify(self.settings, client, headers)
        refusal = found if isinstance(found, Refusal) else authorize(found, required)
        if refusal is not None:
            _log_refusal(refusal, scope, client, found)
            extra = [CHALLENGE] if refusal.challenge else []
            await send_json(send, refusal.status, {"error": refusal.error}, extra)
            return
        assert isinstance(found, Identity)
        state = scope.setdefault("state", {})
        state["identity"] = found
        if found.user is not None:
            state["user"] = found.user  # the audit log's `who`
        await self.app(scope, receive, send)


def _log_refusal(
    refusal: Refusal, scope: Scope, client: str | None, found: Identity | Refusal
) -> None:
    """One structured line per refused request; never a credential or a header value."""
    if refusal.reason == "no_credentials":
        return  # a browser's first request before it asks for the password
    user = found.user if isinstance(found, Identity) else None
    logger.info(
        "refused %s %s from %s: %s",
        scope["method"],
        scope["path"],
        client,
        refusal.reason,
        extra={
            "event": "access_refused",
            "reason": refusal.reason,
            "method": scope["method"],
            "path": scope["path"],
            "client": client,
            "user": user,
        },
    )


def log_access(settings: Settings) -> None:
    """Say at start who may sign in, and how (never a secret)."""
    if settings.viewer_password is not None:
        logger.info("read-only Basic user %s enabled", settings.viewer_user)
    if settings.auth_proxy_header:
        logger.info(
            "single sign-on: header %s trusted from %s; %d read-only user(s)",
            settings.auth_proxy_header,
            ", ".join(map(str, settings.auth_proxy_from)),
            len(settings.viewers),
        )
    elif settings.admin_password is None and settings.viewer_password is not None:
        logger.warning("VIEWER_PASSWORD without ADMIN_PASSWORD: nobody may change anything")
