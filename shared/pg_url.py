"""DATABASE_URL in libpq's URL form, one host or several, mapped for psycopg2 and SQLAlchemy.

libpq reads `postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write` and connects
to the first host that accepts writes; SQLAlchemy's URL parser does not take a host list, so
several hosts are handed to it in its multi-host query form (`?host=h1:5432&host=h2:5432`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from sqlalchemy.engine import URL

from shared.errors import ConfigError

SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")
DEFAULT_PORT = 5432


@dataclass(frozen=True)
class PgTarget:
    """The parts of a libpq URL; `hosts` keeps their order (libpq tries them in turn)."""

    user: str | None
    password: str | None
    hosts: tuple[tuple[str, int | None], ...]
    database: str | None
    query: tuple[tuple[str, str], ...]


def _host(part: str, url_for_error: str) -> tuple[str, int | None]:
    if part.startswith("["):  # [ipv6]:port
        host, _, rest = part[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = part.partition(":")
    if not host:
        raise ConfigError(f"DATABASE_URL has an empty host in {url_for_error!r}")
    if not port_text:
        return unquote(host), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"DATABASE_URL has a bad port {port_text!r}")
    return unquote(host), int(port_text)


def parse_database_url(database_url: str) -> PgTarget:
    """Split a libpq URL; a URL srjobs cannot use raises ConfigError."""
    parts = urlsplit(database_url)
    if parts.scheme not in SCHEMES:
        raise ConfigError("DATABASE_URL must be a postgresql:// URL")
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if not at:
        userinfo, hostlist = "", parts.netloc
    user, colon, password = userinfo.partition(":")
    masked = database_url.replace(password, "***") if password else database_url
    hosts = tuple(_host(h, masked) for h in hostlist.split(",")) if hostlist else ()
    return PgTarget(
        user=unquote(user) or None,
        password=unquote(password) if colon else None,
        hosts=hosts,
        database=unquote(parts.path.lstrip("/")) or None,
        query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
    )


def libpq_url(target: PgTarget, database: str | None = None) -> str:
    """The libpq URL psycopg2 takes (several hosts stay a host list); `database` overrides."""
    auth = quote(target.user, safe="") if target.user else ""
    if target.password is not None:
        auth += ":" + quote(target.password, safe="")
    hosts = ",".join(
        (f"[{h}]" if ":" in h else quote(h, safe="")) + (f":{p}" if p is not None else "")
        for h, p in target.hosts
    )
    name = quote(database or target.database or "", safe="")
    query = f"?{urlencode(target.query)}" if target.query else ""
    return f"postgresql://{auth}{'@' if auth else ''}{hosts}/{name}{query}"


def sqlalchemy_url(target: PgTarget, database: str | None = None) -> URL:
    """SQLAlchemy's psycopg2 URL: one host as host/port, several in the multi-host query."""
    query: dict[str, list[str]] = {}
    for key, value in target.query:
        query.setdefault(key, []).append(value)
    flat: dict[str, str | list[str]] = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
    host, port = target.hosts[0] if len(target.hosts) == 1 else (None, None)
    if len(target.hosts) > 1:
        # SQLAlchemy wants a port on all hosts or none: libpq's default where one is missing.
        flat["host"] = [f"{h}:{p or DEFAULT_PORT}" for h, p in target.hosts]
    return URL.create(
        "postgresql+psycopg2",
        username=target.user,
        password=target.password,
        host=host,
        port=port,
        database=database or target.database,
        query=flat,
    )
