"""Service settings: command-line flags, then ``MYDOCKER_*`` variables, then defaults."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from runtime.images.hostview import HostPathError, layout
from runtime.security.userns import parse_range
from runtime.spec import InvalidField, Limits

MiB = 1 << 20


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    state_dir: str = ".state"
    log_level: str = "info"
    access_log: bool = False
    #: Unix socket to serve on instead of host:port (created 0600).
    uds: str | None = None
    #: The bearer token every route but /health demands; ``None``: no auth.
    token: str | None = None
    #: Containers created or running at once; ``None``: no cap.
    max_containers: int | None = None
    #: Largest request body, and the larger cap of image uploads (/images).
    max_body_bytes: int = 1 * MiB
    max_upload_bytes: int = 4096 * MiB
    #: Seconds a client may take to send a request body (408 beyond).
    body_timeout: float = 60.0
    #: First host id and count for ``"userns": true`` containers.
    userns_range: tuple[int, int] = (100000, 65536)
    #: Stop every container on SIGTERM (default: leave them to the launcher).
    stop_containers_on_exit: bool = False
    shutdown_timeout: float = 5.0
    #: Limits for containers that do not set them (docs/limits.md).
    default_limits: Limits = field(default_factory=Limits)
    #: Host directories added, read-only, to the ``host`` image's view.
    host_image_paths: tuple[str, ...] = ()
    #: Serve /metrics alone, without the token, on 127.0.0.1:PORT too.
    metrics_port: int | None = None
    #: The network of a Docker ``create`` that names none (Docker's is ``bridge``).
    docker_network: str = "bridge"
    #: Registries (host[:port]) pulled from over plain HTTP; loopback ones always are.
    insecure_registries: tuple[str, ...] = ()
    #: Mirrors (base URLs) tried before Docker Hub for docker.io pulls.
    registry_mirrors: tuple[str, ...] = ()
    #: ``host`` children the launcher keeps cloned ahead (docs/performance.md);
    #: 0 turns the warm pool off for every image.
    pool_size: int = 4
    #: Other images' children kept cloned ahead: (image, count) pairs.
    pool_images: tuple[tuple[str, int], ...] = (("busybox", 2),)
    #: The launcher holds a favordynmods cgroup hierarchy, so that cgroup
    #: joins skip an RCU grace period (runtime/cgroups/dynmods.py): a
    #: machine-wide kernel mode, hence off unless asked for.
    cgroup_favordynmods: bool = False


#: Each pooled child is a process with its own namespaces and mounts.
MAX_POOL_SIZE = 64


class ConfigError(ValueError):
    """A setting the service refuses to start with (exit status 2)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def read_token(path: str | None, environ: Mapping[str, str]) -> str | None:
    """The token from ``--token-file`` (first line), else ``MYDOCKER_TOKEN``."""
    if path:
        try:
            with open(path) as f:
                token = f.readline().strip()
        except OSError as err:
            raise ConfigError(f"--token-file {path}: {err.strerror}") from err
        if not token:
            raise ConfigError(f"--token-file {path} is empty")
        return token
    token = environ.get("MYDOCKER_TOKEN", "").strip()
    return token or None


def check(settings: Settings) -> None:
    """Refuse what would expose the host: no token on a non-loopback address."""
    if settings.uds is None and not is_loopback(settings.host) and settings.token is None:
        raise ConfigError(
            f"refusing to listen on {settings.host} without a token: anyone who reaches "
            "it could run commands as root. Give --token-file FILE (or MYDOCKER_TOKEN), "
            "or listen on 127.0.0.1 or a --uds socket."
        )
    if settings.token is not None and len(settings.token) < 16:
        raise ConfigError("the token must be at least 16 characters long")


