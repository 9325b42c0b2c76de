"""runtime.spec: the container spec, its invariants and its dict form."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import pytest

from runtime.options import Options
from runtime.spec import DEFAULT_PATH, ContainerSpec, ExecSpec, Limits, Mount, from_dict, to_dict


def test_round_trip_through_json() -> None:
    spec = ContainerSpec(
        command=("sh", "-c", "echo $X"),
        hostname="box",
        env={"X": "1", "EMPTY": ""},
        workdir="/tmp",
    )
    data = to_dict(spec)
    # Later issues add fields (limits, mounts, ...); these four are the core's.
    assert {k: data[k] for k in ("command", "hostname", "env", "workdir")} == {
        "command": ["sh", "-c", "echo $X"],
        "hostname": "box",
        "env": {"X": "1", "EMPTY": ""},
        "workdir": "/tmp",
    }
    again = from_dict(ContainerSpec, json.loads(json.dumps(data)))
    assert again == spec
    assert isinstance(again.command, tuple)


def test_from_dict_uses_defaults_for_missing_optional_fields() -> None:
    spec = from_dict(ContainerSpec, {"command": ["true"], "hostname": "h"})
    assert spec.workdir == "/"
    assert dict(spec.env) == {}


def test_from_dict_ignores_unknown_keys_and_requires_required_ones() -> None:
    spec = from_dict(ContainerSpec, {"command": ["true"], "hostname": "h", "later": 1})
    assert spec.command == ("true",)
    with pytest.raises(TypeError):
        from_dict(ContainerSpec, {"hostname": "h"})


def test_spec_is_frozen() -> None:
    spec = ContainerSpec(command=("true",), hostname="h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.hostname = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"command": ()}, "command must not be empty"),
        ({"command": ("echo", "a\0b")}, "NUL"),
        ({"command": ("true",), "env": {"": "x"}}, "invalid environment variable"),
        ({"command": ("true",), "env": {"A=B": "x"}}, "invalid environment variable"),
        ({"command": ("true",), "env": {"A\0": "x"}}, "invalid environment variable"),
        ({"command": ("true",), "env": {"A": "x\0"}}, "invalid environment variable"),
    ],
)
def test_invariants(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContainerSpec(hostname="h", **kwargs)  # type: ignore[arg-type]


def test_environ_defaults_then_env() -> None:
    spec = ContainerSpec(command=("true",), hostname="box")
    assert spec.environ() == {"PATH": DEFAULT_PATH, "HOSTNAME": "box", "HOME": "/root"}
    custom = ContainerSpec(command=("true",), hostname="box", env={"PATH": "/x", "A": "b"})
    assert custom.environ() == {"PATH": "/x", "HOSTNAME": "box", "HOME": "/root", "A": "b"}


# from_dict is generic over nested frozen dataclasses: later issues add
# limits and mounts to the spec, and they must come back as dataclasses.
@dataclasses.dataclass(frozen=True)
class _Inner:
    source: str
    options: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Outer:
    name: str
    inner: _Inner | None = None
    many: tuple[_Inner, ...] = ()
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    count: int | None = None


def test_generic_round_trip_of_nested_dataclasses() -> None:
    outer = _Outer(
        name="x",
        inner=_Inner("a", ("ro", "nosuid")),
        many=(_Inner("b"), _Inner("c", ("rw",))),
        labels={"k": "v"},
        count=3,
    )
    data = json.loads(json.dumps(to_dict(outer)))
    assert data["many"][1] == {"source": "c", "options": ["rw"]}
    back = from_dict(_Outer, data)
    assert back == outer
    assert isinstance(back.inner, _Inner)
    assert isinstance(back.many[0], _Inner)
    assert isinstance(back.inner.options, tuple)


def test_generic_none_stays_none() -> None:
    back = from_dict(_Outer, {"name": "x", "inner": None, "count": None})
    assert back == _Outer(name="x")


def test_a_tty_sets_term_unless_env_does() -> None:
    plain = ContainerSpec(command=("sh",), hostname="h")
    assert "TERM" not in plain.environ()
    assert ContainerSpec(command=("sh",), hostname="h", tty=True).environ()["TERM"] == "xterm"
    mine = ContainerSpec(command=("sh",), hostname="h", tty=True, env={"TERM": "vt100"})
    assert mine.environ()["TERM"] == "vt100"


def test_an_exec_sees_the_containers_environment_with_its_own_on_top() -> None:
    container = ContainerSpec(command=("sleep",), hostname="box", env={"A": "1", "B": "2"})
    spec = ExecSpec(command=("env",), env={"B": "3"}, tty=True)
    environ = spec.environ(container)
    assert (environ["A"], environ["B"], environ["HOSTNAME"], environ["TERM"]) == (
        "1",
        "3",
        "box",
        "xterm",
    )
    assert from_dict(ExecSpec, json.loads(json.dumps(to_dict(spec)))) == spec
    with pytest.raises(ValueError, match="empty"):
        ExecSpec(command=())
    with pytest.raises(ValueError, match="environment"):
        ExecSpec(command=("x",), env={"A=B": "1"})


def test_to_dict_is_asdict_with_lists_for_tuples() -> None:
    # The one-walk encoder against the standard library's: same JSON.
    def reference(value: object) -> object:
        if isinstance(value, dict):
            return {k: reference(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [reference(v) for v in value]
        return value

    spec = ContainerSpec(
        command=("sh", "-c", "echo hi"),
        hostname="h",
        env={"A": "1"},
        labels={"l": "v"},
        limits=Limits(memory_bytes=64 << 20),
        mounts=(Mount(type="bind", source="/srv", target="/data", read_only=True),),
    )
    assert to_dict(spec) == reference(dataclasses.asdict(spec))
    assert json.dumps(to_dict(spec)) == json.dumps(reference(dataclasses.asdict(spec)))


def test_env_unset_removes_even_a_default_before_the_env_applies() -> None:
    spec = ContainerSpec(
        command=("true",),
        hostname="h",
        env={"HOME": "/x"},
        options=Options(env_unset=("PATH", "HOME")),
    )
    environ = spec.environ()
    assert "PATH" not in environ and environ["HOME"] == "/x"
