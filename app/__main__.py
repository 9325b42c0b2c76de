"""``python -m app``: check we are root, then serve."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from app.config import parse_args
from app.main import create_app


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
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # One line per request costs more than a launch under load: opt in.
        access_log=settings.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
