"""The API tests' client: the app over the test file's ``fake`` (a FakeRuntime).

Each test file defines its own ``fake`` fixture (the records and output it
needs); ``client`` puts that fake behind the app and runs its lifespan.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.fakes.runtime import FakeRuntime


@pytest.fixture
def client(fake: FakeRuntime) -> Iterator[TestClient]:
    app = create_app(Settings(state_dir="/nonexistent"), runtime=fake)
    with TestClient(app) as c:
        yield c
