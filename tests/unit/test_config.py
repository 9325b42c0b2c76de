"""app/config.py: the security settings and the refusal to start exposed."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings, check, is_loopback, parse_args, read_token

TOKEN = "0123456789abcdef-token"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.org"])
def test_other_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_non_loopback_without_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0 without a token"):
        check(Settings(host="0.0.0.0"))
    check(Settings(host="0.0.0.0", token=TOKEN))
    check(Settings(host="127.0.0.1"))
    check(Settings(host="0.0.0.0", uds="/run/x.sock"))  # the host is not used


def test_short_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="16"):
        check(Settings(token="short"))


def test_token_file_first_line(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\nignored\n")
    assert read_token(str(path), {}) == TOKEN
    assert read_token(None, {"MYDOCKER_TOKEN": f" {TOKEN} "}) == TOKEN
    assert read_token(None, {}) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        read_token(str(tmp_path / "empty"), {})
    with pytest.raises(ConfigError, match="No such file"):
        read_token(str(tmp_path / "missing"), {})


def test_parse_args_security_flags(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYDOCKER_TOKEN", raising=False)
    (tmp_path / "t").write_text(TOKEN)
    settings = parse_args(
        [
            "--token-file",
            str(tmp_path / "t"),
            "--uds",
            str(tmp_path / "s.sock"),
            "--max-containers",
            "2",
            "--max-body",
            "1000",
            "--userns-range",
            "200000-265535",
        ]
    )
    assert settings.token == TOKEN
    assert settings.uds == str(tmp_path / "s.sock")
    assert settings.max_containers == 2 and settings.max_body_bytes == 1000
    assert settings.userns_range == (200000, 65536)


@pytest.mark.parametrize(
    "argv",
    [["--userns-range", "100000-100010"], ["--userns-range", "x"], ["--max-containers", "0"]],
)
def test_bad_flags_are_config_errors(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_args(argv)


def test_the_docker_default_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYDOCKER_DOCKER_NETWORK", raising=False)
    assert parse_args([]).docker_network == "bridge"  # Docker's
    assert parse_args(["--docker-network", "none"]).docker_network == "none"
    monkeypatch.setenv("MYDOCKER_DOCKER_NETWORK", "backend")
    assert parse_args([]).docker_network == "backend"


def test_cgroup_favordynmods_is_off_unless_asked_for(monkeypatch) -> None:
    """A machine-wide kernel mode (runtime/cgroups/dynmods.py): opt-in."""
    monkeypatch.delenv("MYDOCKER_CGROUP_FAVORDYNMODS", raising=False)
    assert parse_args([]).cgroup_favordynmods is False
    assert parse_args(["--cgroup-favordynmods"]).cgroup_favordynmods is True
    monkeypatch.setenv("MYDOCKER_CGROUP_FAVORDYNMODS", "1")
    assert parse_args([]).cgroup_favordynmods is True


def test_numeric_variables_become_their_flags_values(monkeypatch) -> None:
    monkeypatch.setenv("MYDOCKER_PORT", "8123")
    monkeypatch.setenv("MYDOCKER_BODY_TIMEOUT", "2.5")
    monkeypatch.setenv("MYDOCKER_METRICS_PORT", "")
    settings = parse_args([])
    assert settings.port == 8123 and settings.body_timeout == 2.5
    assert settings.metrics_port is None  # an empty variable: not set
    assert parse_args(["--port", "9000"]).port == 9000  # the flag wins


def test_a_bad_variable_is_reported_under_its_flag(monkeypatch, capsys) -> None:
    """Before, ``int()`` of the variable raised a bare traceback at start."""
    monkeypatch.setenv("MYDOCKER_POOL_SIZE", "four")
    with pytest.raises(SystemExit) as exit_:
        parse_args([])
    assert exit_.value.code == 2
    assert "--pool-size: invalid int value: 'four'" in capsys.readouterr().err


def test_pool_images_by_flag_and_variable(monkeypatch) -> None:
    assert parse_args([]).pool_images == (("busybox", 2),)
    assert parse_args(["--pool-images", "busybox=3, alpine:3.19=1"]).pool_images == (
        ("busybox", 3),
        ("alpine:3.19", 1),
    )
    assert parse_args(["--pool-images="]).pool_images == ()
    monkeypatch.setenv("MYDOCKER_POOL_IMAGES", "alpine=1")
    assert parse_args([]).pool_images == (("alpine", 1),)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("busybox", "give IMAGE=COUNT"),
        ("=2", "give IMAGE=COUNT"),
        ("busybox=two", "the count must be a number"),
        ("busybox=65", "between 0 and 64"),
        ("busybox=-1", "between 0 and 64"),
    ],
)
def test_bad_pool_images_are_refused_by_name(capsys, text: str, said: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--pool-images", text])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--pool-images" in err and said in err
