"""The contract's schedule forms: limits, macros and the `@every` interval syntax."""

from __future__ import annotations

import re

MAX_EXPR_LENGTH = 200
MAX_TZ_LENGTH = 64

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
EVERY = re.compile(r"@every\s+(\d{1,7})\s*([smh])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour"}


def source_fields(expr: str) -> str:
    """The five cron fields an expression (or macro) stands for, single-spaced."""
    expr = expr.strip().lower()
    return MACROS.get(expr, " ".join(expr.split()))
