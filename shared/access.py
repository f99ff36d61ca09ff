"""The admin's access settings: a read-only Basic user and sign-on behind a trusted proxy.

Parsed (the field parsers of `shared/settings.py` call these) and checked with the rest of the
settings; a bad value raises ConfigError naming the variable. The web layer decides
identities from these values (`webadmin/auth.py`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import TypedDict

from shared.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_VIEWER_USER = "viewer"
# RFC 9110 field-name: a token.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
# Headers whose meaning is fixed elsewhere: naming one of them would hand identity to a value
# that clients set for another purpose.
RESERVED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "host", "content-type", "content-length"}
)


class AccessFields(TypedDict):
    """The Settings fields this module reads."""

    viewer_user: str
    viewer_password: str | None
    auth_proxy_header: str | None
    auth_proxy_from: tuple[IPNetwork, ...]
    viewers: frozenset[str]


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_networks(name: str, raw: str) -> tuple[IPNetwork, ...]:
    """Comma-separated IPs or CIDRs, IPv4 or IPv6; a bad one raises ConfigError naming `name`."""
    found = []
    for item in _items(raw):
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as exc:
            raise ConfigError(f"{name}: {item!r} is not an IP address or CIDR ({exc})") from None
        if network.prefixlen == 0:
            raise ConfigError(f"{name}: {item!r} would trust every address; name the proxy's")
        found.append(network)
    return tuple(found)


def parse_header(name: str, raw: str) -> str | None:
    """An HTTP header name (lower case), or None when unset."""
    value = raw.strip()
    if not value:
        return None
    if not HEADER_NAME.fullmatch(value):
        raise ConfigError(f"{name} must be an HTTP header name such as X-Forwarded-User")
    if value.lower() in RESERVED_HEADERS:
        raise ConfigError(f"{name} must not be {value!r}: that header means something else")
    return value.lower()


def viewer_key(user: str) -> str:
    """How SRJOBS_VIEWERS entries and proxy users are compared: case-insensitively, so that a
    differently cased name never gains more than read access."""
    return user.casefold()


def check(fields: AccessFields, admin_user: str) -> None:
    """Raise ConfigError when the access settings contradict each other."""
    if fields["auth_proxy_header"] and not fields["auth_proxy_from"]:
        raise ConfigError(
            "SRJOBS_AUTH_PROXY_HEADER is set but SRJOBS_AUTH_PROXY_FROM is not: name the"
            " proxy's addresses, or the header would be trusted from nobody"
        )
    if fields["auth_proxy_from"] and not fields["auth_proxy_header"]:
        raise ConfigError(
            "SRJOBS_AUTH_PROXY_FROM is set but SRJOBS_AUTH_PROXY_HEADER is not: name the"
            " header that carries the user"
        )
    if fields["viewers"] and not fields["auth_proxy_header"]:
        raise ConfigError(
            "SRJOBS_VIEWERS lists proxy users, but SRJOBS_AUTH_PROXY_HEADER and"
            " SRJOBS_AUTH_PROXY_FROM are not set"
        )
    if fields["viewer_password"] is not None and fields["viewer_user"] == admin_user:
        raise ConfigError("VIEWER_USER must differ from ADMIN_USER")
