"""The web console (/ui/, app/ui) in headless Chromium against a real
service and real containers: what it lists, shows and does must be what the
API says (checked over HTTP), and the terminal must round-trip through a
container's pty."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.browser import (
    cell,
    chromium,
    click,
    click_row,
    row,
    terminal_text,
    text,
    type_in_terminal,
    wait_for,
)
from tests.e2e.conftest import Service, free_port

TOKEN = "console-token-0123456789"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def api(service: Service) -> Iterator[httpx.Client]:
    """A client for the shared service; what a test starts is removed after it."""
    with httpx.Client(base_url=service.url, timeout=30) as c:
        c.started = []  # type: ignore[attr-defined]
        yield c
        for ref in c.started:  # type: ignore[attr-defined]
            c.delete(f"/containers/{ref}", params={"force": "true"})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def start(api: httpx.Client, command: list[str], **spec: object) -> dict[str, object]:
    name = unique("ui")
    r = api.post("/containers", json={"command": command, "name": name, **spec})
    assert r.status_code == 201, r.text
    api.started.append(name)  # type: ignore[attr-defined]
    body: dict[str, object] = r.json()
    return body


def open_console(browser: WebDriver, url: str, select: str | None = None) -> None:
    browser.get("about:blank")  # a new page each time, not a jump within the last one
    browser.get(f"{url}/ui/{'#' + select if select else ''}")
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def test_the_table_lists_a_started_container_with_live_figures(
    browser: WebDriver, service: Service, api: httpx.Client
) -> None:
    c = start(api, ["sh", "-c", "exec sleep 60"])
    name = str(c["name"])
    open_console(browser, service.url)
    wait_for(lambda: row(browser, name).get_attribute("data-status") == "running")
    shown = wait_for(
        lambda: [cell(browser, name, col) for col in ("status", "image", "command", "exit")]
    )
    assert shown == ["running", "host", "sh -c exec sleep 60", ""]
    # Memory from GET /containers/{ref}/stats, CPU once there are two samples.
    memory = wait_for(lambda: cell(browser, name, "memory"), what="memory")
    assert memory.endswith(("KiB", "MiB"))
    assert wait_for(lambda: cell(browser, name, "cpu"), what="cpu").endswith("%")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "events"
    # An exit shows up by itself (its die event, from the service's /events).
    api.post(f"/containers/{name}/kill")
    wait_for(lambda: cell(browser, name, "exit") == "137 (SIGKILL)", what="exit code")


def test_details_show_the_container_and_follow_its_logs(
    browser: WebDriver, service: Service, api: httpx.Client
) -> None:
    # later-line waits for the test's go (a file an exec makes), not for a
    # clock: a page that takes a second to open must not see it early.
    c = start(
        api,
        [
            "sh",
            "-c",
            "echo first-line; echo to-stderr >&2; "
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo later-line; exec sleep 60",
        ],
    )
    open_console(browser, service.url)
    click_row(browser, str(c["name"]))
    wait_for(lambda: text(browser, 'dd[data-field="id"]') == c["id"], what="the id")
    assert text(browser, 'dd[data-field="command"]') == json.dumps(
        c["command"], separators=(",", ":")
    )
    logs = browser.find_element(By.ID, "logs")
    wait_for(lambda: "first-line" in logs.text and "to-stderr" in logs.text, what="logs")
    assert "later-line" not in logs.text
    touch = {"command": ["touch", "/tmp/go"]}
    go = api.post(f"/containers/{c['id']}/exec", params={"wait": "true"}, json=touch)
    assert (go.status_code, go.json()["exit_code"]) == (201, 0), go.text
    # Printed now, after the page showed the first lines: it arrives through follow=true.
    wait_for(lambda: "later-line" in logs.text, what="the followed line")
    assert "(following)" in text(browser, "#logs-state")


def test_the_stop_button_stops_a_running_container(
    browser: WebDriver, service: Service, api: httpx.Client
) -> None:
    c = start(api, ["sleep", "600"])
    open_console(browser, service.url, select=str(c["id"]))
    click(browser, "#btn-stop")
    # sleep is PID 1 without a SIGTERM handler: stop ends it with SIGKILL.
    after = wait_for(
        lambda: (r := api.get(f"/containers/{c['id']}").json())["status"] == "exited" and r,
        what="the exit",
    )
    assert after["signal"] == "SIGKILL" and after["exit_code"] == 137
    details = browser.find_element(By.ID, "details")
    wait_for(lambda: details.get_attribute("data-status") == "exited", what="details")
    assert not browser.find_element(By.ID, "btn-stop").is_enabled()


def test_a_terminal_on_a_tty_container_round_trips(
    browser: WebDriver, service: Service, api: httpx.Client
) -> None:
    c = start(api, ["/bin/sh"], tty=True)
    open_console(browser, service.url, select=str(c["id"]))
    click(browser, "#btn-terminal")
    wait_for(lambda: "#" in terminal_text(browser), what="the prompt")
    # The shell computes the answer: it cannot come from a local echo.
    type_in_terminal(browser, "echo sum=$((6*7)); hostname\n")
    answer = f"sum=42\n{c['hostname']}\n"
    wait_for(lambda: answer in terminal_text(browser), what="the shell's answer")
    type_in_terminal(browser, "exit 5\n")
    wait_for(lambda: "[exited: exit code 5]" in terminal_text(browser), what="the exit")
    assert api.get(f"/containers/{c['id']}").json()["exit_code"] == 5


def test_exec_opens_a_shell_in_a_running_container(
    browser: WebDriver, service: Service, api: httpx.Client
) -> None:
    c = start(api, ["sleep", "60"])
    open_console(browser, service.url, select=str(c["id"]))
    click(browser, "#btn-exec")
    wait_for(lambda: "#" in terminal_text(browser), what="the exec's prompt")
    type_in_terminal(browser, "cat /proc/1/cmdline | tr '\\0' ' '; echo :end\n")
    wait_for(lambda: "sleep 60 :end" in terminal_text(browser), what="PID 1 seen from the exec")
    execs = api.get(f"/containers/{c['id']}/execs").json()
    assert [e["command"] for e in execs] == [["/bin/sh"]]


def test_the_form_starts_a_container(
    browser: WebDriver, service: Service, api: httpx.Client
) -> None:
    name = unique("form")
    api.started.append(name)  # type: ignore[attr-defined]
    open_console(browser, service.url)
    form = browser.find_element(By.ID, "create")
    form.find_element(By.NAME, "command").send_keys("sh -c 'echo \"from the form\"; sleep 30'")
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.NAME, "memory").send_keys("64")
    form.find_element(By.NAME, "pids").send_keys("16")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    created = wait_for(lambda: api.get("/containers", params={"name": name}).json(), what="it")
    assert created[0]["command"] == ["sh", "-c", 'echo "from the form"; sleep 30']
    assert created[0]["limits"]["memory_bytes"] == 64 * 1024 * 1024
    assert created[0]["limits"]["pids"] == 16
    # The console selects what it started and shows its output.
    logs = browser.find_element(By.ID, "logs")
    wait_for(lambda: "from the form" in logs.text, what="its logs")
    assert browser.find_element(By.ID, "detail-title").text == name


def test_live_updates_come_from_events_when_the_service_has_them(
    browser: WebDriver, service: Service, api: httpx.Client
) -> None:
    # A stand-in stream (the page's fetch of /events, replaced before the
    # page loads) shows that live.js refreshes per event and does not poll.
    script = """
      const realFetch = window.fetch;
      window.fetch = (url, options) => {
        if (!String(url).startsWith('/events')) return realFetch(url, options);
        const stream = new ReadableStream({ start(c) { window.pushEvent = (e) =>
          c.enqueue(new TextEncoder().encode(JSON.stringify(e) + '\\n')); } });
        return Promise.resolve(new Response(stream, { status: 200 }));
      };"""
    added = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
    try:
        open_console(browser, service.url)
        body = browser.find_element(By.TAG_NAME, "body")
        wait_for(lambda: body.get_attribute("data-live") == "events", what="events mode")
        c = start(api, ["sleep", "60"])
        time.sleep(2.5)  # longer than the polling period: nothing polls
        assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-name="{c["name"]}"]')
        event = {"type": "container", "action": "start", "id": c["id"], "name": c["name"]}
        browser.execute_script(f"window.pushEvent({json.dumps(event)})")
        wait_for(lambda: row(browser, str(c["name"])), timeout=2, what="the row after the event")
    finally:
        browser.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]}
        )


@pytest.fixture
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("console")
    token_file = base / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    svc = Service(
        state_dir=Path(base) / "state",
        port=free_port(),
        extra_args=["--token-file", str(token_file)],
        env={"MYDOCKER_TOKEN": ""},
    )
    svc.start()
    yield svc
    svc.close()


def test_with_a_token_the_console_asks_for_it_then_works(
    browser: WebDriver, guarded: Service
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=guarded.url, headers=auth, timeout=30) as c:
        r = c.post("/containers", json={"command": ["/bin/sh"], "name": "guarded-sh", "tty": True})
        assert r.status_code == 201, r.text
    browser.get(f"{guarded.url}/ui/")  # the shell loads without the token
    dialog = browser.find_element(By.ID, "token-dialog")
    wait_for(lambda: dialog.is_displayed(), what="the token dialog")
    assert not browser.find_elements(By.CSS_SELECTOR, "#containers tbody tr")
    browser.find_element(By.ID, "token-input").send_keys("not-the-token")
    browser.find_element(By.ID, "token-submit").click()
    message = browser.find_element(By.ID, "token-message")
    wait_for(lambda: dialog.is_displayed() and "refused" in message.text, what="a refusal")
    browser.find_element(By.ID, "token-input").send_keys(TOKEN)
    browser.find_element(By.ID, "token-submit").click()
    click_row(browser, "guarded-sh")
    # The terminal's WebSocket carries the token too (a subprotocol).
    click(browser, "#btn-terminal")
    wait_for(lambda: "#" in terminal_text(browser), what="the prompt")
    type_in_terminal(browser, "echo guarded=$((40+2))\n")
    wait_for(lambda: "guarded=42" in terminal_text(browser), what="the shell's answer")


def test_without_xterm_the_console_works_and_says_so(
    browser: WebDriver, service: Service, api: httpx.Client
) -> None:
    # As if scripts/setup could not install xterm.js: its files do not load.
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/ui/vendor/*"]})
    try:
        c = start(api, ["/bin/sh"], tty=True)
        open_console(browser, service.url, select=str(c["id"]))
        body = browser.find_element(By.TAG_NAME, "body")
        wait_for(lambda: body.get_attribute("data-terminal") == "unavailable", what="no xterm")
        wait_for(lambda: cell(browser, str(c["name"]), "status") == "running", what="the table")
        click(browser, "#btn-terminal")
        notice = browser.find_element(By.ID, "terminal-unavailable")
        wait_for(lambda: notice.is_displayed(), what="the notice")
        assert "terminal is unavailable" in notice.text
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.execute_cdp_cmd("Network.disable", {})
