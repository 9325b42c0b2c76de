"""``python -m app``: check we are root, then serve."""

from __future__ import annotations

import logging
import os
import socket
import stat
import sys
from collections.abc import Mapping

import uvicorn

from app.config import ConfigError, check, parse_args
from app.main import create_app
from app.upgrade import TcpUpgradeProtocol

BALLAST_ENV = "MYDOCKER_BENCH_BALLAST_MB"
#: Kept alive for the life of the process; see ``allocate_ballast``.
_ballast: bytes = b""


def allocate_ballast(environ: Mapping[str, str]) -> int:
    """Debug only: grow this process by ``MYDOCKER_BENCH_BALLAST_MB`` MiB.

    The benchmark (``bench/``) uses it to show that a launch does not get
    slower as the API process grows (the launcher, not the API, clones).
    ``bytes * n`` writes every page, so the memory is resident, not merely
    reserved.  Returns the MiB allocated."""
    global _ballast
    value = environ.get(BALLAST_ENV, "").strip()
    if not value:
        return 0
    megabytes = int(value)
    if megabytes < 0:
        raise ValueError(f"{BALLAST_ENV} must be >= 0, not {megabytes}")
    _ballast = b"\x01" * (megabytes << 20)
    return megabytes


def bind_unix_socket(path: str) -> socket.socket:
    """A unix socket at ``path`` that only root can connect to (mode 0600).

    Bound under umask 0177, so it is never reachable by others, not even
    for a moment (uvicorn's own ``--uds`` chmods it 0666 after binding).  A
    stale socket file is replaced; a live one (a service answers) is not.
    """
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ConfigError(f"--uds {path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # nobody listens: stale
            else:
                raise ConfigError(f"--uds {path}: another service listens there")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old_umask)
    return sock


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
        check(settings)
    except ConfigError as err:
        print(f"mydocker: {err}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(
            "mydocker: the service must run as root: it creates namespaces and mounts "
            "(clone(2) with CLONE_NEWNS|CLONE_NEWPID|... needs CAP_SYS_ADMIN).",
            file=sys.stderr,
        )
        return 1
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        ballast = allocate_ballast(os.environ)
    except ValueError as err:
        print(f"mydocker: {err}", file=sys.stderr)
        return 2
    if ballast:
        logging.getLogger("mydocker").warning("benchmark ballast: %d MiB allocated", ballast)
    where: dict[str, object] = {"host": settings.host, "port": settings.port}
    sock: socket.socket | None = None
    if settings.uds is not None:
        try:
            sock = bind_unix_socket(settings.uds)
        except (ConfigError, OSError) as err:
            print(f"mydocker: {err}", file=sys.stderr)
            return 2
        where = {"fd": sock.fileno()}
    try:
        uvicorn.run(
            create_app(settings),
            log_level=settings.log_level,
            # h11 plus Docker's `Upgrade: tcp` for attach (app/upgrade.py).
            http=TcpUpgradeProtocol,
            # One line per request costs more than a launch under load: opt in.
            access_log=settings.access_log,
            # A client that opens a connection and sends nothing is dropped.
            timeout_keep_alive=5,
            # SIGTERM: stop accepting, give open requests (waits, log follows)
            # this long, then close them; the lifespan's shutdown runs after.
            timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout)),
            **where,  # type: ignore[arg-type]
        )
    finally:
        if sock is not None:
            sock.close()  # the socket file goes in the app's shutdown (app.main)
    return 0


if __name__ == "__main__":
    sys.exit(main())
