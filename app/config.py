"""Service settings: command-line flags, then ``MYDOCKER_*`` variables, then defaults."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    state_dir: str = ".state"
    log_level: str = "info"
    access_log: bool = False


def parse_args(argv: list[str] | None = None) -> Settings:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m app", description="mydocker: launch Linux containers over HTTP."
    )
    parser.add_argument("--host", default=env.get("MYDOCKER_HOST_ADDR", Settings.host))
    parser.add_argument("--port", type=int, default=int(env.get("MYDOCKER_PORT", Settings.port)))
    parser.add_argument(
        "--state-dir",
        default=env.get("MYDOCKER_STATE_DIR", Settings.state_dir),
        help="where records, logs and the launcher's socket live (MYDOCKER_STATE_DIR)",
    )
    parser.add_argument("--log-level", default=env.get("MYDOCKER_LOG_LEVEL", "info"))
    parser.add_argument(
        "--access-log", action="store_true", help="log one line per HTTP request"
    )
    args = parser.parse_args(argv)
    return Settings(
        host=args.host,
        port=args.port,
        state_dir=os.path.abspath(args.state_dir),
        log_level=args.log_level,
        access_log=args.access_log,
    )
