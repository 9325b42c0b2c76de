"""runtime.signals: parse what users write; see which signals a process catches."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from runtime.errors import InvalidArgument
from runtime.exitstatus import signal_name
from runtime.signals import SIGNAL_NAMES, SIGNAL_NUMBERS, catches, parse_signal


@pytest.mark.parametrize(
    ("text", "signo"),
    [
        ("SIGTERM", 15),
        ("TERM", 15),
        ("term", 15),
        (" sigkill ", 9),
        ("15", 15),
        (9, 9),
        ("SIGUSR1", 10),
        ("SIGRTMIN", int(signal.SIGRTMIN)),
        (str(int(signal.SIGRTMAX)), int(signal.SIGRTMAX)),
    ],
)
def test_parse(text: str | int, signo: int) -> None:
    assert parse_signal(text) == signo


@pytest.mark.parametrize("text", ["0", 0, "65", "99", "32", "-1", "", "SIGFOO", "KILLL", "9x"])
def test_parse_rejects_and_names_the_field(text: str | int) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_signal(text)
    assert info.value.field == "signal"
    assert str(info.value).startswith("signal: ")


def test_parse_uses_the_given_field_name() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_signal("nope", field="stop_signal")
    assert info.value.field == "stop_signal"


@pytest.fixture
def usr1_handler() -> Iterator[None]:
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_catches_sees_an_installed_handler(usr1_handler: None) -> None:
    assert catches(os.getpid(), signal.SIGUSR1)


def test_catches_is_false_for_default_and_ignored_dispositions() -> None:
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    assert not catches(os.getpid(), signal.SIGUSR2)
    # CPython ignores SIGPIPE: ignored is not caught (SigIgn, not SigCgt).
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    assert not catches(os.getpid(), signal.SIGPIPE)


def test_catches_is_false_for_a_process_that_does_not_exist() -> None:
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    assert not catches(pid_max + 1, signal.SIGTERM)


def test_real_time_signals_by_name_round_trip() -> None:
    for number in range(int(signal.SIGRTMIN), int(signal.SIGRTMAX) + 1):
        assert parse_signal(signal_name(number)) == number
    with pytest.raises(InvalidArgument):
        parse_signal("SIGRTMIN+99")


def test_the_documented_choices_are_all_accepted() -> None:
    """The OpenAPI schema lists these (app/schemas/fields.py): each must parse."""
    for choice in [*SIGNAL_NAMES, *SIGNAL_NUMBERS]:
        parse_signal(choice)
    assert 32 not in SIGNAL_NUMBERS and 9 in SIGNAL_NUMBERS and "TERM" in SIGNAL_NAMES
