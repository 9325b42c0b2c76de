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


def test_every_operation_with_a_json_body_documents_400() -> None:
    from app.config import Settings
    from app.main import create_app

    schema = create_app(Settings()).openapi()
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                checked += 1
                assert "400" in operation["responses"], (method, path)
    assert checked >= 6  # containers, kill, exec, images pull and tag, networks, volumes


def test_one_table_answers_both_apis() -> None:
    from app.errors import docker_message, docker_status_for
    from runtime.errors import InvalidArgument, InvalidState, NotFound, NotModified

    already = NotModified("container x is already running")
    assert (status_for(already), docker_status_for(already)) == (409, 304)
    bad = InvalidArgument("user", "nope")
    assert (status_for(bad), docker_status_for(bad)) == (422, 400)
    state = InvalidState("container x is not running")
    assert (status_for(state), docker_status_for(state)) == (409, 409)
    assert docker_message(NotFound("image", "alpine")) == "No such image: alpine"
    assert docker_message(NotFound("exec", "e1")) == "No such exec instance: e1"
    assert docker_message(NotFound("container", "c")) == "no such container: c"
