"""The OpenAPI 3.0 description of the JSON API, served at /openapi.json."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.cron import MAX_EXPR_LENGTH, MAX_TZ_LENGTH
from shared.runs import STATES
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
    },
}
PATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "cron": {"type": "string", "maxLength": MAX_EXPR_LENGTH, "example": "*/5 * * * *"},
        "timezone": {"type": "string", "maxLength": MAX_TZ_LENGTH, "example": "Europe/Berlin"},
        "enabled": {"type": "boolean"},
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
            "summary": "Change a job's schedule, time zone or enabled flag",
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
            "description": "Jobs, schedules, run history, manual runs and leader status.",
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
            },
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
    }


async def openapi(request: Request) -> JSONResponse:
    """GET /openapi.json."""
    return JSONResponse(document())
