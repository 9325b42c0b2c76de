"""The escape suite: from inside a default container, each attempt must fail.

In the style of runc's integration tests (tests/integration/*.bats): run a
real container that tries, and check from both sides that it did not work.
These hold with the host's root filesystem (no image); the read-only root
and per-container files come with the root-filesystem issue.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import logs, run

#: Docker's 14 default capabilities as /proc/PID/status prints them.
DOCKER_DEFAULT_CAPS = "00000000a80425fb"
PY = "/usr/bin/python3"


def attempt(
    client: httpx.Client, script: str, syscalls: bool = False, **spec: object
) -> tuple[int, str]:
    """Run a Python script in a container: (exit code, stdout+stderr).

    With ``syscalls`` the script starts with ``SYSCALL_PRELUDE``."""
    code = (SYSCALL_PRELUDE if syscalls else "") + textwrap.dedent(script)
    container = run(client, [PY, "-c", code], **spec)
    assert container["error"] is None, container["error"]
    return int(container["exit_code"]), logs(client, str(container["id"]))


def shell(client: httpx.Client, command: str, **spec: object) -> tuple[int, str]:
    container = run(client, ["sh", "-c", command], **spec)
    assert container["error"] is None, container["error"]
    return int(container["exit_code"]), logs(client, str(container["id"]))


#: A prelude for scripts that make raw syscalls: ``call(name, *args)`` prints
#: and returns the errno (0 on success).
SYSCALL_PRELUDE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {"reboot": 169, "init_module": 175, "finit_module": 313, "ptrace": 101,
      "settimeofday": 164, "unshare": 272, "mount": 165, "clone": 56}
def call(name, *args):
    argv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    result = libc.syscall(NR[name], *argv)
    err = ctypes.get_errno() if result == -1 else 0
    print(name, result, err, os.strerror(err) if err else "")
    return err
"""


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


@pytest.fixture(autouse=True)
def _x86_64_only() -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("the raw syscall numbers in these scripts are x86_64's")


def test_status_shows_reduced_privileges(client: httpx.Client) -> None:
    code, out = shell(client, "cat /proc/self/status")
    assert code == 0
    status = status_fields(out)
    assert status["CapBnd"] == DOCKER_DEFAULT_CAPS
    assert status["CapEff"] == DOCKER_DEFAULT_CAPS
    assert status["CapPrm"] == DOCKER_DEFAULT_CAPS
    assert status["CapInh"] == "0000000000000000"
    assert status["CapAmb"] == "0000000000000000"
    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "1"


def test_mount_tmpfs_fails(client: httpx.Client, tmp_path: os.PathLike[str]) -> None:
    code, out = shell(client, f"mount -t tmpfs none {tmp_path} && echo MOUNTED")
    assert code != 0 and "MOUNTED" not in out
    code, out = attempt(
        client,
        f"raise SystemExit(call('mount', b'none', b'{tmp_path}', b'tmpfs', 0, 0))",
        syscalls=True,
    )
    assert code == 1, out  # EPERM


def test_unshare_fails(client: httpx.Client) -> None:
    code, out = shell(client, "unshare -r true && echo UNSHARED")
    assert code != 0 and "UNSHARED" not in out
    assert "Operation not permitted" in out
    # clone(2) with a namespace flag is filtered as well as unshare(2).
    code, out = attempt(
        client,
        """
        CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
        errors = [call("unshare", CLONE_NEWUSER)]
        flags = ctypes.c_long(CLONE_NEWUSER | SIGCHLD)
        pid = libc.syscall(NR["clone"], flags, None, None, None, None)
        if pid == 0:
            os._exit(0)  # the filter let it through: the child leaves at once
        errors.append(ctypes.get_errno() if pid == -1 else 0)
        if pid > 0:
            os.waitpid(pid, 0)
        print("errors", errors)
        """,
        syscalls=True,
    )
    assert "errors [1, 1]" in out


