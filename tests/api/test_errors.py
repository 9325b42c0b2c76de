"""app/errors.py: the statuses of the reliability errors, and their documentation."""

from __future__ import annotations

from app.errors import status_for
from runtime.errors import StorageFull, Unavailable


def test_a_full_state_dir_is_507_and_an_unreachable_launcher_503() -> None:
    assert status_for(StorageFull("/state", "no space left on device")) == 507
    assert status_for(Unavailable("the launcher went away")) == 503


def test_every_container_operation_documents_503_and_507() -> None:
    from app.config import Settings
    from app.main import create_app

    schema = create_app(Settings()).openapi()
    for path, operations in schema["paths"].items():
        if not path.startswith(("/containers", "/execs")):
            continue
        for method, operation in operations.items():
            assert {"503", "507"} <= set(operation["responses"]), (method, path)
            if "requestBody" in operation:
                assert "400" in operation["responses"], (method, path)