def parse_limits(text: str) -> Limits:
    """``--default-limits '{"memory_bytes": 268435456, "timeout_seconds": 60}'``."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from err
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError("must be a JSON object of limits")
    try:
        return Limits(**data)
    except InvalidField as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    except TypeError as err:
        raise argparse.ArgumentTypeError(f"unknown limit: {err}") from err


def parse_pool_images(text: str) -> tuple[tuple[str, int], ...]:
    """``--pool-images busybox=2,alpine=1``: each image and how many of its
    children the pool keeps ready; an empty text: none."""
    pairs: list[tuple[str, int]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        image, sep, count = item.rpartition("=")
        if not sep or not image.strip():
            raise argparse.ArgumentTypeError(f"{item!r}: give IMAGE=COUNT, e.g. busybox=2")
        try:
            size = int(count)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: the count must be a number") from None
        if not 0 <= size <= MAX_POOL_SIZE:
            raise argparse.ArgumentTypeError(
                f"{item!r}: the count must be between 0 and {MAX_POOL_SIZE}"
            )
        pairs.append((image.strip(), size))
    return tuple(pairs)


def parse_args(argv: list[str] | None = None) -> Settings:
    env = os.environ
    args = _parser(env).parse_args(argv)
    _check_args(args)
    return _settings(args, env)


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The flags, each defaulting to its ``MYDOCKER_*`` variable.

    A variable's text is the default itself, so argparse converts it with the
    flag's ``type`` and a bad value is reported under the flag's name.
    """
    parser = argparse.ArgumentParser(
        prog="python -m app", description="mydocker: launch Linux containers over HTTP."
    )
    parser.add_argument("--host", default=env.get("MYDOCKER_HOST_ADDR", Settings.host))
    parser.add_argument("--port", type=int, default=env.get("MYDOCKER_PORT", str(Settings.port)))
    parser.add_argument(
        "--state-dir",
        default=env.get("MYDOCKER_STATE_DIR", Settings.state_dir),
        help="where records, logs and the launcher's socket live (MYDOCKER_STATE_DIR)",
    )
    parser.add_argument("--log-level", default=env.get("MYDOCKER_LOG_LEVEL", "info"))
    parser.add_argument("--access-log", action="store_true", help="log one line per HTTP request")
    parser.add_argument(
        "--uds", default=env.get("MYDOCKER_UDS"), help="serve on this unix socket (mode 0600)"
    )
    parser.add_argument(
        "--token-file",
        default=env.get("MYDOCKER_TOKEN_FILE"),
        help="every route but /health demands 'Authorization: Bearer <first line of FILE>' "
        "(or set MYDOCKER_TOKEN)",
    )
    parser.add_argument(
        "--max-containers",
        type=int,
        default=env.get("MYDOCKER_MAX_CONTAINERS") or None,
        help="containers created or running at once; beyond it POST /containers gets 429",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=env.get("MYDOCKER_POOL_SIZE", str(Settings.pool_size)),
        help="children of the host image kept cloned ahead of demand "
        "(0: no warm pool for any image)",
    )
    parser.add_argument(
        "--pool-images",
        type=parse_pool_images,
        default=env.get(
            "MYDOCKER_POOL_IMAGES", ",".join(f"{i}={n}" for i, n in Settings.pool_images)
        ),
        metavar="IMAGE=N,...",
        help="children of other images kept cloned ahead, e.g. busybox=2,alpine=1 "
        "(images in the store at start-up; '' for none; or set MYDOCKER_POOL_IMAGES)",
    )
    parser.add_argument(
        "--cgroup-favordynmods",
        action="store_true",
        default=env.get("MYDOCKER_CGROUP_FAVORDYNMODS", "0") == "1",
        help="the launcher holds a favordynmods cgroup hierarchy, so that cgroup joins "
        "skip an RCU grace period; machine-wide: fork and exit of every process "
        "take a slower path, for good on Linux >= 6.18 (or set "
        "MYDOCKER_CGROUP_FAVORDYNMODS=1; docs/performance.md)",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=env.get("MYDOCKER_MAX_BODY", str(Settings.max_body_bytes)),
        help="largest request body in bytes (413 beyond)",
    )
    parser.add_argument(
        "--max-upload",
        type=int,
        default=env.get("MYDOCKER_MAX_UPLOAD", str(Settings.max_upload_bytes)),
        help="largest image upload (POST/PUT under /images) in bytes (413 beyond)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=env.get("MYDOCKER_BODY_TIMEOUT", str(Settings.body_timeout)),
        help="seconds a client may take to send a request body (408 beyond)",
    )
    parser.add_argument(
        "--userns-range",
        default=env.get("MYDOCKER_USERNS_RANGE", "100000-165535"),
        help='host ids that container ids 0..65535 map to with "userns": true',
    )
    parser.add_argument(
        "--stop-containers-on-exit",
        action="store_true",
        default=env.get("MYDOCKER_STOP_CONTAINERS_ON_EXIT", "") not in ("", "0"),
        help="on SIGTERM/SIGINT, stop every container before exiting; by default they keep "
        "running under the launcher and a restarted service picks them up "
        "(MYDOCKER_STOP_CONTAINERS_ON_EXIT=1)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=env.get("MYDOCKER_SHUTDOWN_TIMEOUT", str(Settings.shutdown_timeout)),
        help="seconds that open requests (waits, log follows) get to finish on shutdown, "
        "and containers get between SIGTERM and SIGKILL with --stop-containers-on-exit",
    )
    parser.add_argument(
        "--default-limits",
        type=parse_limits,
        default=env.get("MYDOCKER_DEFAULT_LIMITS", ""),  # argparse applies `type` to it
        metavar="JSON",
        help="limits for containers that do not set them, as in a create's `limits` "
        '(MYDOCKER_DEFAULT_LIMITS), e.g. \'{"memory_bytes": 268435456, "timeout_seconds": 60}\'',
    )
    parser.add_argument(
        "--host-image-paths",
        default=env.get("MYDOCKER_HOST_IMAGE_PATHS", ""),
        metavar="DIR[:DIR...]",
        help="host directories to add, read-only, to the host image, which otherwise shows "
        "only /usr, /etc (less what other may not read) and the lib/bin dirs "
        "(MYDOCKER_HOST_IMAGE_PATHS), e.g. /opt/toolchains",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=env.get("MYDOCKER_METRICS_PORT") or None,
        metavar="PORT",
        help="also serve GET /metrics, alone and without the token, on 127.0.0.1:PORT, for "
        "a local Prometheus (MYDOCKER_METRICS_PORT); /metrics on the API stays behind the token",
    )
    parser.add_argument(
        "--docker-network",
        default=env.get("MYDOCKER_DOCKER_NETWORK", Settings.docker_network),
        help="the network of `docker run` without --network (MYDOCKER_DOCKER_NETWORK): "
        "bridge, as Docker's, or none (only lo; nothing is made on the host)",
    )
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[r for r in env.get("MYDOCKER_INSECURE_REGISTRIES", "").split(",") if r],
        metavar="HOST[:PORT]",
        help="pull from this registry over plain HTTP (repeatable; "
        "MYDOCKER_INSECURE_REGISTRIES, comma-separated); loopback registries always are",
    )
    parser.add_argument(
        "--registry-mirror",
        action="append",
        default=[m for m in env.get("MYDOCKER_REGISTRY_MIRRORS", "").split(",") if m],
        metavar="URL",
        help="try this mirror before Docker Hub for docker.io pulls (repeatable; "
        "MYDOCKER_REGISTRY_MIRRORS, comma-separated), e.g. http://127.0.0.1:5001",
    )
    return parser


