"""The OpenAPI component schemas of the JSON API's objects (webadmin/openapi.py uses them)."""

from __future__ import annotations

from shared.actors import MAX_ARGS_BYTES, NAME_PATTERN
from shared.cron import MAX_EXPR_LENGTH, MAX_TZ_LENGTH
from shared.freshness import HEALTHS
from shared.runs import STATES
from shared.schedules import STALE_AFTER_RANGE

TIME = {"type": "string", "format": "date-time", "nullable": True}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
RUN = {
    "type": "object",
    "required": ["id", "job_name", "trigger", "state", "attempt"],
    "properties": {
        "id": {"type": "integer"},
        "job_name": {"type": "string"},
        "trigger": {"type": "string", "enum": ["cron", "manual"]},
        "state": {"type": "string", "enum": list(STATES)},
        "scheduled_at": TIME,
        "enqueued_at": TIME,
        "started_at": TIME,
        "finished_at": TIME,
        "created_at": {"type": "string", "format": "date-time"},
        "attempt": {"type": "integer"},
        "node": {"type": "string", "nullable": True},
        "error": {
            "type": "string",
            "nullable": True,
            "description": "begins with `cancelled` for a cancelled run",
        },
        "args": {"type": "object", "description": "the keyword arguments it runs with"},
        "retry_of": {"type": "integer", "nullable": True, "description": "the run it retries"},
        "cancel_requested_at": TIME,
    },
}
JOB = {
    "type": "object",
    "required": [
        "name",
        "actor",
        "cron",
        "timezone",
        "enabled",
        "description",
        "next_run_at",
        "last_run",
        "health",
        "last_success_at",
        "consecutive_failures",
        "stale_after_seconds",
    ],
    "properties": {
        "name": {"type": "string"},
        "actor": {"type": "string"},
        "queue": {"type": "string"},
        "cron": {"type": "string"},
        "timezone": {"type": "string"},
        "enabled": {"type": "boolean"},
        "description": {"type": "string", "description": "the schedule in words"},
        "job_description": {"type": "string", "description": "what the job does"},
        "next_run_at": TIME,
        "last_run": {"allOf": [{"$ref": "#/components/schemas/Run"}], "nullable": True},
        "updated_at": {"type": "string", "format": "date-time"},
        "health": {
            "type": "string",
            "enum": list(HEALTHS),
            "description": "paused, stale, failing, new or ok: the first rule that matches",
        },
        "last_success_at": TIME,
        "consecutive_failures": {
            "type": "integer",
            "description": "failed or discarded runs since the last success (cancelled excepted)",
        },
        "stale_after_seconds": {
            "type": "integer",
            "nullable": True,
            "description": "the value in force: the configured one or the schedule's default",
        },
        "args": {"type": "object", "description": "keyword arguments of each run"},
        "declared": {
            "type": "boolean",
            "description": "declared in code: may be edited or paused, not deleted",
        },
    },
}
STALE_AFTER = {
    "type": "integer",
    "nullable": True,
    "minimum": STALE_AFTER_RANGE[0],
    "maximum": STALE_AFTER_RANGE[1],
    "description": "seconds without a success before the job is stale; null for the default",
}
DELIVERY_STATE = {
    "delivered_at": TIME,
    "attempts": {"type": "integer"},
    "last_error": {"type": "string", "nullable": True},
}
DELIVERY = {
    "type": "object",
    "properties": {
        "target": {"type": "string", "description": "the webhook URL, masked"},
        **DELIVERY_STATE,
    },
}
ALERT = {
    "type": "object",
    "required": ["id", "job_name", "event", "created_at", *DELIVERY_STATE],
    "properties": {
        "id": {"type": "integer"},
        "job_name": {"type": "string"},
        "event": {"type": "string", "enum": ["job.failing", "job.stale", "job.recovered"]},
        "health": {"type": "string", "enum": list(HEALTHS)},
        "created_at": {"type": "string", "format": "date-time"},
        **DELIVERY_STATE,
        "next_attempt_at": TIME,
        "deliveries": {"type": "array", "items": DELIVERY},
    },
}
ARGS = {
    "type": "object",
    "description": f"keyword arguments for the actor, at most {MAX_ARGS_BYTES} bytes as JSON",
    "example": {"view": "public.error_rates"},
}


def schedule_fields(timezone_example: str) -> dict:
    """The schedule fields a new job sets and a PATCH may change."""
    return {
        "cron": {"type": "string", "maxLength": MAX_EXPR_LENGTH, "example": "*/5 * * * *"},
        "timezone": {"type": "string", "maxLength": MAX_TZ_LENGTH, "example": timezone_example},
        "enabled": {"type": "boolean"},
        "args": ARGS,
        "stale_after_seconds": STALE_AFTER,
    }


NEW_JOB = {
    "type": "object",
    "required": ["name", "actor", "cron"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"},
        "actor": {"type": "string", "description": "a name from GET /api/actors"},
        **schedule_fields(timezone_example="UTC"),
    },
}
ACTOR = {
    "type": "object",
    "required": ["name", "description", "queue", "params"],
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "queue": {"type": "string"},
        "params": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "required"],
                "properties": {"name": {"type": "string"}, "required": {"type": "boolean"}},
            },
        },
        "any_args": {"type": "boolean", "description": "it also takes **kwargs"},
    },
}
PATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": schedule_fields(timezone_example="Europe/Berlin"),
}
SCHEDULER = {
    "type": "object",
    "required": ["leader", "nodes"],
    "properties": {
        "leader": {"type": "string", "nullable": True},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["node", "role", "last_seen_at"],
                "properties": {
                    "node": {"type": "string"},
                    "role": {"type": "string", "enum": ["leader", "follower"]},
                    "last_seen_at": {"type": "string", "format": "date-time"},
                    "started_at": {"type": "string", "format": "date-time"},
                    "leader_since": TIME,
                    "stale": {"type": "boolean"},
                },
            },
        },
        "checked_at": {"type": "string", "format": "date-time"},
    },
}
PREVIEW = {
    "type": "object",
    "properties": {
        "cron": {"type": "string"},
        "timezone": {"type": "string"},
        "description": {"type": "string"},
        "next_fire_times": {"type": "array", "items": {"type": "string", "format": "date-time"}},
    },
}


def ref(name: str) -> dict:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict) -> dict:
    """A response whose JSON body follows `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def components() -> dict:
    """The `components.schemas` of the document."""
    return {
        "Error": ERROR,
        "Run": RUN,
        "Job": JOB,
        "NewJob": NEW_JOB,
        "Actor": ACTOR,
        "ScheduleChange": PATCH,
        "Scheduler": SCHEDULER,
        "Preview": PREVIEW,
        "Alert": ALERT,
    }
