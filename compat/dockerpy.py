"""docker-py's integration tests against a mydocker service: the conformance figure.

``scripts/docker-py-conformance CHECKOUT`` calls this module twice:

    venv CHECKOUT VENV     (outside the network namespace: pip needs the package
                           archive) a venv with pytest, pytest-timeout, paramiko
                           (docker-py's tests/helpers.py imports it) and the
                           ``docker`` package installed from CHECKOUT itself
    run CHECKOUT VENV      (inside ``unshare --net``, lo up) starts this checkout's
                           ``python -m app`` on a free loopback port with a
                           temporary state dir and a docker.io mirror (a real
                           registry on loopback holding the images the suite
                           names), pulls them, runs ``tests/integration/{api,models}_{container,
                           exec,image,network,volume}*_test.py`` with DOCKER_HOST
                           pointing at the service and a per-test timeout, prints
                           passed/failed/errors per file and the percentage, and
                           writes the outcomes as JSON (``--out``)

Nothing of docker-py is copied here: the checkout is read where it lies, and
``compat/dockerpy_plugin.py`` (loaded into its pytest) deselects the tests that
need swarm, build or plugins and records each outcome.  docs/docker-compat.md
says how the percentage is counted.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.service import ROOT, Service
from compat.registry import Layout, Registry
from runtime.images.builtin import build_busybox

#: The suite's files, as the issue scopes it (docker-py 7.1 names them so).
FILES = (
    "api_container",
    "api_exec",
    "api_image",
    "api_network",
    "api_volume",
    "models_containers",
    "models_images",
    "models_networks",
    "models_volumes",
)
#: Images the tests name besides TEST_IMG (read from tests/integration/base.py).
EXTRA_IMAGES = ("alpine:latest", "busybox:latest", "hello-world:latest")
#: The Docker API version the images are pulled through.
API_VERSION = "1.44"
#: docker-py's [websockets] extra is part of what its tests use (attach_socket(ws=True)).
REQUIREMENTS = ("pytest>=7,<9", "pytest-timeout", "paramiko", "websocket-client>=1.3.0")


def make_venv(checkout: Path, venv: Path) -> None:
    """docker-py's test requirements and its own ``docker`` package from ``checkout``."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # hatch-vcs reads the version from git; an exported tree has none.
    env = {**os.environ}
    if not (checkout / ".git").exists():
        env.setdefault(
            "SETUPTOOLS_SCM_PRETEND_VERSION", os.environ.get("DOCKER_PY_VERSION", "0.0.0+checkout")
        )
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *REQUIREMENTS, str(checkout)], check=True, env=env)


def suite_images(checkout: Path) -> list[str]:
    """TEST_IMG of the checkout's base.py, then the other names its tests use."""
    base = (checkout / "tests" / "integration" / "base.py").read_text()
    found = re.search(r"^TEST_IMG\s*=\s*['\"]([^'\"]+)['\"]", base, re.M)
    names = [found.group(1)] if found else []
    return names + [n for n in EXTRA_IMAGES if n not in names]


#: What the suite expects of alpine beyond busybox's applets: its standard
#: directories (``exec_create(workdir="/var/opt")``) and accounts
#: (``exec_create(user="postgres")``), as alpine's baselayout has them.
ALPINE_DIRS = (
    "var/opt",
    "var/lib",
    "var/log",
    "var/spool",
    "var/tmp",
    "home",
    "srv",
    "opt",
    "mnt",
    "media",
    "run",
    "root",
    "etc/apk",
)
ALPINE_ACCOUNTS = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/ash\nbin:x:1:1:bin:/bin:/sbin/nologin\n"
    "daemon:x:2:2:daemon:/sbin:/sbin/nologin\npostgres:x:70:70::/var/lib/postgresql:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/:/sbin/nologin\n",
    "etc/group": "root:x:0:root\nbin:x:1:root,bin,daemon\ndaemon:x:2:root,bin,daemon\n"
    "postgres:x:70:\nnobody:x:65534:\n",
}