#: The syscall probe: x86_64 numbers and arguments that a kernel past the
#: filter would answer with something else than EPERM (EINVAL, EFAULT,
#: EBADF, ENOSYS...) or that need a capability the container lacks as well.
PROBE = {
    "keyctl": (250, [0, 0]),
    "add_key": (248, [0, 0, 0, 0, 0]),
    "bpf": (321, [0, 0, 0]),
    "perf_event_open": (298, [0, 0, -1, -1, 0]),
    "kexec_load": (246, [0, 0, 0, 0]),
    "open_by_handle_at": (304, [-1, 0, 0]),
    "userfaultfd": (323, [0]),
    "unshare": (272, [0x10000000]),  # CLONE_NEWUSER
    "mount": (165, [0, 0, 0, 0, 0]),
    "io_uring_setup": (425, [0, 0]),
    "fsopen": (430, [0, 0]),
    "open_tree": (428, [-1, 0, 0]),
    "move_mount": (429, [-1, 0, -1, 0, 0]),
    "setns": (308, [-1, 0]),
    "pidfd_getfd": (438, [-1, 0, 0]),
    "unknown": (1000, [0]),  # no syscall has this number: not in the profile either
}


def probe(client: httpx.Client, **spec: object) -> dict[str, int]:
    """{name: errno} for each call of ``PROBE``, made from inside a container."""
    code, out = attempt(
        client,
        f"""
        import json
        results = {{}}
        for name, (number, args) in {PROBE!r}.items():
            ctypes.set_errno(0)
            result = libc.syscall(number, *[ctypes.c_long(a) for a in args])
            results[name] = ctypes.get_errno() if result == -1 else 0
        print("PROBE", json.dumps(results))
        """,
        syscalls=True,
        **spec,
    )
    assert code == 0, out
    return json.loads(out.split("PROBE", 1)[1])


def test_syscall_probe_answers_eperm(client: httpx.Client) -> None:
    assert probe(client) == {name: errno.EPERM for name in PROBE}
    # Unconfined, the kernel answers for itself: the EPERMs above are the filter's.
    unconfined = probe(client, seccomp="unconfined")
    assert unconfined["unknown"] == errno.ENOSYS
    assert unconfined["io_uring_setup"] != errno.EPERM
    assert unconfined["setns"] == errno.EBADF


def test_capabilities_open_their_syscalls(client: httpx.Client) -> None:
    # CAP_SYS_ADMIN adds unshare and clone with namespace flags (Docker's profile).
    code, out = shell(
        client, "unshare --uts hostname inner && echo UNSHARED", cap_add=["SYS_ADMIN"]
    )
    assert code == 0 and "UNSHARED" in out, out
    code, out = shell(client, "unshare --uts hostname inner && echo UNSHARED")
    assert code != 0 and "UNSHARED" not in out, out


def test_ordinary_programs_run_under_the_allow_list(client: httpx.Client) -> None:
    # Coreutils, a pipe, a fork/exec per command, threads, sockets, the clock.
    script = (
        "set -e; ls -la / >/dev/null; seq 1 2000 | sort -rn | head -1; date +%Y >/dev/null; "
        "stat / >/dev/null; id -u; cp /etc/hostname /tmp/h && cat /tmp/h >/dev/null; "
        "sleep 0.1 & wait; "
        f"{PY} -c 'import threading, socket, subprocess, time, os; "
        "t = threading.Thread(target=time.sleep, args=(0.01,)); t.start(); t.join(); "
        'a, b = socket.socketpair(); a.send(b"x"); assert b.recv(1) == b"x"; '
        "socket.socket(socket.AF_INET, socket.SOCK_STREAM).close(); "
        'print(subprocess.run(["true"]).returncode, os.cpu_count() > 0)\'; echo OK'
    )
    code, out = shell(client, script)
    assert code == 0 and out.splitlines()[-1] == "OK", out
    assert "2000" in out and "0 True" in out, out
    container = run(
        client, ["sh", "-c", "ls / >/dev/null && ps >/dev/null && echo BUSYBOX"], image="busybox"
    )
    assert logs(client, str(container["id"])).strip() == "BUSYBOX", container


def test_load_module_fails(client: httpx.Client) -> None:
    # No real module is needed: without CAP_SYS_MODULE and past the filter the
    # answer is EPERM before the kernel looks at the image (init_module(2)).
    code, out = attempt(
        client,
        """
        fd = os.open("/bin/true", os.O_RDONLY)
        image = b"\\x7fELF" + bytes(64)
        errors = [call("finit_module", fd, b"", 0), call("init_module", image, len(image), b"")]
        raise SystemExit(0 if errors == [1, 1] else 3)
        """,
        syscalls=True,
    )
    assert code == 0, out


def test_write_proc_sys_kernel_hostname_fails(client: httpx.Client) -> None:
    before = socket.gethostname()
    code, out = shell(client, "echo escaped > /proc/sys/kernel/hostname && echo WROTE")
    assert code != 0 and "WROTE" not in out
    assert socket.gethostname() == before


