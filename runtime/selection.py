"""Which containers a bulk operation means: ``Selector``.

    labels       each ``k`` (the label is set) or ``k=v`` (set to ``v``),
                 Docker's ``--filter label=`` syntax; all must hold
    name_prefix  the name starts with it
    refs         ids, names or unique id prefixes, as single-container
                 routes take them (resolved by ``Runtime``, not here)
    all          every container; the only way to select without a filter,
                 so that an empty body never means "everything"

The criteria given must all hold (AND).  No HTTP here: app/schemas/ maps
the request body onto it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runtime.errors import InvalidArgument
from runtime.records import ContainerRecord


def label_matches(labels: Mapping[str, str], item: str) -> bool:
    """``k`` (present) or ``k=v`` (equal); the value may itself hold ``=``."""
    key, sep, value = item.partition("=")
    return labels.get(key) == value if sep else key in labels


@dataclass(frozen=True)
class Selector:
    labels: tuple[str, ...] = ()
    name_prefix: str | None = None
    refs: tuple[str, ...] | None = None
    all: bool = False

    def check(self) -> None:
        """InvalidArgument naming the field when the selector is unusable."""
        for index, item in enumerate(self.labels):
            if not item.partition("=")[0]:
                raise InvalidArgument(f"labels.{index}", f"{item!r} has an empty key")
        if self.name_prefix == "":
            raise InvalidArgument("name_prefix", "empty: use all to select every container")
        if not self.all and not self.labels and self.name_prefix is None and self.refs is None:
            raise InvalidArgument(
                "all", "give labels, name_prefix or ids, or all: true for every container"
            )

    def matches(self, record: ContainerRecord) -> bool:
        """Whether the record passes the filters (``refs`` aside)."""
        if self.name_prefix is not None and not record.name.startswith(self.name_prefix):
            return False
        labels = record.spec.labels
        return all(label_matches(labels, item) for item in self.labels)
