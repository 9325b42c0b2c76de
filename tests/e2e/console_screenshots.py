"""Screenshots of the web console for docs/console.md, taken in headless Chromium.

    .venv/bin/python -m tests.e2e.console_screenshots [--out docs/img]

As root (it runs real containers): starts a service of its own on a free
port with a temporary state dir, starts a few containers (a finished one,
a busy one, a tty shell), and saves console-table.png, console-details.png
and console-terminal.png.  Everything it started is gone when it ends.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By

from bench.service import ROOT, Service, free_port
from tests.e2e.browser import (
    cell,
    chromium,
    click,
    terminal_text,
    type_in_terminal,
    wait_for,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mydocker-shots-") as tmp:
        service = Service(state_dir=Path(tmp) / "state", port=free_port())
        service.start()
        try:
            shoot(service, args.out)
        finally:
            service.close()


def shoot(service: Service, out: Path) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as api:

        def create(name: str, command: list[str], **spec: object) -> dict[str, object]:
            body = {"name": name, "command": command, **spec}
            r = api.post("/containers", json=body)
            r.raise_for_status()
            result: dict[str, object] = r.json()
            return result

        create("build-42", ["sh", "-c", "echo compiling; echo 'error: 3 tests failed' >&2; exit 3"])
        create(
            "oom-demo",
            ["python3", "-c", "b = bytearray(64 << 20)"],
            limits={"memory_bytes": 32 << 20},
        )
        web = create(
            "web",
            [
                "sh",
                "-c",
                'i=0; while :; do i=$((i+1)); echo "request $i: GET / 200"; sleep 0.5; done',
            ],
            labels={"app": "web"},
        )
        create("busy", ["sh", "-c", "while :; do :; done"], limits={"cpus": 0.25})
        shell = create("shell", ["/bin/sh"], tty=True, cap_add=["SYS_ADMIN"])
        with chromium(width=1400, height=820) as browser:
            browser.get(f"{service.url}/ui/")
            wait_for(lambda: cell(browser, "busy", "cpu"), timeout=15, what="CPU figures")
            wait_for(lambda: cell(browser, "oom-demo", "exit"), timeout=15, what="the OOM kill")
            browser.save_screenshot(str(out / "console-table.png"))

            browser.get(f"{service.url}/ui/#{web['id']}")
            logs = browser.find_element(By.ID, "logs")
            wait_for(lambda: "request 6:" in logs.text, timeout=15, what="some logs")
            time.sleep(2.2)  # a second stats sample: CPU % in the details
            browser.save_screenshot(str(out / "console-details.png"))

            browser.get(f"{service.url}/ui/#{shell['id']}")
            click(browser, "#btn-terminal")
            wait_for(lambda: "#" in terminal_text(browser), what="the prompt")
            for line in (
                "hostname; hostname Linux; hostname",
                "ip link",
                "ps -e -o pid,args",
            ):
                # One at a time, as a person would: typed-ahead input is
                # echoed in the middle of the previous command's output.
                prompts = terminal_text(browser).count("# ")
                type_in_terminal(browser, line + "\n")

                def prompted(n: int = prompts) -> bool:
                    return terminal_text(browser).count("# ") > n

                wait_for(prompted, what=line)
            browser.execute_script(
                "document.getElementById('terminal-box').scrollIntoView({block: 'start'})"
            )
            browser.save_screenshot(str(out / "console-terminal.png"))
        print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
