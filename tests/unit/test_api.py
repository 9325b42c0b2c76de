"""runtime/api.py: ``RuntimeApi`` is the whole public surface of ``Runtime``.

mypy checks that ``Runtime`` has every method of the protocol with a
compatible signature; these check what it does not: that no public method of
``Runtime`` is left out of the protocol, and that names, kinds and defaults of
the parameters are the same on both sides.
"""

from __future__ import annotations

import inspect

import pytest

from runtime import Runtime
from runtime.api import RuntimeApi


def public_methods(cls: type) -> set[str]:
    """Its own and those of its bases in runtime/ (``Runtime`` has ``FileVerbs``)."""
    return {
        name
        for klass in cls.__mro__
        if klass.__module__.startswith("runtime.")
        for name, value in vars(klass).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


def test_the_protocol_has_every_public_method_of_runtime() -> None:
    assert public_methods(RuntimeApi) == public_methods(Runtime)


@pytest.mark.parametrize("name", sorted(public_methods(Runtime)))
def test_parameters_have_the_same_names_kinds_and_defaults(name: str) -> None:
    def shape(cls: type) -> list[tuple[str, object, object]]:
        parameters = inspect.signature(getattr(cls, name)).parameters.values()
        return [(p.name, p.kind, p.default) for p in parameters]

    assert shape(RuntimeApi) == shape(Runtime)
