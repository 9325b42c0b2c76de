"""Signal names and numbers, as users write them."""

from __future__ import annotations

import signal

from runtime.errors import InvalidArgument

#: The numbers kill(2) takes here: 1 to 64 but 32 and 33, which glibc keeps
#: for itself (signal(7), "Real-time signals").
SIGNAL_NUMBERS: list[int] = sorted(int(s) for s in signal.valid_signals() if int(s) > 0)
#: The names, with and without ``SIG`` (``parse_signal`` takes any case too).
SIGNAL_NAMES: list[str] = sorted(
    {n for name in signal.Signals.__members__ for n in (name, name.removeprefix("SIG"))}
)


def parse_signal(value: str | int, field: str = "signal") -> int:
    """``"SIGTERM"``, ``"TERM"``, ``"term"``, ``"15"`` or ``15`` → 15."""
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
        if number in {int(s) for s in signal.valid_signals()} and number > 0:
            return number
        raise InvalidArgument(field, f"{text} is not a signal number")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") and name[9:].isdigit():
        # signal(7): real-time signals are named relative to SIGRTMIN.
        number = signal.SIGRTMIN + int(name[9:])
        if number <= signal.SIGRTMAX:
            return number
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgument(field, f"unknown signal {value!r}") from None


def catches(pid: int, signo: int) -> bool:
    """Whether a process has a handler for a signal (``SigCgt`` in /proc/PID/status).

    pid_namespaces(7): the init of a PID namespace only gets the signals it
    has a handler for; the kernel drops the others, even from an ancestor
    namespace (SIGKILL and SIGSTOP excepted).
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signo - 1)))
    except OSError:
        pass
    return False
