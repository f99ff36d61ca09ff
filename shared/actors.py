"""Data access for `job_actors` (the actor catalogue) and the rules for a schedule's `args`.

Workers and `srjobs migrate` write the catalogue from the declared actors; the admin reads it
to validate a schedule without importing worker code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.dialects.postgresql import insert

from shared.errors import InvalidInput
from shared.tables import job_actors

MAX_ARGS_BYTES = 16 * 1024
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,200}")
NAME_RULE = "name must be 1 to 200 characters of A-Z, a-z, 0-9, '_', '.' and '-'"


@dataclass(frozen=True)
class Param:
    """One keyword argument an actor takes."""

    name: str
    required: bool

    def as_json(self) -> dict[str, Any]:
        """The catalogue's `{"name", "required"}`."""
        return {"name": self.name, "required": self.required}


@dataclass(frozen=True)
class ActorInfo:
    """One row of `job_actors`."""

    name: str
    description: str
    queue: str
    params: tuple[Param, ...]
    any_args: bool = False

    def as_json(self) -> dict[str, Any]:
        """The `/api/actors` item."""
        return {
            "name": self.name,
            "description": self.description,
            "queue": self.queue,
            "params": [p.as_json() for p in self.params],
            "any_args": self.any_args,
        }


def _actor(row: Row[Any]) -> ActorInfo:
    m = row._mapping
    params = tuple(Param(str(p["name"]), bool(p["required"])) for p in m["params"])
    return ActorInfo(m["name"], m["description"], m["queue"], params, m["any_args"])


def write_catalogue(conn: Connection, actors: list[ActorInfo]) -> int:
    """Insert or update the given actors (others are left: another worker may run them)."""
    if not actors:
        return 0
    stmt = insert(job_actors).values(
        [
            {
                "name": a.name,
                "description": a.description,
                "queue": a.queue,
                "params": [p.as_json() for p in a.params],
                "any_args": a.any_args,
            }
            for a in sorted(actors, key=lambda a: a.name)  # one lock order for every writer
        ]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "description": stmt.excluded.description,
            "queue": stmt.excluded.queue,
            "params": stmt.excluded.params,
            "any_args": stmt.excluded.any_args,
            "updated_at": func.now(),
        },
        # Rewriting an unchanged row would only bloat the table at every worker start.
        where=(
            job_actors.c.description.is_distinct_from(stmt.excluded.description)
            | job_actors.c.queue.is_distinct_from(stmt.excluded.queue)
            | job_actors.c.params.is_distinct_from(stmt.excluded.params)
            | job_actors.c.any_args.is_distinct_from(stmt.excluded.any_args)
        ),
    )
    return conn.execute(stmt).rowcount


def list_actors(conn: Connection) -> list[ActorInfo]:
    """The whole catalogue, by name."""
    return [_actor(r) for r in conn.execute(select(job_actors).order_by(job_actors.c.name))]


def find_actor(conn: Connection, name: str) -> ActorInfo | None:
    """One actor, or None when it is not catalogued."""
    row = conn.execute(select(job_actors).where(job_actors.c.name == name)).first()
    return None if row is None else _actor(row)


def get_actor(conn: Connection, name: str) -> ActorInfo:
    """One actor; raises InvalidInput naming the `actor` field when it is not catalogued."""
    actor = find_actor(conn, name)
    if actor is None:
        raise InvalidInput(f"actor: unknown actor {name[:200]!r} (see GET /api/actors)")
    return actor


def check_name(name: object) -> str:
    """A new schedule's name, or InvalidInput naming the `name` field."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(NAME_RULE)
    return name


def _texts(value: object) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def check_args(actor: ActorInfo, args: object) -> dict[str, Any]:
    """`args` when the actor accepts them as keyword arguments; InvalidInput naming `args`."""
    if not isinstance(args, dict):
        raise InvalidInput("args must be a JSON object of keyword arguments")
    if any("\x00" in text for text in _texts(args)):
        raise InvalidInput("args must not contain NUL characters")  # jsonb cannot store them
    text = json.dumps(args, separators=(",", ":"), ensure_ascii=False)
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise InvalidInput("args must be valid Unicode text") from None
    if size > MAX_ARGS_BYTES:
        raise InvalidInput(f"args is {size} bytes as JSON, more than {MAX_ARGS_BYTES} (16 KiB)")
    known = {p.name for p in actor.params}
    takes = ", ".join(sorted(known)) or "no arguments"
    unknown = sorted(set(args) - known)
    if unknown and not actor.any_args:
        raise InvalidInput(
            f"args: {actor.name} does not take {', '.join(map(repr, unknown))} (it takes {takes})"
        )
    missing = [p.name for p in actor.params if p.required and p.name not in args]
    if missing:
        raise InvalidInput(
            f"args: {actor.name} needs {', '.join(map(repr, missing))} (it takes {takes})"
        )
    return args
