"""Each container's root: overlay isolation, the read-only host, escapes that fail,
/proc, /sys, /dev, masked paths, workdir, read_only, and nothing left after delete."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import uuid
from pathlib import Path

import httpx

from runtime.layout import Layout
from tests.e2e.conftest import ROOT, Service, free_port, logs, run
from tests.e2e.helpers import create, unique, wait, wait_for_output

#: A file that exists on the host and in no image.
HOST_FILE = str(Path(__file__).resolve())


def sh(client: httpx.Client, script: str, **spec: object) -> tuple[int, str]:
    container = run(client, ["sh", "-c", script], **spec)
    assert container["error"] is None, container["error"]
    return int(container["exit_code"]), logs(client, str(container["id"]))


def test_a_write_stays_in_its_container(client: httpx.Client, service: Service) -> None:
    marker = unique("marker")
    code, out = sh(client, f"echo secret > /{marker} && cat /{marker}", image="busybox")
    assert (code, out) == (0, "secret\n")
    code, out = sh(client, f"cat /{marker}", image="busybox")
    assert code != 0 and "No such file" in out
    assert not (service.state_dir / "images/busybox/rootfs" / marker).exists()
    assert not os.path.exists(f"/{marker}")
    # The host image: /tmp is each container's own.
    code, _ = sh(client, f"echo secret > /tmp/{marker}")
    assert code == 0
    code, out = sh(client, f"cat /tmp/{marker}")
    assert code != 0 and "No such file" in out
    assert not os.path.exists(f"/tmp/{marker}")


def test_the_host_image_cannot_write_the_hosts_files(client: httpx.Client) -> None:
    with open("/etc/hostname", "rb") as f:
        before = f.read()
    code, out = sh(
        client,
        "echo x >> /etc/hostname; touch /etc/planted; mkdir /root/planted; rm -f /bin/sh; "
        "echo x > /usr/planted; echo done",
    )
    assert out.count("Read-only file system") == 5, out
    with open("/etc/hostname", "rb") as f:
        assert f.read() == before
    for path in ("/etc/planted", "/root/planted", "/usr/planted"):
        assert not os.path.exists(path)
    assert os.path.exists("/bin/sh")


def test_the_hosts_tools_work_in_the_host_image(client: httpx.Client) -> None:
    code, out = sh(client, "python3 -c 'print(\"ok\")' && ls /usr/bin | grep -c . ")
    assert code == 0
    assert out.splitlines()[0] == "ok" and int(out.splitlines()[1]) > 50


def test_proc_1_root_dotdot_and_symlinks_do_not_reach_the_host(client: httpx.Client) -> None:
    script = f"""
        ls / > /tmp/root; ls /proc/1/root/ > /tmp/p1; cmp /tmp/root /tmp/p1 && echo same-root
        cd /../../../..; pwd
        ln -s ../../../../../../.. /tmp/up; ln -s / /tmp/abs
        for p in /proc/1/root{HOST_FILE} /proc/self/root{HOST_FILE} \\
                 /proc/1/cwd/../../..{HOST_FILE} /tmp/up{HOST_FILE} /tmp/abs{HOST_FILE} \\
                 ../../..{HOST_FILE}; do
            cat "$p" >/dev/null 2>&1 && echo "REACHED $p"
        done
        echo checked
    """
    code, out = sh(client, script, image="busybox")
    assert "same-root\n/\n" in out
    assert "REACHED" not in out and out.endswith("checked\n"), out


def test_an_absolute_symlink_in_an_image_resolves_inside_it(
    client: httpx.Client, service: Service
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(service.state_dir / "images/busybox/rootfs", arcname=".")
        link = tarfile.TarInfo("hostfile")
        link.type, link.linkname = tarfile.SYMTYPE, HOST_FILE
        tar.addfile(link)
    name = unique("links")
    response = client.post("/images", params={"name": name}, content=buffer.getvalue())
    assert response.status_code == 201, response.text
    container = run(client, ["cat", "/hostfile"], image=name)
    assert container["exit_code"] != 0
    assert "No such file" in logs(client, str(container["id"]))
    assert client.delete(f"/containers/{container['id']}").status_code == 204
    assert client.delete(f"/images/{name}").status_code == 204


def test_the_state_dir_is_hidden_in_the_host_image(client: httpx.Client, service: Service) -> None:
    db = service.state_dir / "mydocker.db"
    assert db.exists()
    code, out = sh(
        client, f"cat {db} /proc/1/root{db} 2>&1 | head -c 300; ls -A {service.state_dir}"
    )
    assert "SQLite" not in out
    assert out.count("No such file") >= 2


def test_a_state_dir_outside_tmp_is_covered_by_an_empty_tmpfs() -> None:
    # The shared service's state dir is under /tmp, which the host image's own
    # /tmp hides anyway; this one is not, so only the "hide" step covers it.
    base = ROOT / ".state" / f"hide-test-{uuid.uuid4().hex[:8]}"
    base.mkdir(parents=True)
    state = base / "state"
    svc = Service(state_dir=state, port=free_port())
    try:
        svc.start()
        with httpx.Client(base_url=svc.url, timeout=60) as client:
            code, out = sh(client, f"ls -A {state}; cat {state}/mydocker.db; echo end")
            assert out.startswith("end\n"), out  # an empty directory: nothing listed
            assert "No such file" in out
            assert (state / "mydocker.db").exists()
    finally:
        svc.close()
        shutil.rmtree(base, ignore_errors=True)


def test_masked_and_read_only_paths(client: httpx.Client) -> None:
    script = """
        for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
            [ -e $f ] && echo "$f $(wc -c < $f)"
        done
        for d in /proc/acpi /proc/scsi /sys/firmware; do [ -d $d ] && echo "$d [$(ls -A $d)]"; done
        echo 1 > /proc/sys/kernel/panic || echo refused-sys
        echo h > /proc/sysrq-trigger || echo refused-sysrq
        touch /sys/kernel/planted || echo refused-sysfs
    """
    for image in ("host", "busybox"):
        code, out = sh(client, script, image=image)
        for line in out.splitlines():
            if line.startswith("/proc/") and not line.startswith(("/proc/acpi", "/proc/scsi")):
                assert line.endswith(" 0"), (image, line)
            if line.startswith(("/proc/acpi", "/proc/scsi", "/sys/firmware")):
                assert line.endswith("[]"), (image, line)
        assert "/sys/firmware []" in out
        assert "refused-sys\n" in out and "refused-sysfs" in out, out
        assert out.count("Read-only file system") >= 2, out


def test_a_minimal_dev(client: httpx.Client) -> None:
    script = """
        ls -A /dev | tr '\\n' ' '; echo
        echo x > /dev/null && head -c 4 /dev/urandom | wc -c
        ls -A /dev/pts | tr '\\n' ' '; echo
        grep -E ' /dev/(pts|shm) ' /proc/self/mountinfo | cut -d' ' -f5,9
    """
    for image in ("host", "busybox"):
        code, out = sh(client, script, image=image)
        lines = out.splitlines()
        assert set(lines[0].split()) == {
            "null", "zero", "full", "random", "urandom", "tty",
            "pts", "shm", "ptmx", "fd", "stdin", "stdout", "stderr",
        }, (image, out)  # fmt: skip
        assert lines[1] == "4"
        assert lines[2].split() == ["ptmx"]  # a new devpts instance: no host ptys
        assert "/dev/pts devpts" in out and "/dev/shm tmpfs" in out


DEVICE_CHECKS = """
    for d in null zero full random urandom tty; do stat -c '%n %t:%T %a' /dev/$d; done
    [ -c /dev/null ] && [ -c /dev/tty ] && echo character-devices
    echo x > /dev/null && echo wrote-null
    head -c 4 /dev/zero | wc -c; head -c 4 /dev/random | wc -c; head -c 4 /dev/urandom | wc -c
    echo x 2>/dev/null > /dev/full || echo full-refused