def test_write_sysrq_trigger_fails(client: httpx.Client) -> None:
    # 'h' only prints the help to the kernel log, should the write go through.
    code, out = shell(client, "echo h > /proc/sysrq-trigger && echo WROTE")
    assert code != 0 and "WROTE" not in out


def test_core_pattern_is_read_only(client: httpx.Client) -> None:
    with open("/proc/sys/kernel/core_pattern") as f:
        before = f.read()
    code, out = shell(client, "echo '|/bin/true' > /proc/sys/kernel/core_pattern && echo WROTE")
    assert code != 0 and "WROTE" not in out
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == before


def test_set_clock_fails(client: httpx.Client) -> None:
    # Set it to now, so that nothing changes should it go through.
    code, out = shell(client, 'date -s "@$(date +%s)" && echo SET')
    assert code != 0 and "SET" not in out
    code, out = attempt(
        client,
        """
        import time
        tv = (ctypes.c_long * 2)(int(time.time()), 0)
        raise SystemExit(call("settimeofday", ctypes.byref(tv), 0))
        """,
        syscalls=True,
    )
    assert code == 1, out


def test_reboot_fails(client: httpx.Client) -> None:
    # LINUX_REBOOT_MAGIC1 with a wrong magic2: a kernel that let us through
    # would answer EINVAL (reboot(2)); we want EPERM, before any check.
    code, out = attempt(
        client,
        "raise SystemExit(call('reboot', 0xfee1dead, 0, 0x1234567, 0))",
        syscalls=True,
    )
    assert code == 1, out


def test_read_kcore_fails(client: httpx.Client) -> None:
    code, out = attempt(
        client,
        """
        try:
            with open("/proc/kcore", "rb") as f:
                data = f.read(4096)
        except OSError as err:
            print("denied", err.errno)
        else:
            print("read", len(data))
            raise SystemExit(0 if not data else 3)
        """,
    )
    assert code == 0, out


@pytest.fixture
def host_sleep() -> object:
    """A host process the container must neither see nor signal."""
    marker = f"{1000 + os.getpid() % 1000}.4321"
    proc = subprocess.Popen(["sleep", marker])
    yield proc, marker
    proc.kill()
    proc.wait()


