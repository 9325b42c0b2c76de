"""The mydocker CLI without a service: argument forms, hosts, tables, exit codes."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

from cli import attach, main, output, streams
from cli.client import Endpoint, UsageError, error_detail, parse_host


def test_the_tutorial_form_becomes_the_run_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.isatty", lambda fd: False)
    argv = ["--action", "run", "--name", "box", "--", "/bin/sh"]
    assert main.tutorial_form(argv) == ["run", "--name", "box", "--", "/bin/sh"]
    args = main.build_parser().parse_args(main.tutorial_form(argv))
    assert (args.action, args.name, args.cmd) == ("run", "box", ["--", "/bin/sh"])


def test_the_tutorial_form_shares_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.isatty", lambda fd: True)
    rewritten = main.tutorial_form(["--host", "h:1", "--action=run", "--", "sh"])
    assert rewritten == ["--host", "h:1", "run", "-i", "-t", "--", "sh"]
    # An --action after -- belongs to the command.
    assert main.tutorial_form(["run", "--", "x", "--action", "y"]) == [
        "run",
        "--",
        "x",
        "--action",
        "y",
    ]


def test_run_options_combine_like_docker() -> None:
    args = main.build_parser().parse_args(
        ["run", "-it", "--rm", "-h", "box", "-e", "A=1", "-m", "64m", "--", "sh", "-c", "x"]
    )
    assert (args.interactive, args.tty, args.rm, args.hostname) == (True, True, True, "box")
    assert args.env == [("A", "1")] and args.memory == 64 << 20
    assert main._command(args.cmd) == ["sh", "-c", "x"]
    with pytest.raises(UsageError):
        main._command(["--"])


def test_usage_errors_exit_125_as_docker(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main.build_parser().parse_args(["run", "--no-such-flag"])
    assert exited.value.code == 125
    assert "--no-such-flag" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [("64m", 64 << 20), ("1g", 1 << 30), ("512", 512), ("1.5k", 1536), ("10b", 10)],
)
def test_sizes(text: str, expected: int) -> None:
    assert main._size(text) == expected


def test_a_bad_size_is_a_usage_error() -> None:
    with pytest.raises(Exception, match="not a size"):
        main._size("lots")


@pytest.mark.parametrize(
    ("host", "endpoint"),
    [
        ("http://127.0.0.1:8000", Endpoint("http://127.0.0.1:8000")),
        ("127.0.0.1:9000", Endpoint("http://127.0.0.1:9000")),
        ("tcp://[::1]:80", Endpoint("http://[::1]:80")),
        ("unix:///run/m.sock", Endpoint("http://mydocker", "/run/m.sock")),
        ("/run/m.sock", Endpoint("http://mydocker", "/run/m.sock")),
    ],
)
def test_hosts(host: str, endpoint: Endpoint) -> None:
    assert parse_host(host) == endpoint


def test_websocket_urls_follow_the_scheme() -> None:
    assert Endpoint("http://h:1").ws_url == "ws://h:1"
    assert Endpoint("https://h").ws_url == "wss://h"


def test_error_details_read_as_one_line() -> None:
    sentence = httpx.Response(409, json={"detail": "container x is not running"})
    assert error_detail(sentence) == "container x is not running"
    fields = httpx.Response(
        422, json={"detail": [{"loc": ["body", "hostname"], "msg": "bad", "type": "value_error"}]}
    )
    assert error_detail(fields) == "hostname: bad"
    assert error_detail(httpx.Response(502, text="gateway down")) == "gateway down"


def test_status_column_reads_like_docker_ps() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert output.ago("2026-01-01T11:58:00Z", now=now) == "2 minutes ago"
    assert output.ago("2026-01-01T11:59:59.5Z", now=now) == "Less than a second ago"
    assert output.ago("2025-12-30T12:00:00+00:00", now=now) == "2 days ago"
    assert output.status({"status": "created"}) == "Created"
    assert output.status({"status": "exited", "exit_code": None}).startswith("Exited (?)")
    assert output.status({"status": "running", "started_at": None}) == "Up "


def test_tables_align_columns(capsys: pytest.CaptureFixture[str]) -> None:
    rows = output.container_rows(
        [
            {"id": "a" * 64, "name": "web", "command": ["sleep", "60"], "status": "created"},
            {"id": "b" * 64, "name": "b" * 64, "command": ["x" * 50], "status": "created"},
        ]
    )
    output.print_table(rows, output.CONTAINER_COLUMNS)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CONTAINER ID   NAME")
    assert lines[1].split()[:3] == ["aaaaaaaaaaaa", "web", '"sleep']
    assert lines[2].split()[1].startswith('"xxx')  # an id-named container shows no name
    assert len(rows[1][2]) == output.COMMAND_WIDTH


def test_detach_keys_cut_the_input() -> None:
    assert attach._scan_detach(b"ls\r\x10\x11more") == (b"ls\r", True)
    assert attach._scan_detach(b"plain") == (b"plain", False)


def test_the_cli_does_not_import_the_runtime() -> None:
    # It is an HTTP client: installing it must not need (or load) the server side.
    code = (
        "import sys, cli.main, cli.attach\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('runtime', 'app', 'fastapi')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_logs_options_become_query_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 1000.0)
    args = main.build_parser().parse_args(
        ["logs", "-t", "--since", "10m", "--until", "2026-11-29T05:00:00Z", "web"]
    )
    assert streams.logs_params(args) == {
        "follow": "false",
        "timestamps": "true",
        "since": "400.000000",  # ten minutes before "now"
        "until": "2026-11-29T05:00:00Z",
    }
    plain = main.build_parser().parse_args(["logs", "-f", "--tail", "3", "web"])
    assert streams.logs_params(plain) == {"follow": "true", "tail": 3}


class KillApi:
    """Answers the kill routes as the service would; records the calls."""

    def __init__(self, not_found: list[str] | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, object]]] = []
        self.not_found = not_found or []

    def json(self, method: str, path: str, **kwargs: object) -> object:
        self.calls.append((method, path, kwargs))
        if path == "/containers/kill":
            killed = ["a" * 64]
            return {
                "signal": "SIGKILL",
                "killed": killed,
                "not_running": [],
                "not_found": self.not_found,
            }
        return {"id": "b" * 64}


def kill(api: KillApi, *argv: str) -> int:
    args = main.build_parser().parse_args(["kill", *argv])
    return main.cmd_kill(api, args)  # type: ignore[arg-type]


def test_kill_of_one_ref_is_the_single_kill(capsys: pytest.CaptureFixture[str]) -> None:
    api = KillApi()
    assert kill(api, "-s", "TERM", "web") == 0
    assert api.calls == [("POST", "/containers/web/kill", {"params": {"signal": "TERM"}})]
    assert capsys.readouterr().out == "b" * 64 + "\n"


def test_kill_by_label_is_one_bulk_request(capsys: pytest.CaptureFixture[str]) -> None:
    api = KillApi()
    assert kill(api, "--label", "job=42", "-l", "team") == 0
    body = {"labels": ["job=42", "team"], "signal": "SIGKILL"}
    assert api.calls == [("POST", "/containers/kill", {"json": body})]
    assert capsys.readouterr().out == "a" * 64 + "\n"


def test_kill_of_several_refs_reports_the_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    api = KillApi(not_found=["gone"])
    assert kill(api, "web", "gone") == main.EXIT_ERROR
    body = {"labels": [], "signal": "SIGKILL", "ids": ["web", "gone"]}
    assert api.calls == [("POST", "/containers/kill", {"json": body})]
    assert "gone: no such container" in capsys.readouterr().err


def test_kill_needs_a_ref_or_a_label() -> None:
    with pytest.raises(UsageError):
        kill(KillApi())
