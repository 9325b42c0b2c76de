"""cli/volumes.py: ``-v``, ``--restart`` and ``--init`` as create-body fields."""

from __future__ import annotations

import pytest

from cli import main, volumes
from cli.client import UsageError


def fields(*argv: str) -> dict[str, object]:
    return volumes.run_fields(main.build_parser().parse_args(["run", *argv, "--", "true"]))


def test_run_options_become_native_fields() -> None:
    assert fields() == {}
    assert fields("-v", "data:/d", "-v", "/srv:/s:ro", "-v", "/anon", "--volumes-from", "c:ro") == {
        "mounts": [
            {"type": "volume", "source": "data", "target": "/d", "read_only": False},
            {"type": "bind", "source": "/srv", "target": "/s", "read_only": True},
            {"type": "volume", "target": "/anon"},
        ],
        "volumes_from": ["c:ro"],
    }
    assert fields("--restart", "on-failure:2", "--init") == {
        "restart_policy": {"name": "on-failure", "maximum_retry_count": 2},
        "init": True,
    }
    assert fields("--restart", "always")["restart_policy"] == {
        "name": "always",
        "maximum_retry_count": 0,
    }


@pytest.mark.parametrize("argv", [["-v", "a:/b:z"], ["-v", "a:b:c:d"], ["--restart", "always:3"]])
def test_bad_run_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        fields(*argv)