def test_host_process_is_invisible_and_unsignalable(
    client: httpx.Client, host_sleep: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, marker = host_sleep
    code, out = attempt(
        client,
        f"""
        import os, signal
        seen = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{{entry}}/cmdline", "rb") as f:
                        if f.read() == b"sleep\\x00{marker}\\x00":
                            seen.append(entry)
                except OSError:
                    pass
        print("seen", seen)
        try:
            os.kill({proc.pid}, signal.SIGKILL)
            print("KILLED")
        except ProcessLookupError:
            print("no such process")
        """,
    )
    assert code == 0, out
    assert "seen []" in out and "no such process" in out
    time.sleep(0.1)
    assert proc.poll() is None  # still alive


def test_ptrace_of_host_processes_fails(
    client: httpx.Client, host_sleep: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, _ = host_sleep
    # pid 1 inside is the container's own init, not the host's: the host's
    # init has no pid in this namespace at all, and neither has the sleep.
    code, out = attempt(
        client,
        f"""
        with open("/proc/1/cmdline", "rb") as f:
            print("pid1", f.read().split(b"\\0")[0].decode())
        PTRACE_ATTACH = 16
        raise SystemExit(call("ptrace", PTRACE_ATTACH, {proc.pid}, 0, 0))
        """,
        syscalls=True,
    )
    assert f"pid1 {PY}" in out
    assert code == 3, out  # ESRCH: the host's processes are out of reach
    with open(f"/proc/{proc.pid}/status") as f:
        assert status_fields(f.read())["TracerPid"] == "0"


def test_host_disk_cannot_be_read(client: httpx.Client, tmp_path: os.PathLike[str]) -> None:
    st_dev = os.stat("/").st_dev
    major, minor = os.major(st_dev), os.minor(st_dev)
    # The host's tmp_path, bound in: a host bind has no nodev, unlike the
    # container's own /tmp, so it is the devices cgroup that must say no.
    node = "/tmp/hostdir/disk"
    code, out = attempt(
        client,
        f"""
        import json, os, stat
        results = []
        try:
            os.mknod("{node}", stat.S_IFBLK | 0o600, os.makedev({major}, {minor}))
        except OSError as err:
            results.append(("mknod", err.errno))
        for path in ["{node}"] + [f"/dev/{{n}}" for n in os.listdir("/dev")]:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev({major}, {minor}):
                try:
                    with open(path, "rb") as f:
                        print("READ", path, len(f.read(512)))
                except OSError as err:
                    results.append((path, err.errno))
        print("RESULTS", json.dumps(results))
        """,
        mounts=[{"type": "bind", "source": str(tmp_path), "target": "/tmp/hostdir"}],
    )
    assert code == 0, out
    assert "READ" not in out
    results = json.loads(out.split("RESULTS", 1)[1])
    # Either mknod failed or the node could not be opened; the host's own
    # /dev node (the host root filesystem's /dev) could not be opened either.
    assert results, out
    assert all(err == errno.EPERM for _, err in results), out


def test_other_containers_processes_are_invisible(client: httpx.Client) -> None:
    secret = f"secret-{os.getpid()}"
    victim = client.post(
        "/containers", json={"command": ["sleep", "30"], "env": {"SECRET": secret}}
    ).json()
    try:
        code, out = shell(client, f"grep -l {secret} /proc/*/environ 2>/dev/null; echo done")
        assert code == 0 and secret not in out.replace(f"grep -l {secret}", "")
        assert out.strip() == "done"
    finally:
        client.delete(f"/containers/{victim['id']}", params={"force": "true"})


def test_other_containers_logs_are_unreadable_with_userns(
    client: httpx.Client, service: object
) -> None:
    victim = run(client, ["sh", "-c", "echo top-secret-output"])
    path = f"{service.state_dir}/containers/{victim['id']}/stdout.log"  # type: ignore[attr-defined]
    code, out = shell(client, f"cat {path}", userns=True)
    assert code != 0 and "top-secret-output" not in out
    # The host image hides the state dir (tests/e2e/test_rootfs.py); were it
    # visible, the mapped root could still not read it.
    assert "Permission denied" in out or "No such file or directory" in out


def test_user_runs_without_capabilities(client: httpx.Client) -> None:
    code, out = shell(client, "id -u; id -g; id -G; cat /proc/self/status", user="1000:1001")
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == ["1000", "1001", "1001"]
    status = status_fields(out)
    assert status["CapEff"] == status["CapPrm"] == "0000000000000000"
    assert status["CapBnd"] == DOCKER_DEFAULT_CAPS


def test_cap_drop_and_add(client: httpx.Client, tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "f")
    open(target, "w").close()
    bind = {"type": "bind", "source": str(tmp_path), "target": str(tmp_path)}
    code, out = shell(client, f"chown 1234 {target}", cap_drop=["CHOWN"], mounts=[bind])
    assert code != 0 and "Operation not permitted" in out
    code, out = shell(client, "grep CapEff /proc/self/status", cap_drop=["ALL"], cap_add=["KILL"])
    assert status_fields(out)["CapEff"] == "0000000000000020"


def test_opt_outs_are_explicit(client: httpx.Client) -> None:
    code, out = shell(
        client, "cat /proc/self/status", seccomp="unconfined", no_new_privileges=False
    )
    status = status_fields(out)
    assert status["Seccomp"] == "0" and status["NoNewPrivs"] == "0"
    code, out = shell(client, "cat /proc/self/status", no_new_privileges=False)
    status = status_fields(out)
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "0"


def test_userns_root_is_the_mapped_host_uid(client: httpx.Client) -> None:
    container = client.post("/containers", json={"command": ["sleep", "30"], "userns": True}).json()
    try:
        assert container["status"] == "running", container
        with open(f"/proc/{container['pid']}/status") as f:
            status = status_fields(f.read())
        assert status["Uid"].split() == ["100000"] * 4
        assert status["Gid"].split() == ["100000"] * 4
        with open(f"/proc/{container['pid']}/uid_map") as f:
            assert f.read().split() == ["0", "100000", "65536"]
    finally:
        client.delete(f"/containers/{container['id']}", params={"force": "true"})
    code, out = shell(client, "id -u; cat /proc/self/status", userns=True, user="1000")
    assert out.splitlines()[0] == "1000"


def test_exec_is_confined_like_the_container(client: httpx.Client) -> None:
    st_dev = os.stat("/").st_dev
    container = client.post(
        "/containers", json={"command": ["sleep", "30"], "cap_drop": ["NET_RAW"]}
    ).json()
    try:
        # Exit 0 only if every check holds: the container's reduced sets (its
        # cap_drop included), the filter, no_new_privs, the devices cgroup.
        script = (
            "s=$(cat /proc/self/status); "
            'echo "$s" | grep -q "^CapEff:.00000000a80405fb$" || exit 11; '
            'echo "$s" | grep -q "^CapBnd:.00000000a80405fb$" || exit 12; '
            'echo "$s" | grep -q "^Seccomp:.2$" || exit 13; '
            'echo "$s" | grep -q "^NoNewPrivs:.1$" || exit 14; '
            "unshare -r true 2>/dev/null && exit 15; "
            f"mknod /tmp/exec-disk b {os.major(st_dev)} {os.minor(st_dev)} 2>/dev/null; "
            "head -c 1 /tmp/exec-disk >/dev/null 2>&1 && exit 16; rm -f /tmp/exec-disk; exit 0"
        )
        response = client.post(
            f"/containers/{container['id']}/exec",
            params={"wait": "true"},
            json={"command": ["sh", "-c", script]},
        )
        assert response.status_code == 201, response.text
        assert response.json()["exit_code"] == 0, response.json()
    finally:
        client.delete(f"/containers/{container['id']}", params={"force": "true"})


def test_userns_works_with_cgroup_limits(client: httpx.Client) -> None:
    # The launcher joins the cgroups and writes the id maps before the go
    # byte; the pids limit holds for the mapped root too.
    container = run(
        client,
        ["sh", "-c", "for i in 1 2 3 4 5 6; do sleep 0.2 & done; wait; echo end"],
        userns=True,
        limits={"pids": 4},
    )
    out = logs(client, str(container["id"]))
    assert "Cannot fork" in out or "can't fork" in out, out
    assert container["memory_peak_bytes"], container


def test_an_exec_in_a_userns_container_gets_the_containers_capabilities(
    client: httpx.Client,
) -> None:
    # The exec joins the container's user namespace, where it holds every
    # capability before it keeps the container's (runtime/child.py, _FULL_SET).
    container = client.post(
        "/containers", json={"command": ["sleep", "30"], "userns": True, "cap_add": ["NET_ADMIN"]}
    ).json()
    try:
        response = client.post(
            f"/containers/{container['id']}/exec",
            params={"wait": "true"},
            json={"command": ["sh", "-c", "grep -E '^Cap(Eff|Prm)' /proc/self/status"]},
        )
        assert response.status_code == 201, response.text
        exec_id = response.json()["id"]
        out = client.get(f"/execs/{exec_id}/logs").text
        with_net_admin = f"{int(DOCKER_DEFAULT_CAPS, 16) | 1 << 12:016x}"
        assert status_fields(out)["CapEff"] == status_fields(out)["CapPrm"] == with_net_admin
    finally:
        client.delete(f"/containers/{container['id']}", params={"force": "true"})


def test_userns_with_an_image_overlay(client: httpx.Client, service: object) -> None:
    # The image's files belong to the container's root (a shifted copy of
    # the image), so it can change them; on the host, what it wrote belongs
    # to the mapped uid, and the image itself is untouched.
    script = (
        "echo changed >> /etc/passwd && touch /newfile && ls -ln /etc/passwd /newfile; "
        "grep -E '^(Uid|CapEff)' /proc/self/status"
    )
    container = run(client, ["sh", "-c", script], image="busybox", userns=True)
    out = logs(client, str(container["id"]))
    assert container["exit_code"] == 0, out
    owners = [line.split()[2:4] for line in out.splitlines() if line.startswith("-")]
    assert owners == [["0", "0"], ["0", "0"]], out
    assert status_fields(out)["CapEff"] == DOCKER_DEFAULT_CAPS
    cdir = Path(service.state_dir) / "containers" / str(container["id"])  # type: ignore[attr-defined]
    upper = cdir / "layer" / "rw" / "upper"
    for name in ("newfile", "etc/passwd"):
        st = os.stat(upper / name)
        assert (st.st_uid, st.st_gid) == (100000, 100000), name
    image = client.get("/images").json()
    assert any(i["name"] == "busybox" for i in image)
    again = run(client, ["sh", "-c", "tail -1 /etc/passwd; ls /newfile"], image="busybox")
    assert "changed" not in logs(client, str(again["id"]))  # the image is unchanged
    # Nothing of it stays mounted on the host.
    with open("/proc/self/mountinfo") as f:
        assert str(container["id"]) not in f.read()
