"""runtime.child: the child's steps before execve, tested in forked processes.

The mounts, hostname and loopback steps need root and new namespaces; the
e2e tests cover them.  Here: exec resolution (126/127), the error report,
the go byte, fd closing and signal reset.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from runtime import child
from runtime.exitstatus import from_wait_status
from runtime.spec import ContainerSpec


def in_child(body: Callable[[], None]) -> tuple[int, dict[str, object] | None, bytes]:
    """Run ``body`` in a forked child as ``child.run`` would: a SetupError is
    reported on a close-on-exec pipe.  Returns (exit code, report, stdout)."""
    error_read, error_write = os.pipe2(os.O_CLOEXEC)
    out_read, out_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.dup2(out_write, 1)
            body()
            os._exit(0)
        except child.SetupError as err:
            child.report(error_write, err)
            os._exit(err.exit_code)
        finally:
            os._exit(99)
    os.close(error_write)
    os.close(out_write)
    with os.fdopen(out_read, "rb") as f:
        output = f.read()
    with os.fdopen(error_read, "rb") as f:
        report = child.parse_report(f.read())
    _, status = os.waitpid(pid, 0)
    return from_wait_status(status).exit_code, report, output


def _exec(command: list[str], **env: str) -> tuple[int, dict[str, object] | None, bytes]:
    spec = ContainerSpec(command=tuple(command), hostname="h", env=env)
    return in_child(lambda: child._exec(list(spec.command), spec.environ()))


def _script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def test_exec_success_replaces_the_process() -> None:
    code, report, out = _exec(["sh", "-c", "echo hi; exit 3"])
    assert (code, report, out) == (3, None, b"hi\n")


def test_exec_passes_the_environment() -> None:
    code, _, out = _exec(["sh", "-c", 'echo "$A|$HOSTNAME|$PATH"'], A="1", PATH="/bin:/usr/bin")
    assert (code, out) == (0, b"1|h|/bin:/usr/bin\n")


def test_missing_absolute_path_is_127() -> None:
    code, report, _ = _exec(["/nonexistent/cmd"])
    assert code == child.EXIT_NOT_FOUND == 127
    assert report is not None
    assert report["exit_code"] == 127
    assert report["errno"] == errno.ENOENT
    assert report["message"] == "exec /nonexistent/cmd: No such file or directory"


def test_name_not_in_path_is_127_and_names_the_path() -> None:
    code, report, _ = _exec(["no-such-command-xyz"], PATH="/nowhere:/bin")
    assert code == 127
    assert report is not None
    assert report["message"] == "exec no-such-command-xyz: not found in PATH (/nowhere:/bin)"


def test_not_executable_file_is_126(tmp_path: Path) -> None:
    script = _script(tmp_path / "script", "exit 0", mode=0o644)
    code, report, _ = _exec([str(script)])
    assert code == child.EXIT_NOT_EXECUTABLE == 126
    assert report is not None
    assert report["errno"] == errno.EACCES
    assert report["message"] == f"exec {script}: Permission denied"


def test_directory_is_126(tmp_path: Path) -> None:
    code, report, _ = _exec([str(tmp_path)])
    assert code == 126
    assert report is not None and str(tmp_path) in str(report["message"])


def test_unknown_binary_format_is_126(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x7fELF\x00not really")
    garbage.chmod(0o755)
    code, report, _ = _exec([str(garbage)])
    assert code == 126
    assert report is not None and report["errno"] == errno.ENOEXEC


def test_path_search_skips_a_non_executable_match(tmp_path: Path) -> None:
    # execvp(3): EACCES in one directory does not stop the search.
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _script(first / "tool", "exit 1", mode=0o644)
    _script(second / "tool", "exit 9")
    code, report, _ = _exec(["tool"], PATH=f"{first}:{second}")
    assert (code, report) == (9, None)


def test_path_search_reports_126_when_only_non_executable_matches(tmp_path: Path) -> None:
    _script(tmp_path / "tool", "exit 0", mode=0o644)
    code, report, _ = _exec(["tool"], PATH=f"/nowhere:{tmp_path}")
    assert code == 126
    assert report is not None
    assert report["message"] == f"exec {tmp_path}/tool: Permission denied"


def test_an_empty_path_entry_means_the_current_directory(tmp_path: Path) -> None:
    _script(tmp_path / "here", "exit 4")

    def body() -> None:
        os.chdir(tmp_path)
        spec = ContainerSpec(command=("here",), hostname="h", env={"PATH": ":/bin"})
        child._exec(list(spec.command), spec.environ())

    assert in_child(body)[:2] == (4, None)


def test_parse_report() -> None:
    assert child.parse_report(b"") is None
    assert child.parse_report(b'{"step": "x", "exit_code": 125}') == {
        "step": "x",
        "exit_code": 125,
    }
    garbled = child.parse_report(b"{half")
    assert garbled is not None and garbled["exit_code"] == 125


def test_setup_error_message_names_the_step() -> None:
    err = child.SetupError("mount /proc", errno.EPERM)
    assert str(err) == "mount /proc: Operation not permitted"
    assert (err.step, err.errno, err.exit_code) == ("mount /proc", errno.EPERM, 125)
    assert str(child.SetupError("exec x", errno.ENOENT, "custom", 127)) == "exec x: custom"


def test_steps_are_named_in_order() -> None:
    spec = ContainerSpec(command=("true",), hostname="h", workdir="/srv")
    fds = child.ChildFds(3, 4, 5, 6, 7)
    names = [name for name, _ in child._steps(spec, fds)]
    assert names.index("make mounts private") < names.index("mount /proc")
    assert names.index("mount /proc") < names.index("sethostname")
    assert "chdir /srv" in names
    assert names.index("set up stdio") < names.index("close fds") < names.index("reset signals")
    # Privileges go last, the seccomp filter at the very end (issue 5).
    assert names.index("reset signals") < names.index("drop bounding capabilities")
    assert names.index("switch to user 0:0") < names.index("set capabilities")
    assert names[-2:] == ["set no_new_privs", "load seccomp filter"]
    assert "set controlling terminal" not in names


def test_a_tty_is_opened_in_the_child_after_the_mounts() -> None:
    spec = ContainerSpec(command=("sh",), hostname="h", tty=True)
    names = [name for name, _ in child._steps(spec, child.ChildFds(3, 4, -1, -1, -1, console=5))]
    assert names.index("mount /proc") < names.index("open a terminal")
    assert names.index("open a terminal") < names.index("set controlling terminal")
    assert names.index("set controlling terminal") < names.index("set up stdio")


def test_wait_for_go_needs_the_byte_not_just_eof() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, child.GO_BYTE)
    assert child._wait_for_go(read_end)
    os.close(write_end)
    assert not child._wait_for_go(read_end)  # EOF: the parent gave up
    os.close(read_end)


def test_a_child_whose_launcher_died_before_the_joined_byte_exits_without_the_command() -> None:
    # EOF where the joined byte should come (the launcher died, e.g. after
    # the go byte and before the pid file): exit 125, run nothing more.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        child.wait_for_joined(read_end)
        os._exit(0)  # the command would run from here
    os.close(read_end)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == child.EXIT_SETUP_FAILED
    read_end, write_end = os.pipe()
    os.write(write_end, child.JOINED_BYTE)
    child.wait_for_joined(read_end)  # the byte: it returns
    os.close(read_end)
    os.close(write_end)


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def test_close_fds_keeps_only_stdio_and_the_error_pipe() -> None:
    def body() -> None:
        extra = [os.open(os.devnull, os.O_RDONLY) for _ in range(5)]
        keep = extra[2]
        child.close_fds(keep=keep)
        left = [fd for fd in range(256) if _is_open(fd)]
        os.write(1, f"{left} {keep}".encode())

    code, _, out = in_child(body)
    left, keep = out.decode().rsplit(" ", 1)
    assert code == 0
    assert left == str([0, 1, 2, int(keep)])


def test_reset_signals_clears_mask_and_dispositions() -> None:
    def body() -> None:
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
        child.reset_signals()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        dispositions = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGPIPE)]
        os.write(1, repr((sorted(blocked), dispositions == [signal.SIG_DFL] * 2)).encode())

    code, _, out = in_child(body)
    assert (code, out) == (0, b"([], True)")


def test_reset_signals_leaves_nothing_blocked_or_ignored_for_the_kernel() -> None:
    # /proc/self/status (proc(5)): the kernel's own masks, not CPython's view.
    # Caught signals (SigCgt) need no reset: execve(2) makes them SIG_DFL.
    def masks() -> dict[str, int]:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        return {k: int(fields[k], 16) for k in ("SigBlk", "SigIgn")}

    def body() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
        before = masks()
        child.reset_signals()
        after = masks()
        os.write(1, repr((before["SigIgn"] != 0, after)).encode())

    code, _, out = in_child(body)
    assert code == 0
    assert out == repr((True, {"SigBlk": 0, "SigIgn": 0})).encode()


def test_reset_signals_resets_glibcs_own_signals_that_posix_spawn_left_ignored() -> None:
    # glibc's posix_spawn(3) sets its own signals (32, 33) to SIG_IGN in the
    # child, which keeps them across execve(2): the pool's zygote, spawned
    # that way, handed them to every container it cloned.
    script = (
        "from runtime import child\n"
        "def ignored():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('SigIgn:'):\n"
        "            return int(line.split()[1], 16)\n"
        "before = ignored()\n"
        "child.reset_signals()\n"
        "print(before, ignored())\n"
    )
    read, write = os.pipe()
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-c", script],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, write, 1)],
        )
        os.close(write)
        _, status = os.waitpid(pid, 0)
        out = os.read(read, 1000).decode().split()
    finally:
        os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    nptl = (1 << 31) | (1 << 32)
    before, after = int(out[0]), int(out[1])
    assert before & nptl == nptl
    assert after & nptl == 0


def test_stdio_wires_the_three_fds(tmp_path: Path) -> None:
    target = tmp_path / "out"

    def body() -> None:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        child._stdio(child.ChildFds(-1, -1, null, fd, fd))
        assert os.get_inheritable(1)
        assert stat.S_ISCHR(os.fstat(0).st_mode)
        os.write(1, b"to the file")

    assert in_child(body)[0] == 0
    assert target.read_bytes() == b"to the file"


def test_text_file_busy_is_126_with_the_real_reason(tmp_path: Path) -> None:
    # execve(2) ETXTBSY: the file is open for writing.  The command was found
    # but cannot be executed: 126 and "Text file busy", not "not found".
    binary = tmp_path / "busy"
    binary.write_bytes(Path("/bin/true").read_bytes())
    binary.chmod(0o755)

    def body(command: str, path: str) -> Callable[[], None]:
        def run() -> None:
            os.open(binary, os.O_WRONLY)  # kept open across the execve attempt
            child._exec([command], {"PATH": path})

        return run

    for command, path in [(str(binary), "/bin"), ("busy", f"/nowhere:{tmp_path}:/bin")]:
        code, report, _ = in_child(body(command, path))
        assert code == 126, command
        assert report is not None
        assert report["errno"] == errno.ETXTBSY
        assert report["message"] == f"exec {binary}: Text file busy"


def test_an_empty_command_name_is_not_found() -> None:
    code, report, _ = in_child(lambda: child._exec([""], {"PATH": "/bin"}))
    assert code == 127
    assert report is not None and report["message"] == "exec '': empty command name"


def test_the_launcher_prepares_the_steps_the_child_runs() -> None:
    # child.prepare runs in the launcher before clone(2): the same steps,
    # argv and environment the child would build, which run() then uses
    # instead of building its own.
    spec = ContainerSpec(command=("printf", "%s", "$X"), hostname="h", env={"X": "y"})
    fds = child.ChildFds(3, 4, -1, -1, -1)
    prepared = child.prepare(spec, fds)
    assert [name for name, _ in prepared.steps] == [name for name, _ in child._steps(spec, fds)]
    assert prepared.argv == ["printf", "%s", "$X"] and prepared.environ == spec.environ()

    sync_read, sync_write = os.pipe()
    os.write(sync_write, child.GO_BYTE)

    def say() -> None:
        os.write(1, b"ran ")

    def body() -> None:
        said = child.Prepared([("say", say)], ["/bin/echo", "it"], {})
        child.run(spec, child.ChildFds(sync_read, -1, -1, -1, -1), None, said)

    code, report, out = in_child(body)
    os.close(sync_read)
    os.close(sync_write)
    assert (code, report, out) == (0, None, b"ran it\n")
