"""Alert webhooks: the contract's JSON body, its signature, one POST, the retry schedule.

Everything but `post` is pure. `post` never follows a redirect and gives up on a receiver that
does not answer within the timeout, so one hanging URL cannot hold the others back for long.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import ssl
from datetime import datetime
from urllib.parse import quote, urlsplit

from shared.alerts import Alert

SIGNATURE_HEADER = "X-Srjobs-Signature"
MAX_ERROR = 300
MAX_TEXT = 400


def payload(alert: Alert) -> dict:
    """The webhook body: id, event, job, health, at and the details fixed when recorded."""
    return {
        "id": alert.id,
        "event": alert.event,
        "job": alert.job_name,
        "health": alert.health,
        "at": alert.created_at.isoformat(),
        **alert.details,
    }


def body(alert: Alert) -> bytes:
    """The exact bytes sent (and signed); the same on every attempt."""
    return json.dumps(payload(alert), sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, data: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`."""
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def target_key(url: str) -> str:
    """A stable key for a URL that does not reveal it."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def mask(url: str) -> str:
    """The URL without credentials and with most of its path hidden (tokens live there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    path = parts.path if len(parts.path) <= 12 else parts.path[:12] + "…"
    return f"{parts.scheme}://{host}{path}"


def job_link(admin_url: str | None, job: str) -> str | None:
    """The job's admin page, when the admin's public URL is known."""
    return f"{admin_url}/jobs/{quote(job, safe='')}" if admin_url else None


def _one_line(value: str, limit: int) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def summary(
    event: str,
    job: str,
    *,
    consecutive_failures: int,
    last_success_at: datetime | None,
    stale_after_seconds: int | None,
    error: str | None,
    link: str | None,
) -> str:
    """One line a chat tool shows as is, e.g. `srjobs: job nightly is failing (3 failures in
    a row, last success 2026-11-29 10:00 UTC): KeyError: 'x' https://admin/jobs/nightly`."""
    last = f"last success {_when(last_success_at)}"
    if event == "job.failing":
        count = "1 failure" if consecutive_failures == 1 else f"{consecutive_failures} failures"
        line = f"srjobs: job {job} is failing ({count} in a row, {last})"
        if error:
            line += f": {_one_line(error, 160)}"
    elif event == "job.stale":
        limit = f"{stale_after_seconds} s" if stale_after_seconds else "its limit"
        line = f"srjobs: job {job} is stale: no success for more than {limit} ({last})"
    else:
        line = f"srjobs: job {job} recovered ({last})"
    line = _one_line(line, MAX_TEXT)
    return f"{line} {link}" if link else line


def retry_delay(attempts: int, first: float, cap: float) -> float:
    """Seconds before the next try after `attempts` failed rounds: doubling from `first`."""
    return float(min(cap, first * 2 ** max(0, attempts - 1)))


def post(url: str, data: bytes, headers: dict[str, str], timeout: float) -> str | None:
    """POST once; None when the receiver answered 2xx, else what went wrong (one line)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("POST", path, body=data, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)
        if 200 <= response.status < 300:
            return None
        return f"HTTP {response.status} {response.reason}"[:MAX_ERROR]
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except (OSError, http.client.HTTPException) as exc:
        return _one_line(f"{type(exc).__name__}: {exc}", MAX_ERROR)
    finally:
        conn.close()


def headers_for(data: bytes, secret: str | None) -> dict[str, str]:
    """Content type, user agent and, with a secret, the signature."""
    out = {"Content-Type": "application/json", "User-Agent": "srjobs-alerts/1"}
    if secret:
        out[SIGNATURE_HEADER] = signature(secret, data)
    return out
