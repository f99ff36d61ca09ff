"""The OpenAPI 3.0 description of the JSON API, served at /openapi.json."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.actors import MAX_ARGS_BYTES, NAME_PATTERN
from shared.cron import MAX_EXPR_LENGTH, MAX_TZ_LENGTH
from shared.freshness import HEALTHS
from shared.runs import STATES
from shared.schedules import STALE_AFTER_RANGE
from webadmin.inputs import MAX_ID, MAX_LIMIT, TRIGGERS

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
ARGS = {
    "type": "object",
    "description": f"keyword arguments for the actor, at most {MAX_ARGS_BYTES} bytes as JSON",
    "example": {"view": "public.error_rates"},
}
NEW_JOB = {
    "type": "object",
    "required": ["name", "actor", "cron"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"},
        "actor": {"type": "string", "description": "a name from GET /api/actors"},
        "cron": {"type": "string", "maxLength": MAX_EXPR_LENGTH, "example": "*/5 * * * *"},
        "timezone": {"type": "string", "maxLength": MAX_TZ_LENGTH, "example": "UTC"},
        "enabled": {"type": "boolean"},
        "args": ARGS,
        "stale_after_seconds": STALE_AFTER,
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
    "properties": {
        "cron": {"type": "string", "maxLength": MAX_EXPR_LENGTH, "example": "*/5 * * * *"},
        "timezone": {"type": "string", "maxLength": MAX_TZ_LENGTH, "example": "Europe/Berlin"},
        "enabled": {"type": "boolean"},
        "stale_after_seconds": STALE_AFTER,
        "args": ARGS,
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
RUN_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
EMPTY_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
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
        },
        "post": {
            "summary": "Create a runtime schedule of a catalogued actor",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewJob")}},
            },
            "responses": {
                "201": _json("the new job", _ref("Job")),
                "409": _json("a job of that name exists", _ref("Error")),
                "422": INVALID,
                **MUTATION_ERRORS,
            },
        },
    },
    "/api/actors": {
        "get": {
            "summary": "The actor catalogue: what a schedule may fire, with its parameters",
            "responses": {"200": _json("actors", {"type": "array", "items": _ref("Actor")})},
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
        "delete": {
            "summary": "Delete a runtime schedule (its runs stay); a declared one is 409",
            "responses": {
                "204": {"description": "deleted: the leader stops firing it at once"},
                "404": NOT_FOUND,
                "409": _json("declared in code: pause it instead", _ref("Error")),
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
    "/api/runs": {
        "get": {
            "summary": "Every job's runs, newest first, filtered (keyset pages with `before`)",
            "parameters": [
                {"name": "job", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                {
                    "name": "state",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(STATES)},
                },
                {
                    "name": "trigger",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(TRIGGERS)},
                },
                {
                    "name": "since",
                    "in": "query",
                    "description": "created at or after (ISO 8601)",
                    "schema": {"type": "string", "format": "date-time"},
                },
                {
                    "name": "until",
                    "in": "query",
                    "description": "created before (ISO 8601)",
                    "schema": {"type": "string", "format": "date-time"},
                },
                {
                    "name": "before",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
            ],
            "responses": {
                "200": _json("runs", {"type": "array", "items": _ref("Run")}),
                "422": INVALID,
            },
        }
    },
    "/api/runs/{id}": {
        "parameters": [RUN_ID],
        "get": {
            "summary": "One run",
            "responses": {"200": _json("the run", _ref("Run")), "404": NOT_FOUND},
        },
    },
    "/api/runs/{id}/cancel": {
        "parameters": [RUN_ID],
        "post": {
            "summary": "Cancel a run: a waiting one is discarded at once, a running one stops"
            " within 5 s",
            "requestBody": EMPTY_BODY,
            "responses": {
                "202": _json("the run", _ref("Run")),
                "404": NOT_FOUND,
                "409": _json("the run has already finished", _ref("Error")),
                **MUTATION_ERRORS,
            },
        },
    },
    "/api/runs/{id}/retry": {
        "parameters": [RUN_ID],
        "post": {
            "summary": "Start a new manual run with the same args, `retry_of` this one",
            "requestBody": EMPTY_BODY,
            "responses": {
                "202": _json("the new run", _ref("Run")),
                "404": NOT_FOUND,
                "409": _json(
                    "not finished, its job is gone, or the job has an active run (`run`)",
                    {
                        "type": "object",
                        "required": ["error"],
                        "properties": {"error": {"type": "string"}, "run": _ref("Run")},
                    },
                ),
                **MUTATION_ERRORS,
            },
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
            "description": "Jobs and their health, runtime schedules, the actor catalogue, run"
            " history and search, manual runs, cancel and retry, alerts and leader status.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": ERROR,
                "Run": RUN,
                "Job": JOB,
                "NewJob": NEW_JOB,
                "Actor": ACTOR,
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