def alpine_like_tar(workdir: Path) -> bytes:
    """Debian's busybox-static with alpine's directories and accounts, as a tar:
    the layer every image the suite names is made of (pushed to the mirror)."""
    rootfs = workdir / "rootfs"
    rootfs.mkdir()
    build_busybox(str(rootfs))
    for path in ALPINE_DIRS:
        (rootfs / path).mkdir(parents=True, exist_ok=True)
    for path, text in ALPINE_ACCOUNTS.items():
        (rootfs / path).write_text(text)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(rootfs, arcname=".")
    return buffer.getvalue()


#: What each name's image runs: as on Docker Hub, every name is an image of
#: its own (its own config, so its own id), over one shared layer.
IMAGE_CONFIGS: dict[str, dict[str, object]] = {
    "alpine": {"Cmd": ["/bin/sh"]},
    "busybox": {"Cmd": ["sh"]},
    "hello-world": {"Cmd": ["echo", "Hello from Docker!"]},
}
ALPINE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def mirror_registry(work: Path, names: list[str], tar: bytes) -> Registry:
    """A registry on loopback holding each name as ``library/<name>``: the
    docker.io mirror an air-gapped CI runs, so the suite's pulls (and its
    ``/distribution`` look-ups) reach a real registry through the service's
    ``--registry-mirror``."""
    layout = Layout(work / "layout")
    registry = Registry(work / "registry").start()
    try:
        for name in names:
            repo, _, tag = name.partition(":")
            # As Docker Hub's: no labels, no working directory; the comment
            # (nothing a container sees) makes each name's config, so its id, its own.
            fields = {
                "Env": [ALPINE_PATH],
                "Labels": None,
                "WorkingDir": "",
                **IMAGE_CONFIGS.get(repo, {"Cmd": ["/bin/sh"]}),
            }
            top: dict[str, object] = {"comment": f"the conformance harness's {name}"}
            layout.tag(layout.image([tar], config_fields=fields, top_fields=top), tag or "latest")
            registry.push(layout.path, tag or "latest", f"library/{repo}")
    except BaseException:
        registry.stop()
        raise
    return registry


def provide_images(url: str, names: list[str]) -> dict[str, str]:
    """Pull each name the service does not have yet; what happened to each."""
    done: dict[str, str] = {}
    with httpx.Client(base_url=f"{url}/v{API_VERSION}", timeout=120) as client:
        for name in names:
            if client.get(f"/images/{name}/json").status_code == 200:
                done[name] = "present"
                continue
            answer = client.post("/images/create", params={"fromImage": name})
            ok = answer.status_code == 200 and client.get(f"/images/{name}/json").is_success
            done[name] = "pulled" if ok else f"unavailable: {answer.text.strip()[-200:]}"
    return done


