"""Logging: one line per event, as text or JSON (LOG_FORMAT)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from shared.settings import Settings

# LogRecord attributes that are not event fields.
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "service", "node", "event", "message", ...fields}` per line.

    `event` is the record's `extra={"event": ...}` name when it has one (what tests and log
    queries match), else the message."""

    def __init__(self, service: str, node: str) -> None:
        super().__init__()
        self.service = service
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "node": self.node,
            "logger": record.name,
            "event": message,
            "message": message,
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(settings: Settings, service: str, level: int = logging.INFO) -> None:
    """Configure the root logger for one service process."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(service, settings.node_name))
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)s {service}[{settings.node_name}] %(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler.scheduler", "apscheduler.executors", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
