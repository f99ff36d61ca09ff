"""The OpenAPI 3.0 description of the JSON API, served at /openapi.json."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.cron import MAX_EXPR_LENGTH, MAX_TZ_LENGTH
from shared.freshness import HEALTHS
from shared.runs import STATES
from shared.schedules import STALE_AFTER_RANGE
from webadmin.inputs import MAX_ID, MAX_LIMIT

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
        "error": {"type": "string", "nullable": True},
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
    },
}
STALE_AFTER = {
    "type": "integer",
    "nullable": True,
    "minimum": STALE_AFTER_RANGE[0],
    "maximum": STALE_AFTER_RANGE[1],
    "description": "seconds without a success before the job is stale; null for the default",
}
DELIVERY = {
    "type": "object",
    "properties": {
        "target": {"type": "string", "description": "the webhook URL, masked"},
        "delivered_at": TIME,
        "attempts": {"type": "integer"},
        "last_error": {"type": "string", "nullable": True},
    },
}
ALERT = {
    "type": "object",
    "required": [
        "id",
        "job_name",
        "event",
        "created_at",
        "delivered_at",
        "attempts",
        "last_error",
    ],
    "properties": {
        "id": {"type": "integer"},
        "job_name": {"type": "string"},
        "event": {"type": "string", "enum": ["job.failing", "job.stale", "job.recovered"]},
        "health": {"type": "string", "enum": list(HEALTHS)},
        "created_at": {"type": "string", "format": "date-time"},
        "delivered_at": TIME,
        "attempts": {"type": "integer"},
        "last_error": {"type": "string", "nullable": True},
        "next_attempt_at": TIME,
        "deliveries": {"type": "array", "items": DELIVERY},
    },
}
PATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "cron": {"type": "string", "maxLength": MAX_EXPR_LENGTH, "example": "*/5 * * * *"},
        "timezone": {"type": "string", "maxLength": MAX_TZ_LENGTH, "example": "Europe/Berlin"},
        "enabled": {"type": "boolean"},
        "stale_after_seconds": STALE_AFTER,
    },
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


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
NOT_FOUND = _json("unknown job", _ref("Error"))
INVALID = _json("invalid input, nothing stored", _ref("Error"))
MUTATION_ERRORS = {
    "400": _json("the body is not JSON", _ref("Error")),
    "413": _json("the body is too large", _ref("Error")),
    "415": _json("the body is not sent as application/json", _ref("Error")),
}
UNAUTHORIZED = {"401": _json("HTTP Basic credentials required", _ref("Error"))}
FORBIDDEN = {"403": _json("the signed-in user has read-only access", _ref("Error"))}
READS = ("get", "head", "options")

PATHS: dict[str, dict] = {
    "/healthz": {
        "get": {
            "summary": "Liveness: 200 when the database answers",
            "security": [],
            "responses": {
                "200": {"description": "the database answers"},
                "503": {"description": "the database does not answer"},
            },
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: the database and Redis answer",
            "responses": {
                "200": {"description": "ready"},
                "503": {"description": "a dependency does not answer"},
            },
        }
    },
    "/api/jobs": {
        "get": {
            "summary": "Every job",
            "responses": {"200": _json("jobs", {"type": "array", "items": _ref("Job")})},
        }
    },
    "/api/jobs/{name}": {
        "parameters": [NAME],
        "get": {
            "summary": "One job",
            "responses": {"200": _json("the job", _ref("Job")), "404": NOT_FOUND},
        },
        "patch": {
            "summary": "Change a job's schedule, time zone, enabled flag or stale_after_seconds",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ScheduleChange")}},
            },
            "responses": {
                "200": _json("the updated job", _ref("Job")),
                "404": NOT_FOUND,
                "422": INVALID,
                **MUTATION_ERRORS,
            },
        },
    },
    "/api/jobs/{name}/runs": {
        "parameters": [NAME],
        "get": {
            "summary": "A job's runs, newest first (keyset pages with `before`)",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
                {
                    "name": "state",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(STATES)},
                },
                {
                    "name": "before",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                },
            ],
            "responses": {
                "200": _json("runs", {"type": "array", "items": _ref("Run")}),
                "404": NOT_FOUND,
                "422": INVALID,
            },
        },
        "post": {
            "summary": "Start a manual run now",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "202": _json("the new run", _ref("Run")),
                "404": NOT_FOUND,
                "409": _json(
                    "a run of this job is already pending, enqueued or running",
                    {
                        "type": "object",
                        "required": ["error", "run"],
                        "properties": {"error": {"type": "string"}, "run": _ref("Run")},
                    },
                ),
                **MUTATION_ERRORS,
            },
        },
    },
    "/api/runs/{id}": {
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
        ],
        "get": {
            "summary": "One run",
            "responses": {"200": _json("the run", _ref("Run")), "404": NOT_FOUND},
        },
    },
    "/api/scheduler": {
        "get": {
            "summary": "The leader and every scheduler peer",
            "responses": {"200": _json("leader status", _ref("Scheduler"))},
        }
    },
    "/api/alerts": {
        "get": {
            "summary": "The latest alerts, newest first, with their delivery state",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                }
            ],
            "responses": {
                "200": _json("alerts", {"type": "array", "items": _ref("Alert")}),
                "422": INVALID,
            },
        }
    },
    "/api/preview": {
        "get": {
            "summary": "Validate a schedule and show its next fire times (nothing stored)",
            "parameters": [
                {"name": "cron", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "timezone", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": _json("the schedule", _ref("Preview")), "422": INVALID},
        }
    },
}


def document() -> dict:
    """The whole OpenAPI document."""
    paths: dict[str, dict] = {}
    for path, item in PATHS.items():
        paths[path] = {}
        for key, op in item.items():
            if isinstance(op, dict) and "responses" in op and path != "/healthz":
                refusals = UNAUTHORIZED if key in READS else {**UNAUTHORIZED, **FORBIDDEN}
                op = {**op, "responses": {**op["responses"], **refusals}}
            paths[path][key] = op
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "srjobs admin API",
            "version": "1",
            "description": "Jobs and their health, schedules, run history, manual runs,"
            " alerts and leader status.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": ERROR,
                "Run": RUN,
                "Job": JOB,
                "ScheduleChange": PATCH,
                "Scheduler": SCHEDULER,
                "Preview": PREVIEW,
                "Alert": ALERT,
            },
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
    }


async def openapi(request: Request) -> JSONResponse:
    """GET /openapi.json."""
    return JSONResponse(document())
