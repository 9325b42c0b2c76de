"""Timestamps as RFC 3339 strings in UTC, the one format stored and served;
unix nanoseconds for log times (runtime/logindex.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


#: What ``parse_ns`` takes, as a JSON Schema pattern for the API's docs
#: (field by field in range; a 30 February still fails only in the parser).
TIME_PATTERN = (
    r"^([0-9]+(\.[0-9]{1,9})?"
    r"|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))$"
)
_UNIX = re.compile(r"(\d+)(?:\.(\d{1,9}))?")
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)")


def parse_ns(text: str) -> int:
    """Unix time in ns from unix seconds with an optional fraction
    (``1795928400.123456789``, what the docker CLI sends) or RFC 3339
    (``2026-11-29T05:00:00.5Z``, what is stored); up to 9 fraction digits."""
    text = text.strip()
    if match := _UNIX.fullmatch(text):
        return int(match[1]) * 10**9 + _fraction_ns(match[2])
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(
            "expected unix seconds (1795928400.5) or RFC 3339 (2026-11-29T05:00:00.5Z)"
        )
    zone = "+00:00" if match[3] in ("Z", "z") else match[3]
    try:
        whole = datetime.fromisoformat(match[1].replace(" ", "T") + zone)
    except ValueError as err:
        raise ValueError(f"not a valid date and time: {err}") from None
    return int(whole.timestamp()) * 10**9 + _fraction_ns(match[2])


def _fraction_ns(digits: str | None) -> int:
    return int((digits or "").ljust(9, "0"))


def rfc3339_nano(ns: int) -> str:
    """``2026-11-29T05:00:00.123456789Z``: Docker's log timestamps, always
    nine fraction digits (its RFC3339NanoFixed), so they sort as text."""
    seconds, fraction = divmod(ns, 10**9)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"
