"""Request bodies: their media type, a size limit, and JSON for the API's mutations."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request

MAX_BODY_BYTES = 64 * 1024


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 past MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return body


async def json_body(request: Request) -> object:
    """The parsed body of a mutation: 415 unless application/json, 400 unless valid JSON."""
    if media_type(request) != "application/json":
        raise HTTPException(415, "send the body as Content-Type: application/json")
    body = await read_body(request)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HTTPException(400, "the body is not valid JSON (send {} for no options)") from None
