"""Apply the Alembic migrations and seed default schedules, serialised by an advisory lock."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

import migrations
from shared.actors import ActorInfo, write_catalogue
from shared.db import ensure_database, make_engine
from shared.errors import NotMigrated
from shared.schedules import ScheduleSeed, seed_schedules
from shared.settings import Settings

logger = logging.getLogger(__name__)

# Any constant works; it only has to differ from srjobs' other advisory lock keys.
MIGRATE_LOCK_KEY = 0x5_1AB5_0001
MIGRATE_HINT = "the database is not migrated: run `srjobs migrate` first"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return cfg


@cache
def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def migrate(
    settings: Settings, seeds: Iterable[ScheduleSeed], actors: Iterable[ActorInfo] = ()
) -> int:
    """Create the database if needed, upgrade to head, seed missing schedules, write the
    actor catalogue.

    Returns how many schedules were seeded.
    """
    ensure_database(settings.database_url)
    engine = make_engine(settings, pool_size=1, application_name="srjobs-migrate")
    try:
        with engine.connect() as conn:
            # One transaction: concurrent runs wait here, then find nothing left to do.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            write_catalogue(conn, list(actors))  # before seeding: a new row takes its queue
            seeded = seed_schedules(conn, list(seeds))
            conn.commit()
    finally:
        engine.dispose()
    logger.info("database at revision %s, %d schedule(s) seeded", head_revision(), seeded)
    return seeded


def check_migrated(engine: Engine) -> None:
    """Raise NotMigrated unless the database exists and is at the newest migration."""
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar()
            current = (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if exists
                else None
            )
    except Exception as exc:
        if "does not exist" in str(exc):
            raise NotMigrated(MIGRATE_HINT) from exc
        raise
    if current != head_revision():
        raise NotMigrated(MIGRATE_HINT)
