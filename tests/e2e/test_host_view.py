"""The ``host`` image shows the host's programs, never its data (runtime/images/hostview.py).

Files are planted the way a host has them — 0600 in /root, 0644 in /srv,
/opt, /home/<user>, /var/lib/<app> and /etc, a 0700 directory in /etc — and
no default container reads any of them, by path or by walking the tree,
with or without a user namespace; the checkout and the state dir are not
there either; the host's tools still run; mount targets and workdirs may be
any path outside the read-only host directories; ``--host-image-paths``
adds a directory; ``docker run host`` behaves the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ROOT, Service, free_port, logs, run
from tests.e2e.docker_helpers import run_docker


@dataclass(frozen=True)
class Planted:
    marker: str
    #: Host files with ``marker`` in them that no container may read.
    secret: tuple[str, ...]
    #: Planted in /etc while the service runs, 0600 and in a 0700 directory.
    etc_secret: tuple[str, ...]
    #: A 0644 file planted in /etc: the world may read it, so containers may.
    etc_public: str


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text)
    path.chmod(mode)


@pytest.fixture(scope="module")
def planted() -> Iterator[Planted]:
    tag = uuid.uuid4().hex[:10]
    marker = f"PLANTED-{tag}"
    name = f"mydocker-plant-{tag}"
    made: list[Path] = []
    secret: list[str] = []

    def plant(directory: Path, mode: int, dir_mode: int | None = None) -> None:
        if dir_mode is not None:
            directory.mkdir(mode=dir_mode)
            directory.chmod(dir_mode)
            made.append(directory)
        path = directory / name
        _write(path, marker, mode)
        made.append(path)
        secret.append(str(path))

    try:
        plant(Path("/root"), 0o600)
        for parent in ("/srv", "/opt"):
            Path(parent).mkdir(exist_ok=True)
            plant(Path(parent), 0o644)
        plant(Path("/home") / f"user-{tag}", 0o644, dir_mode=0o755)
        plant(Path("/var/lib") / f"app-{tag}", 0o644, dir_mode=0o755)
        # Planted after the shared service started: the masks follow /etc.
        etc_file = Path("/etc") / name
        _write(etc_file, marker, 0o600)
        etc_dir = Path("/etc") / f"{name}.d"
        etc_dir.mkdir(mode=0o700)
        etc_dir.chmod(0o700)
        _write(etc_dir / "inside", marker, 0o644)
        public = Path("/etc") / f"{name}.public"
        _write(public, f"PUBLIC-{tag}", 0o644)
        made += [etc_file, etc_dir, public]
        yield Planted(marker, tuple(secret), (str(etc_file), str(etc_dir / "inside")), str(public))
    finally:
        for path in reversed(made):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def sh(client: httpx.Client, script: str, **spec: object) -> tuple[int, str]:
    container = run(client, ["sh", "-c", script], **spec)
    assert container["error"] is None, container["error"]
    return int(container["exit_code"]), logs(client, str(container["id"]))


@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
def test_no_planted_host_file_is_readable_by_path(
    client: httpx.Client, service: Service, planted: Planted, userns: bool
) -> None:
    paths = [
        *planted.secret,
        *planted.etc_secret,
        "/etc/shadow",
        "/etc/gshadow",
        str(ROOT / "README.md"),
        str(ROOT / "pyproject.toml"),
        str(service.state_dir / "mydocker.db"),
    ]
    # A masked file reads as empty (/dev/null over it); the others are absent.
    script = "; ".join(f"echo == {p}; cat {p} 2>/dev/null | head -c 300; echo" for p in paths)
    code, out = sh(client, f"{script}; cat {planted.etc_public}; echo; echo end", userns=userns)
    assert code == 0
    assert planted.marker not in out, out
    for content in ("root:", "# mydocker", 'name = "mydocker"', "SQLite format"):
        assert content not in out, out
    assert f"PUBLIC-{planted.marker.split('-')[1]}" in out  # what the world may read stays
    assert out.endswith("end\n")


def test_no_planted_file_is_found_by_walking(
    client: httpx.Client, service: Service, planted: Planted
) -> None:
    name = os.path.basename(planted.secret[0])
    script = (
        # Every name in the tree but /proc and /sys, then every file's content
        # outside /usr (the host's programs, read-only and slow to read whole).
        f"find / \\( -path /proc -o -path /sys \\) -prune -o -name '*{name}*' -print "
        "2>/dev/null; "
        f"grep -rls {planted.marker} /etc /root /home /srv /opt /var /tmp /run /mnt; "
        "ls -A / /root /home /var; echo end"
    )
    code, out = sh(client, script)
    found = [line for line in out.splitlines() if name in line]
    # Only the masked /etc entries keep their names (covered, not removed).
    assert all(line.startswith("/etc/") for line in found), found
    assert planted.marker not in out
    top = out.split("/:\n")[1].split("\n\n")[0].split()
    assert set(top) <= {
        "bin", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "proc", "root",
        "run", "sbin", "sys", "tmp", "usr", "var",
    }, top  # fmt: skip
    for gone in ("srv", "opt", "work", "mnt", "boot"):
        assert gone not in top
    assert "/root:\n\n" in out and "/home:\n\n" in out
    assert out.split("/var:\n")[1].split()[:3] == ["cache", "log", "tmp"]
    assert out.endswith("end\n")


def test_the_hosts_tools_still_run(client: httpx.Client) -> None:
    script = (
        "python3 -c 'import json, ssl, sqlite3; print(\"py-ok\")'; "
        "ls /usr/bin | wc -l; sort --version | head -1; "
        "ldd /usr/bin/ls | grep -c ld-linux; id -un; echo end"
    )
    code, out = sh(client, script)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "py-ok"
    assert int(lines[1]) > 50
    assert "coreutils" in lines[2]
    assert int(lines[3]) >= 1  # the dynamic loader is there
    assert lines[4] == "root"  # /etc/passwd is world-readable and shown


def test_the_view_stays_read_only_outside_its_tmpfs(client: httpx.Client) -> None:
    code, out = sh(
        client,
        "touch /new 2>&1; mkdir /home/u 2>&1; touch /usr/x 2>&1; touch /etc/x 2>&1; "
        "echo ok > /tmp/f && cat /tmp/f; echo ok > /var/tmp/f && cat /var/tmp/f",
    )
    assert out.count("Read-only file system") == 4, out
    assert out.count("ok\n") == 2


def test_no_container_leaves_anything_in_the_next_ones_root(client: httpx.Client) -> None:
    # Default containers attach copies of one prepared root (runtime/images/
    # viewtrees.py); a container that makes a directory in its root, or may
    # remount it read-write (CAP_SYS_ADMIN), must get a root of its own.
    marker = uuid.uuid4().hex[:8]
    code, out = sh(
        client,
        "pwd",
        workdir=f"/wd-{marker}",
        mounts=[{"type": "tmpfs", "target": f"/mnt-{marker}"}],
    )
    assert code == 0 and out == f"/wd-{marker}\n", out
    code, out = sh(
        client,
        f"mount -o remount,rw / && mkdir /left-{marker} && echo WROTE",
        cap_add=["SYS_ADMIN"],
    )
    assert code == 0 and "WROTE" in out, out
    # A mount under /run keeps the next one off the warm pool (whose children
    # build their own root): a cold launch that gets the prepared root.
    cold = {"mounts": [{"type": "tmpfs", "target": "/run/check"}]}
    code, out = sh(client, "ls -A /; touch /x 2>&1 || echo REFUSED", **cold)
    assert marker not in out, out
    assert "REFUSED" in out, out


def test_mounts_and_workdir_at_paths_the_host_does_not_have(
    client: httpx.Client, tmp_path: Path
) -> None:
    (tmp_path / "input").write_text("from the host\n")
    code, out = sh(
        client,
        "pwd; cat /data/deep/in/input; echo x > /scratch/y/f && cat /scratch/y/f",
        mounts=[
            {"type": "bind", "source": str(tmp_path), "target": "/data/deep/in"},
            {"type": "tmpfs", "target": "/scratch/y"},
        ],
        workdir="/work/here/now",
    )
    assert code == 0, out
    assert out == "/work/here/now\nfrom the host\nx\n"


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"mounts": [{"type": "tmpfs", "target": "/usr/no-such-dir"}]},
            ["body", "mounts", 0, "target"],
            "does not exist in the host image's read-only /usr",
        ),
        ({"workdir": "/etc/no-such-dir"}, ["body", "workdir"], "read-only /etc"),
    ],
)
def test_a_missing_path_inside_a_read_only_host_dir_is_422(
    client: httpx.Client, spec: dict[str, object], field: list[object], message: str
) -> None:
    response = client.post("/containers", json={"command": ["true"], **spec})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == field
    assert message in detail["msg"]


def test_the_host_images_listing_says_what_it_holds(client: httpx.Client) -> None:
    images = {i["name"]: i for i in client.get("/images").json()}
    contents = images["host"]["contents"]
    assert "/usr (read-only)" in contents and "/etc (read-only)" in contents
    assert "/root (empty)" in contents
    assert images["busybox"]["contents"] is None
    assert client.get("/images/host").json()["contents"] == contents


def test_host_image_paths_adds_a_read_only_directory() -> None:
    tools = Path("/opt") / f"mydocker-tools-{uuid.uuid4().hex[:8]}"
    tools.mkdir(parents=True)
    (tools / "tool").write_text("a tool\n")
    # The state dir inside an added directory is covered by an empty tmpfs.
    state = tools / "state"
    svc = Service(
        state_dir=state,
        port=free_port(),
        extra_args=["--host-image-paths", str(tools)],
    )
    try:
        svc.start()
        with httpx.Client(base_url=svc.url, timeout=60) as client:
            code, out = sh(
                client,
                f"cat {tools}/tool; touch {tools}/x 2>&1; ls -A {state}; "
                f"cat {state}/mydocker.db 2>&1 | head -c 100; echo end",
            )
            assert out.startswith("a tool\n"), out
            assert "Read-only file system" in out
            assert "SQLite" not in out and "No such file" in out
            listed = client.get("/images/host").json()["contents"]
            assert f"{tools} (read-only)" in listed
    finally:
        svc.close()
        shutil.rmtree(tools, ignore_errors=True)


@pytest.mark.parametrize("path", ["relative", "/proc/x", "/tmp", "/usr/local", "/no/such"])
def test_host_image_paths_refuses_what_it_cannot_add(path: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "--state-dir",
            str(tmp_path / "state"),
            "--port",
            str(free_port()),
            "--host-image-paths",
            path,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert "--host-image-paths" in result.stderr


def test_docker_run_host_sees_the_same_view(
    service: Service, planted: Planted, tmp_path: Path
) -> None:
    script = (
        f"cat /etc/shadow {planted.secret[0]} {planted.etc_secret[0]} 2>/dev/null; "
        "ls -A /root; python3 -c 'print(1+1)'"
    )
    result = run_docker(service, tmp_path, "run", "--rm", "host", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "2\n"
