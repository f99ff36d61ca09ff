"""The OpenAPI 3.0 description of the JSON API, served at /openapi.json."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.runs import STATES
from webadmin.api_schemas import components, json_response, ref
from webadmin.inputs import MAX_ID, MAX_LIMIT, TRIGGERS

NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
NOT_FOUND = json_response("unknown job", ref("Error"))
INVALID = json_response("invalid input, nothing stored", ref("Error"))
MUTATION_ERRORS = {
    "400": json_response("the body is not JSON", ref("Error")),
    "413": json_response("the body is too large", ref("Error")),
    "415": json_response("the body is not sent as application/json", ref("Error")),
}
RUN_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
UNAUTHORIZED = {"401": json_response("HTTP Basic credentials required", ref("Error"))}
FORBIDDEN = {"403": json_response("the signed-in user has read-only access", ref("Error"))}
READS = ("get", "head", "options")
TIME = {"type": "string", "format": "date-time"}


def query(name: str, schema: dict, description: str | None = None) -> dict:
    """A query parameter."""
    described = {"description": description} if description else {}
    return {"name": name, "in": "query", **described, "schema": schema}


def list_of(description: str, name: str) -> dict:
    """A 200 answer: a JSON array of the component `name`."""
    return json_response(description, {"type": "array", "items": ref(name)})


def json_body(schema: dict) -> dict:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


EMPTY_BODY = json_body({"type": "object"})


def probe(summary: str, ok: str, failing: str, **extra: object) -> dict:
    """A health probe's path: 200 when `ok`, 503 when `failing`."""
    responses = {"200": {"description": ok}, "503": {"description": failing}}
    return {"get": {"summary": summary, **extra, "responses": responses}}


LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})
BEFORE = query("before", {"type": "integer", "minimum": 1, "maximum": MAX_ID})

PATHS: dict[str, dict] = {
    "/healthz": probe(
        "Liveness: 200 when the database answers",
        "the database answers",
        "the database does not answer",
        security=[],
    ),
    "/readyz": probe(
        "Readiness: the database and Redis answer", "ready", "a dependency does not answer"
    ),
    "/api/jobs": {
        "get": {
            "summary": "Every job",
            "responses": {"200": list_of("jobs", "Job")},
        },
        "post": {
            "summary": "Create a runtime schedule of a catalogued actor",
            "requestBody": json_body(ref("NewJob")),
            "responses": {
                "201": json_response("the new job", ref("Job")),
                "409": json_response("a job of that name exists", ref("Error")),
                "422": INVALID,
                **MUTATION_ERRORS,
            },
        },
    },
    "/api/actors": {
        "get": {
            "summary": "The actor catalogue: what a schedule may fire, with its parameters",
            "responses": {"200": list_of("actors", "Actor")},
        }
    },
    "/api/jobs/{name}": {
        "parameters": [NAME],
        "get": {
            "summary": "One job",
            "responses": {"200": json_response("the job", ref("Job")), "404": NOT_FOUND},
        },
        "patch": {
            "summary": "Change a job's schedule, time zone, enabled flag or stale_after_seconds",
            "requestBody": json_body(ref("ScheduleChange")),
            "responses": {
                "200": json_response("the updated job", ref("Job")),
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
                "409": json_response("declared in code: pause it instead", ref("Error")),
            },
        },
    },
    "/api/jobs/{name}/runs": {
        "parameters": [NAME],
        "get": {
            "summary": "A job's runs, newest first (keyset pages with `before`)",
            "parameters": [
                LIMIT,
                query("state", {"type": "string", "enum": list(STATES)}),
                BEFORE,
            ],
            "responses": {
                "200": list_of("runs", "Run"),
                "404": NOT_FOUND,
                "422": INVALID,
            },
        },
        "post": {
            "summary": "Start a manual run now",
            "requestBody": EMPTY_BODY,
            "responses": {
                "202": json_response("the new run", ref("Run")),
                "404": NOT_FOUND,
                "409": json_response(
                    "a run of this job is already pending, enqueued or running",
                    {
                        "type": "object",
                        "required": ["error", "run"],
                        "properties": {"error": {"type": "string"}, "run": ref("Run")},
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
                query("job", {"type": "string", "maxLength": 200}),
                query("state", {"type": "string", "enum": list(STATES)}),
                query("trigger", {"type": "string", "enum": list(TRIGGERS)}),
                query("since", TIME, "created at or after (ISO 8601)"),
                query("until", TIME, "created before (ISO 8601)"),
                BEFORE,
                LIMIT,
            ],
            "responses": {
                "200": list_of("runs", "Run"),
                "422": INVALID,
            },
        }
    },
    "/api/runs/{id}": {
        "parameters": [RUN_ID],
        "get": {
            "summary": "One run",
            "responses": {"200": json_response("the run", ref("Run")), "404": NOT_FOUND},
        },
    },
    "/api/runs/{id}/cancel": {
        "parameters": [RUN_ID],
        "post": {
            "summary": "Cancel a run: a waiting one is discarded at once, a running one stops"
            " within 5 s",
            "requestBody": EMPTY_BODY,
            "responses": {
                "202": json_response("the run", ref("Run")),
                "404": NOT_FOUND,
                "409": json_response("the run has already finished", ref("Error")),
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
                "202": json_response("the new run", ref("Run")),
                "404": NOT_FOUND,
                "409": json_response(
                    "not finished, its job is gone, or the job has an active run (`run`)",
                    {
                        "type": "object",
                        "required": ["error"],
                        "properties": {"error": {"type": "string"}, "run": ref("Run")},
                    },
                ),
                **MUTATION_ERRORS,
            },
        },
    },
    "/api/scheduler": {
        "get": {
            "summary": "The leader and every scheduler peer",
            "responses": {"200": json_response("leader status", ref("Scheduler"))},
        }
    },
    "/api/alerts": {
        "get": {
            "summary": "The latest alerts, newest first, with their delivery state",
            "parameters": [LIMIT],
            "responses": {
                "200": list_of("alerts", "Alert"),
                "422": INVALID,
            },
        }
    },
    "/api/preview": {
        "get": {
            "summary": "Validate a schedule and show its next fire times (nothing stored)",
            "parameters": [
                {**query("cron", {"type": "string"}), "required": True},
                query("timezone", {"type": "string"}),
            ],
            "responses": {"200": json_response("the schedule", ref("Preview")), "422": INVALID},
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
            "schemas": components(),
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
    }


async def openapi(request: Request) -> JSONResponse:
    """GET /openapi.json."""
    return JSONResponse(document())
