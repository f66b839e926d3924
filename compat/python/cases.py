"""Values of every type the drivers must carry both ways, shared by the suites.

Each case is (SQL type, [values]) where a value goes in as a parameter and must come
back equal (see `same`). NULL is always tried as well.
"""
import datetime as dt
import math
import uuid
from decimal import Decimal

UTC = dt.timezone.utc

CASES = [
    ("boolean", [True, False]),
    ("smallint", [-32768, 0, 32767]),
    ("integer", [-2147483648, 7, 2147483647]),
    ("bigint", [-9223372036854775808, 9000000000, 9223372036854775807]),
    ("real", [1.5, -0.25, float("inf"), float("-inf"), float("nan")]),
    ("double precision", [0.1, 1e300, -2.5e-300, float("inf"), float("nan")]),
    ("numeric(12,3)", [Decimal("12.500"), Decimal("-123456789.001"), Decimal("0.000")]),
    ("numeric", [Decimal("3.14159"), Decimal("123456789012345678901234567890.123456789"), Decimal("NaN")]),
    ("text", ["héllo wörld", "", "line\nbreak\ttab \\ back"]),
    ("varchar(10)", ["abc", "ten chars!"]),
    ("char(4)", ["abcd", "ab  "]),
    ("bytea", [b"\x00\xff\x10", b""]),
    ("date", [dt.date(2026, 1, 2), dt.date(1999, 12, 31), dt.date(1, 1, 1)]),
    ("time", [dt.time(3, 4, 5, 250000), dt.time(0, 0), dt.time(23, 59, 59, 999999)]),
    ("timestamp", [dt.datetime(2026, 1, 2, 3, 4, 5, 250000), dt.datetime(1970, 1, 1)]),
    ("timestamptz", [dt.datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC), dt.datetime(2000, 1, 1, tzinfo=UTC)]),
    ("interval", [dt.timedelta(days=1, seconds=3, microseconds=5), dt.timedelta(seconds=-90), dt.timedelta(0)]),
    ("uuid", [uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), uuid.UUID(int=0)]),
    ("json", [{"a": 1, "b": [True, None]}, [1, "two"]]),
    ("jsonb", [{"a": 1, "b": [True, None]}, "text"]),
    ("integer[]", [[1, 2, 3], [], [None, 5]]),
    ("bigint[]", [[9000000000, -1]]),
    ("text[]", [["a", "b c", 'quo"te', ""], ["NULL", None]]),
    ("double precision[]", [[1.5, -2.0]]),
    ("boolean[]", [[True, False]]),
]


def same(sql_type, want, got):
    """Equal as PostgreSQL itself gives the value back."""
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, Decimal) and want.is_nan():
        return isinstance(got, Decimal) and got.is_nan()
    if sql_type == "real" and isinstance(want, float):
        return got == want  # every value above is exact in float4
    if isinstance(want, bytes):
        return bytes(got) == want
    return got == want and isinstance(got, type(want))


def table_name(prefix, sql_type):
    return prefix + "_" + "".join(c if c.isalnum() else "_" for c in sql_type).strip("_")


def assert_round_trip(sql_type, sent, got, decode=lambda v: v):
    """`got` (id, value) rows, ordered by id, hold exactly the `sent` (id, value)
    pairs; `decode` turns a received value into Python first (asyncpg's json text)."""
    assert [r[0] for r in got] == [i for i, _ in sent]
    for (_, want), (_, value) in zip(sent, got):
        if want is None:
            assert value is None
        else:
            value = decode(value)
            assert same(sql_type, want, value), f"{sql_type}: sent {want!r}, got {value!r}"
