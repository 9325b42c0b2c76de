"""runtime.selection.Selector: which records a bulk operation picks, and
the selectors it refuses (naming the field)."""

from __future__ import annotations

import pytest

from runtime import InvalidArgument, Selector
from runtime.records import RUNNING, ContainerRecord
from runtime.selection import label_matches
from runtime.spec import ContainerSpec


def record(name: str, labels: dict[str, str]) -> ContainerRecord:
    spec = ContainerSpec(command=("true",), hostname="h", labels=labels)
    return ContainerRecord(id="0" * 64, name=name, status=RUNNING, spec=spec, created_at="t")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("a", True),  # present
        ("a=1", True),
        ("a=2", False),
        ("a=", False),  # set to the empty string, which it is not
        ("b", False),
        ("url=x=y", True),  # the value keeps its own '='
    ],
)
def test_label_matches_key_or_key_value(item: str, expected: bool) -> None:
    assert label_matches({"a": "1", "url": "x=y"}, item) is expected


def test_label_matches_an_empty_value() -> None:
    assert label_matches({"a": ""}, "a=") and label_matches({"a": ""}, "a")


def test_all_criteria_must_hold() -> None:
    selector = Selector(labels=("a=1", "team"), name_prefix="job-")
    assert selector.matches(record("job-1", {"a": "1", "team": "x"}))
    assert not selector.matches(record("job-1", {"a": "1"}))  # no team
    assert not selector.matches(record("web-1", {"a": "1", "team": "x"}))  # name
    assert not selector.matches(record("job-1", {"a": "2", "team": "x"}))  # value


def test_a_record_without_labels_matches_only_label_free_selectors() -> None:
    bare = ContainerRecord(
        id="0" * 64,
        name="x",
        status=RUNNING,
        spec=ContainerSpec(command=("true",), hostname="h"),
        created_at="t",
    )
    assert Selector(all=True).matches(bare)
    assert not Selector(labels=("a",)).matches(bare)


@pytest.mark.parametrize(
    ("selector", "field"),
    [
        (Selector(), "all"),  # nothing given never means "everything"
        (Selector(labels=("a", "=1")), "labels.1"),
        (Selector(name_prefix=""), "name_prefix"),
    ],
)
def test_unusable_selectors_name_the_field(selector: Selector, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        selector.check()
    assert caught.value.field == field


@pytest.mark.parametrize(
    "selector",
    [Selector(all=True), Selector(labels=("a",)), Selector(name_prefix="j"), Selector(refs=())],
)
def test_one_criterion_is_enough(selector: Selector) -> None:
    selector.check()