"""


def test_the_dev_nodes_work_with_and_without_a_user_namespace(client: httpx.Client) -> None:
    # Made with mknod(2) outside a user namespace, bound from the host's
    # inside one (runtime/rootfs.py): the same nodes either way.
    for image in ("host", "busybox"):
        for userns in (False, True):
            code, out = sh(client, DEVICE_CHECKS, image=image, userns=userns)
            assert code == 0 and out.splitlines() == [
                "/dev/null 1:3 666",
                "/dev/zero 1:5 666",
                "/dev/full 1:7 666",
                "/dev/random 1:8 666",
                "/dev/urandom 1:9 666",
                "/dev/tty 5:0 666",
                "character-devices",
                "wrote-null",
                "4",
                "4",
                "4",
                "full-refused",
            ], (image, userns, out)


def test_dev_tty_is_the_containers_terminal(client: httpx.Client) -> None:
    script = "echo via-dev-tty > /dev/tty; tty"
    for userns in (False, True):
        container = run(client, ["sh", "-c", script], tty=True, userns=userns)
        assert container["exit_code"] == 0, container
        out = logs(client, str(container["id"]))
        assert "via-dev-tty" in out and "/dev/pts/0" in out, (userns, out)
        # Without a terminal, /dev/tty has no controlling tty to stand for.
        code, out = sh(client, "echo x > /dev/tty 2>&1 || echo refused", userns=userns)
        assert "refused" in out and "No such device or address" in out, (userns, out)


def test_workdir_is_created_inside_the_root(client: httpx.Client) -> None:
    code, out = sh(client, "pwd", image="busybox", workdir="/new/deep/dir")
    assert (code, out) == (0, "/new/deep/dir\n")
    code, out = sh(client, "pwd", workdir="/tmp/made/here")  # host image: under /tmp
    assert (code, out) == (0, "/tmp/made/here\n")


def test_read_only_root_has_no_writable_layer(client: httpx.Client, service: Service) -> None:
    container = run(
        client,
        ["sh", "-c", "touch /x; echo y > /scratch/y && cat /scratch/y; pwd"],
        image="busybox",
        read_only=True,
        workdir="/work/dir",
        mounts=[{"type": "tmpfs", "target": "/scratch"}],
    )
    out = logs(client, str(container["id"]))
    assert "Read-only file system" in out and "y\n/work/dir\n" in out
    layer = service.state_dir / "containers" / str(container["id"]) / "layer"
    assert [p for p in layer.rglob("*") if p.is_file()] == []


def test_userns_overlay_root_writes_as_the_mapped_root(
    client: httpx.Client, service: Service
) -> None:
    container = run(
        client,
        ["sh", "-c", "id -u; echo hi > /x; echo more >> /etc/passwd; tail -1 /etc/passwd"],
        image="busybox",
        userns=True,
    )
    assert logs(client, str(container["id"])) == "0\nmore\n"
    upper = service.state_dir / "containers" / str(container["id"]) / "layer/rw/upper"
    assert (upper / "x").stat().st_uid == 100000  # the service's default --userns-range
    assert (upper / "etc/passwd").stat().st_uid == 100000


def _host_mount_lines(service: Service) -> list[str]:
    """Mounts under the state dir in the host's namespace, but the service's
    own tmpfs (its pid files', runtime/rundir.py; the /etc files')."""
    layout = Layout.of(str(service.state_dir))
    own = {layout.run_dir, layout.etc_files}
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(service.state_dir) in line and line.split()[4] not in own]


def test_deleting_leaves_no_mount_and_no_files(
    client: httpx.Client, service: Service, tmp_path: Path
) -> None:
    mounts = [
        {"type": "tmpfs", "target": "/tmp/scratch", "size_bytes": 1 << 20},
        {"type": "bind", "source": str(tmp_path), "target": "/tmp/bound"},
    ]
    ids = []
    for image in ("busybox", "host"):
        container = create(client, ["sh", "-c", "echo up; sleep 60"], image=image, mounts=mounts)
        wait_for_output(client, container["id"], "up")
        ids.append(str(container["id"]))
        # The mounts are the container's own: none is in the host's namespace.
        assert _host_mount_lines(service) == []
        with open(f"/proc/{container['pid']}/mountinfo") as f:
            inside = f.read()
        assert " /tmp/scratch " in inside and " /tmp/bound " in inside
        if image == "busybox":
            assert "overlay" in inside
    for ref in ids:
        client.post(f"/containers/{ref}/kill")
        wait(client, ref)
        assert client.delete(f"/containers/{ref}").status_code == 204
        assert not (service.state_dir / "containers" / ref).exists()
    with open("/proc/self/mountinfo") as f:
        host = f.read()
    assert not any(ref in host for ref in ids)
    assert _host_mount_lines(service) == []


def test_the_hosts_dev_nodes_are_untouched() -> None:
    # The container's /dev binds the host's nodes: after all the tests above,
    # they must still be the same character devices.
    for name, (major, minor) in {"null": (1, 3), "zero": (1, 5), "urandom": (1, 9)}.items():
        st = os.stat(f"/dev/{name}")
        assert stat.S_ISCHR(st.st_mode), name
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor)
