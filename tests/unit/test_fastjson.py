"""webadmin.fastjson writes what the standard library and `isoformat` would."""

import json
from datetime import UTC, datetime, timedelta, timezone

from webadmin import fastjson


def stdlib(value: object) -> bytes:
    """The body Starlette's JSONResponse writes, times first turned by `isoformat`."""

    def iso(v: object) -> object:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, dict):
            return {k: iso(x) for k, x in v.items()}
        if isinstance(v, list):
            return [iso(x) for x in v]
        return v

    return json.dumps(iso(value), ensure_ascii=False, separators=(",", ":")).encode()


ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3))]


def test_datetimes_as_isoformat_writes_them():
    values = [
        datetime(2026, 12, 3, 16, 7, 40, micro, tzinfo=zone)
        for zone in ZONES
        for micro in (0, 1, 120_000, 999_999)
    ]
    body = [{"at": v, "none": None, "list": [v]} for v in values]
    assert fastjson.dumps(body) == stdlib(body)


def test_other_values_as_the_standard_library_writes_them():
    body = {"s": 'é ü 日本 " \\ \n \u2028', "i": -(2**63), "f": 1.5, "b": [True, False], "e": {}}
    assert fastjson.dumps(body) == stdlib(body)


def test_an_integer_beyond_64_bits_falls_back_to_the_standard_library():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    body = {"args": {"n": 2**70}, "at": at}
    assert json.loads(fastjson.dumps(body)) == {"args": {"n": 2**70}, "at": at.isoformat()}
