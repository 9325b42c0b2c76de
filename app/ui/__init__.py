"""``/ui/``: the web console, one page served with its own assets (no CDN).

    /ui/                the page: index.html, app.css and the ES modules
                        under app/ui/static (plain JS, no build step):
                          api.js       fetch with the bearer token (asked for on a 401)
                          live.js      container changes: /events, else polling
                          terminal.js  xterm.js over the attach WebSocket
                          app.js       the table, details, logs, form, buttons
    /ui/vendor/xterm/   @xterm/xterm as scripts/setup installs it with npm into
                        build/ui/node_modules (git-ignored); when it is absent
                        these paths are 404 and the page says so

The console adds no API: the page calls the public endpoints only.
app/guard.py lets ``GET /ui/...`` through without a token (the page holds
no data; it must load to ask for the token); everything it fetches needs it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

PREFIX = "/ui"
STATIC = Path(__file__).with_name("static")
#: Where scripts/setup installs the terminal (the repository's build folder).
XTERM = Path(__file__).resolve().parents[2] / "build/ui/node_modules/@xterm/xterm"


def install(app: FastAPI, xterm: Path = XTERM) -> None:
    # Mounts match in order: the vendor folder before the page's own.
    if (xterm / "lib/xterm.mjs").is_file():
        app.mount(f"{PREFIX}/vendor/xterm", StaticFiles(directory=xterm), name="ui-xterm")
    app.mount(PREFIX, StaticFiles(directory=STATIC, html=True), name="ui")