def _check_args(args: argparse.Namespace) -> None:
    """What argparse's types cannot say: ranges, URLs, the view's paths."""
    for mirror in args.registry_mirror:
        if not mirror.startswith(("http://", "https://")):
            raise ConfigError(f"--registry-mirror {mirror!r}: give a URL (http:// or https://)")
    try:
        layout(_host_image_paths(args))
    except HostPathError as err:
        raise ConfigError(f"--host-image-paths: {err}") from err
    try:
        userns_range = parse_range(args.userns_range)
    except ValueError as err:
        raise ConfigError(f"--userns-range: {err}") from err
    if userns_range[1] < 65536:
        raise ConfigError("--userns-range must hold at least 65536 ids")
    if args.max_containers is not None and args.max_containers < 1:
        raise ConfigError("--max-containers must be at least 1")
    if not 0 <= args.pool_size <= MAX_POOL_SIZE:
        raise ConfigError(f"--pool-size must be between 0 and {MAX_POOL_SIZE}")
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        raise ConfigError("--metrics-port must be a TCP port (1-65535)")
    if args.max_body < 1 or args.max_upload < 1 or args.body_timeout <= 0:
        raise ConfigError("--max-body, --max-upload and --body-timeout must be positive")


def _settings(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    return Settings(
        host=args.host,
        port=args.port,
        state_dir=os.path.abspath(args.state_dir),
        log_level=args.log_level,
        access_log=args.access_log,
        uds=os.path.abspath(args.uds) if args.uds else None,
        token=read_token(args.token_file, env),
        max_containers=args.max_containers,
        max_body_bytes=args.max_body,
        max_upload_bytes=args.max_upload,
        body_timeout=args.body_timeout,
        userns_range=parse_range(args.userns_range),
        stop_containers_on_exit=args.stop_containers_on_exit,
        shutdown_timeout=args.shutdown_timeout,
        default_limits=args.default_limits,
        host_image_paths=_host_image_paths(args),
        metrics_port=args.metrics_port,
        docker_network=args.docker_network,
        insecure_registries=tuple(args.insecure_registry),
        registry_mirrors=tuple(args.registry_mirror),
        pool_size=args.pool_size,
        pool_images=args.pool_images,
        cgroup_favordynmods=args.cgroup_favordynmods,
    )


def _host_image_paths(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(p for p in args.host_image_paths.split(":") if p)
