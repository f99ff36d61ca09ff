"""Engines, raw connections, URL mapping, creating the database; nothing connects at import."""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg2
from psycopg2 import errorcodes, sql
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL

from shared import pg_url
from shared.errors import NotMigrated
from shared.settings import Settings

logger = logging.getLogger(__name__)

# TCP keepalives so that a dead peer is noticed in seconds, not hours.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def sqlalchemy_url(database_url: str) -> URL:
    """Map a libpq URL (one host or several) to SQLAlchemy's psycopg2 dialect.

    SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which srjobs does not use.
    """
    return pg_url.sqlalchemy_url(pg_url.parse_database_url(database_url))


def safe_url(database_url: str) -> str:
    """The URL with its password masked, for log lines."""
    return sqlalchemy_url(database_url).render_as_string(hide_password=True)


def dsn(database_url: str) -> str:
    """A libpq URL for direct psycopg2 connections (a host list stays a host list)."""
    return pg_url.libpq_url(pg_url.parse_database_url(database_url))


def load_json(raw: str) -> Any:
    """`json.loads`, answering the common empty object without the parser: a list of ten
    thousand jobs and their last runs holds twenty thousand `args` that are mostly `{}`."""
    return {} if raw == "{}" else json.loads(raw)


def make_engine(
    settings: Settings, *, pool_size: int = 5, application_name: str = "srjobs"
) -> Engine:
    """A SQLAlchemy Core engine over psycopg2 with keepalives and pre-ping."""
    return create_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        json_deserializer=load_json,
        connect_args={**KEEPALIVES, "application_name": f"{application_name}:{settings.node_name}"},
    )


def connect_raw(
    database_url: str, *, application_name: str = "srjobs", **options: object
) -> psycopg2.extensions.connection:
    """A dedicated psycopg2 connection in autocommit mode (leader lock, LISTEN)."""
    conn = psycopg2.connect(
        dsn(database_url), application_name=application_name, **KEEPALIVES, **options
    )
    conn.autocommit = True
    return conn


def ensure_database(database_url: str) -> bool:
    """Create the URL's database when it does not exist; True when this call created it."""
    target = pg_url.parse_database_url(database_url)
    name = target.database
    if not name:
        raise NotMigrated("DATABASE_URL names no database")
    admin = pg_url.libpq_url(target, database="postgres")
    conn = psycopg2.connect(admin, **KEEPALIVES)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            try:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg2.Error as exc:
                # Another process created it between our check and our CREATE.
                if exc.pgcode in (errorcodes.DUPLICATE_DATABASE, errorcodes.UNIQUE_VIOLATION):
                    return False
                raise
            logger.info("created database %s", name)
            return True
    finally:
        conn.close()