def run_suite(args: argparse.Namespace, url: str, out: Path) -> int:
    checkout: Path = args.checkout
    files = [f"tests/integration/{name}_test.py" for name in args.files]
    env = {
        **os.environ,
        "DOCKER_HOST": url.replace("http://", "tcp://"),
        "PYTHONPATH": str(ROOT / "compat"),
        "DOCKERPY_CONFORMANCE_RESULTS": str(out),
    }
    env.pop("DOCKER_TLS_VERIFY", None)
    env.pop("DOCKER_CERT_PATH", None)
    if args.substitute_image:
        env["DOCKERPY_SUBSTITUTE_IMAGE"] = args.substitute_image
    command = [
        str(args.venv / "bin" / "python"),
        "-m",
        "pytest",
        "-p",
        "dockerpy_plugin",
        f"--timeout={args.timeout}",
        "-q",
        "-p",
        "no:cacheprovider",
        *files,
        *args.pytest_args,
    ]
    return subprocess.run(command, cwd=checkout, env=env).returncode


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Counts per file and in all; the figure is passed / counted (docs/docker-compat.md)."""
    per_file: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for nodeid, entry in results["tests"].items():
        per_file[nodeid.split("::")[0]][entry["outcome"]] += 1
    for nodeid in results["deselected"]:
        per_file[nodeid.split("::")[0]]["deselected"] += 1
    total: collections.Counter[str] = collections.Counter()
    for counts in per_file.values():
        total.update(counts)
    rows = {name: dict(counts) for name, counts in sorted(per_file.items())}
    counted = total["passed"] + total["failed"] + total["error"]
    return {
        "files": rows,
        "total": dict(total),
        "counted": counted,
        "percent": round(100 * total["passed"] / counted, 1) if counted else 0.0,
    }


def print_summary(summary: dict[str, Any]) -> None:
    columns = ("passed", "failed", "error", "skipped", "xfailed", "deselected")
    print(f"\n{'file':<45}" + "".join(f"{c:>11}" for c in columns))
    for name, counts in [*summary["files"].items(), ("total", summary["total"])]:
        print(
            f"{name.rsplit('/', 1)[-1]:<45}" + "".join(f"{counts.get(c, 0):>11}" for c in columns)
        )
    print(
        f"\nconformance: {summary['total'].get('passed', 0)} of {summary['counted']} passed"
        f" ({summary['percent']}%)"
    )


def revision() -> str:
    answer = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return answer.stdout.strip()


def in_initial_network_namespace() -> bool:
    """Whether this process shares init's network namespace (the host's)."""
    return os.readlink("/proc/self/ns/net") == os.readlink("/proc/1/ns/net")


def run(args: argparse.Namespace) -> int:
    if in_initial_network_namespace():
        # docker-py's tests make bridges, addresses and nft rules: they run in
        # scripts/docker-py-conformance's own namespace, never on the host's.
        print(
            "compat.dockerpy run: refusing to run in the host's network namespace; "
            "use scripts/docker-py-conformance",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="dockerpy-conformance-") as tmp:
        work = Path(tmp)
        names = suite_images(args.checkout)
        registry = mirror_registry(work, names, alpine_like_tar(work))
        mirror = ["--registry-mirror", f"http://{registry.host}"]
        # The suite runs in a network namespace of its own (the script's
        # unshare), so `docker run` gets Docker's default network, bridge.
        service = Service(
            state_dir=work / "state",
            extra_args=["--log-level", "warning", *mirror],
            env={"MYDOCKER_DOCKER_NETWORK": "bridge"},
        )
        try:
            service.start()
            images = provide_images(service.url, names)
            for name, what in images.items():
                print(f"image {name}: {what}")
            raw = work / "results.json"
            code = run_suite(args, service.url, raw)
            if not raw.exists():
                print(f"pytest wrote no results (exit {code})", file=sys.stderr)
                return 2
            results = json.loads(raw.read_text())
        finally:
            service.close()
            registry.stop()
    results["summary"] = summarize(results)
    results["images"] = images
    results["mydocker"] = revision()
    results["substitute_image"] = args.substitute_image
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print_summary(results["summary"])
    print(f"results: {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compat.dockerpy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("step", choices=("venv", "run"))
    parser.add_argument("checkout", type=Path, help="a docker-py source tree (7.1)")
    parser.add_argument("venv", type=Path, help="the venv for docker-py and its tests")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/docker-py.json")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per test")
    parser.add_argument(
        "--files",
        nargs="+",
        default=list(FILES),
        metavar="NAME",
        help="suite files without _test.py (default: the issue's nine)",
    )
    parser.add_argument(
        "--substitute-image",
        default="",
        metavar="NAME",
        help="diagnostic: run the suite with TEST_IMG set to NAME (not the conformance figure)",
    )
    parser.epilog = "Arguments after -- go to pytest (e.g. -- -k test_kill)."
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: len(argv) - len(extra) - (1 if "--" in argv else 0)])
    args.pytest_args = extra
    args.checkout = args.checkout.resolve()
    if args.step == "venv":
        make_venv(args.checkout, args.venv)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
