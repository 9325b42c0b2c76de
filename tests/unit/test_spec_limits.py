"""``runtime.spec.Limits``: bounds, merging with defaults, the dict round trip."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.spec import LIMIT_BOUNDS, ContainerSpec, InvalidField, Limits, from_dict, to_dict


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_bytes", 0),
        ("memory_bytes", 1 << 50),
        ("pids", -1),
        ("cpus", 0),
        ("cpus", 0.001),
        ("timeout_seconds", 0),
        ("output_bytes", 0),
        ("nofile", (1 << 20) + 1),
        ("fsize_bytes", -5),
    ],
)
def test_out_of_range_names_the_field(field, value):
    with pytest.raises(InvalidField) as info:
        Limits(**{field: value})
    assert info.value.field == f"limits.{field}"
    assert "must be between" in str(info.value)


def test_integers_only_where_it_counts():
    with pytest.raises(InvalidField, match="limits.pids: must be an integer"):
        Limits(pids=2.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidField, match="must be a number"):
        Limits(cpus=True)
    assert Limits(cpus=2, timeout_seconds=1).cpus == 2


def test_bounds_are_accepted_inclusively():
    for field, (low, high) in LIMIT_BOUNDS.items():
        kind = float if field in ("cpus", "timeout_seconds") else int
        for bound in (low, high):
            values: dict[str, Any] = {field: kind(bound)}
            Limits(**values)


def test_over_fills_unset_fields_from_defaults():
    defaults = Limits(memory_bytes=256 << 20, timeout_seconds=60)
    merged = Limits(timeout_seconds=5, pids=10).over(defaults)
    assert merged == Limits(memory_bytes=256 << 20, timeout_seconds=5, pids=10)
    assert Limits().over(Limits()) == Limits()


def test_needs_cgroup_only_for_cgroup_limits():
    assert not Limits(timeout_seconds=1, nofile=10, output_bytes=5).needs_cgroup
    assert Limits(pids=1).needs_cgroup


def test_spec_round_trips_with_limits():
    spec = ContainerSpec(command=("true",), hostname="h", limits=Limits(cpus=0.5, nofile=64))
    assert from_dict(ContainerSpec, to_dict(spec)) == spec
    old = to_dict(ContainerSpec(command=("true",), hostname="h"))
    del old["limits"]  # a record written before limits existed
    assert from_dict(ContainerSpec, old).limits == Limits()
