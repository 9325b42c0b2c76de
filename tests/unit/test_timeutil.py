"""runtime.timeutil: the times clients send for logs, and Docker's format."""

from __future__ import annotations

import pytest

from runtime.timeutil import now_rfc3339, parse_ns, rfc3339_nano

T0 = 1_795_928_400 * 10**9  # 2026-11-29T05:00:00Z


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1795928400", T0),
        ("1795928400.5", T0 + 500_000_000),
        ("1795928400.000000001", T0 + 1),  # the docker CLI's nine digits
        ("2026-11-29T05:00:00Z", T0),
        ("2026-11-29T05:00:00.123456789Z", T0 + 123_456_789),
        ("2026-11-29T06:00:00.5+01:00", T0 + 500_000_000),
        ("2026-11-29T05:00:00.000000Z", T0),  # as stored in the records
    ],
)
def test_parse_ns(text: str, ns: int) -> None:
    assert parse_ns(text) == ns


@pytest.mark.parametrize(
    "text",
    ["", "soon", "-1", "1.2.3", "1795928400.1234567891", "2026-13-01T00:00:00Z", "2026-11-29"],
)
def test_parse_ns_refuses_what_is_not_a_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ns(text)


def test_rfc3339_nano_has_nine_digits_always() -> None:
    assert rfc3339_nano(T0) == "2026-11-29T05:00:00.000000000Z"
    assert rfc3339_nano(T0 + 123_456_789) == "2026-11-29T05:00:00.123456789Z"
    assert parse_ns(rfc3339_nano(T0 + 7)) == T0 + 7


def test_what_is_stored_parses_back() -> None:
    stamp = now_rfc3339()
    assert rfc3339_nano(parse_ns(stamp)).startswith(stamp[:-1])
