"""``python -m app``: check we are root, then serve."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

import uvicorn

from app.config import parse_args
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


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
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
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # h11 plus Docker's `Upgrade: tcp` for attach (app/upgrade.py).
        http=TcpUpgradeProtocol,
        # One line per request costs more than a launch under load: opt in.
        access_log=settings.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
