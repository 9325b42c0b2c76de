"""cli/network.py: -p parsing, run's network fields, network and port output."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from cli import network
from cli.main import build_parser


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ("80", {"container_port": 80}),
        ("8080:80", {"container_port": 80, "host_port": 8080}),
        ("127.0.0.1::80", {"container_port": 80, "host_ip": "127.0.0.1"}),
        (
            "0.0.0.0:53:53/udp",
            {"container_port": 53, "host_port": 53, "host_ip": "0.0.0.0", "protocol": "udp"},
        ),
    ],
)
def test_publish_specs(text: str, port: dict[str, Any]) -> None:
    assert network.parse_publish(text) == port


@pytest.mark.parametrize("text", ["", "x", "a:b:c:d", "1:2:3:4", "80:http"])
def test_bad_publish_specs(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        network.parse_publish(text)


def test_run_options_become_the_body_fields() -> None:
    args = build_parser().parse_args(
        ["run", "--network", "backend", "-p", "8080:80", "--network-alias", "db", "--", "true"]
    )
    assert network.run_fields(args) == {
        "network": "backend",
        "ports": [{"container_port": 80, "host_port": 8080}],
        "network_aliases": ["db"],
    }
    publish_only = build_parser().parse_args(["run", "-p", "80", "--", "true"])
    assert network.run_fields(publish_only)["network"] == "bridge"
    assert network.run_fields(build_parser().parse_args(["run", "--", "true"])) == {}


class Api:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path, kwargs))
        return self.answer

    def request(self, method: str, path: str, **kwargs: Any) -> None:
        self.calls.append((method, path, kwargs))


def test_port_prints_like_docker_port(capsys: pytest.CaptureFixture[str]) -> None:
    ports = [
        {"container_port": 80, "protocol": "tcp", "host_ip": "127.0.0.1", "host_port": 32768},
        {"container_port": 53, "protocol": "udp", "host_ip": "0.0.0.0", "host_port": 5353},
    ]
    api = Api({"network": {"ports": ports}})
    network.cmd_port(api, build_parser().parse_args(["port", "web"]))  # type: ignore[arg-type]
    assert capsys.readouterr().out == "80/tcp -> 127.0.0.1:32768\n53/udp -> 0.0.0.0:5353\n"
    network.cmd_port(api, build_parser().parse_args(["port", "web", "53/udp"]))  # type: ignore[arg-type]
    assert capsys.readouterr().out == "0.0.0.0:5353\n"


def test_network_create_and_rm_send_the_requests(capsys: pytest.CaptureFixture[str]) -> None:
    api = Api({"id": "ab" * 32})
    args = build_parser().parse_args(
        ["network", "create", "--subnet", "10.1.0.0/24", "--internal", "n1"]
    )
    network.cmd_network(api, args)  # type: ignore[arg-type]
    assert api.calls == [
        ("POST", "/networks", {"json": {"name": "n1", "internal": True, "subnet": "10.1.0.0/24"}})
    ]
    network.cmd_network(api, build_parser().parse_args(["network", "rm", "n1", "n2"]))  # type: ignore[arg-type]
    assert [c[:2] for c in api.calls[1:]] == [
        ("DELETE", "/networks/n1"),
        ("DELETE", "/networks/n2"),
    ]
    assert capsys.readouterr().out == "ab" * 32 + "\nn1\nn2\n"
