"""app/ui: the console's page and its xterm.js files, and what the guard lets
through without a token (the static shell, nothing else)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import ui
from app.config import Settings
from app.main import create_app
from tests.api.test_containers_api import FakeRuntime

TOKEN = "s3cret-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGE_FILES = ["index.html", "app.js", "api.js", "live.js", "terminal.js", "app.css"]


def make_app(**settings: Any) -> FastAPI:
    return create_app(Settings(state_dir="/nonexistent", **settings), runtime=FakeRuntime())  # type: ignore[arg-type]


@pytest.fixture
def guarded() -> Iterator[TestClient]:
    with TestClient(make_app(token=TOKEN)) as c:
        yield c


def test_the_page_and_its_modules_are_served(guarded: TestClient) -> None:
    page = guarded.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    for name in PAGE_FILES:
        r = guarded.get(f"/ui/{name}")
        assert r.status_code == 200, name
        assert r.content == (ui.STATIC / name).read_bytes()
    assert guarded.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert guarded.get("/ui", follow_redirects=False).status_code in (307, 308)


def test_the_shell_loads_without_the_token_and_nothing_else_does(guarded: TestClient) -> None:
    assert guarded.get("/ui/").status_code == 200
    assert guarded.head("/ui/app.js").status_code == 200
    # What the page then asks for needs the token.
    for method, path in [("GET", "/containers"), ("GET", "/docs")]:
        assert guarded.request(method, path).status_code == 401, path
        assert guarded.request(method, path, headers=AUTH).status_code == 200, path
    # Only reads of the prefix are open, and not a way out of it.
    assert guarded.post("/ui/").status_code == 401
    assert guarded.get("/ui/../containers").status_code == 401
    assert guarded.get("/ui/%2e%2e/containers").status_code == 401
    assert guarded.get("/uix").status_code == 401


def test_xterm_is_served_from_the_build_folder(tmp_path: Path) -> None:
    xterm = tmp_path / "xterm"
    (xterm / "lib").mkdir(parents=True)
    (xterm / "css").mkdir()
    (xterm / "lib/xterm.mjs").write_text("export class Terminal {}\n")
    (xterm / "css/xterm.css").write_text(".xterm {}\n")
    app = FastAPI()
    ui.install(app, xterm=xterm)
    with TestClient(app) as c:
        assert c.get("/ui/vendor/xterm/lib/xterm.mjs").text == "export class Terminal {}\n"
        assert c.get("/ui/vendor/xterm/css/xterm.css").status_code == 200
        assert c.get("/ui/").status_code == 200


def test_without_xterm_the_page_still_loads_and_the_terminal_is_404(tmp_path: Path) -> None:
    app = FastAPI()
    ui.install(app, xterm=tmp_path / "missing")
    with TestClient(app) as c:
        assert c.get("/ui/").status_code == 200
        assert c.get("/ui/vendor/xterm/lib/xterm.mjs").status_code == 404


def test_the_page_shows_data_as_text_only() -> None:
    # Container names, commands and logs are anybody's strings: never HTML.
    for name in PAGE_FILES:
        if name.endswith(".js"):
            assert "innerHTML" not in (ui.STATIC / name).read_text(), name
