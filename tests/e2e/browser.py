"""Headless Chromium for the web console's tests and screenshots.

Debian's ``chromium`` and ``chromium-driver`` (scripts/setup installs them),
driven by Selenium through the system chromedriver: the driver's path is
given and ``SE_OFFLINE`` is set, so Selenium Manager never looks for (or
downloads) a browser or driver of its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

T = TypeVar("T")


@contextmanager
def chromium(width: int = 1400, height: int = 900) -> Iterator[WebDriver]:
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        # As root Chromium refuses to start with its sandbox.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, what: str = "") -> T:
    """``check()``'s first truthy answer; elements that are replaced while
    being read (the table re-renders every 2 s) count as not yet."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
            if last:
                return last
        except (NoSuchElementException, StaleElementReferenceException) as err:
            last = err
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")
        time.sleep(0.05)


def row(driver: WebDriver, name: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#containers tr[data-name="{name}"]')


def cell(driver: WebDriver, name: str, column: str) -> str:
    return row(driver, name).find_element(By.CSS_SELECTOR, f"td.{column}").text


def terminal_text(driver: WebDriver) -> str:
    """What xterm.js shows (its DOM renderer's rows)."""
    return driver.find_element(By.CSS_SELECTOR, "#terminal .xterm-rows").text


def type_in_terminal(driver: WebDriver, text: str) -> None:
    """Keys into xterm's hidden textarea, as a person typing."""
    driver.find_element(By.CSS_SELECTOR, "#terminal textarea").send_keys(text)


def click(driver: WebDriver, css: str, timeout: float = 10.0) -> None:
    """Click the element once it is shown and enabled; the page re-renders
    its table and details as the service changes, so find it afresh."""

    def clicked() -> bool:
        element = driver.find_element(By.CSS_SELECTOR, css)
        if not (element.is_displayed() and element.is_enabled()):
            return False
        element.click()
        return True

    wait_for(clicked, timeout, what=f"a click on {css}")


def click_row(driver: WebDriver, name: str) -> None:
    click(driver, f'#containers tr[data-name="{name}"] td.name')


def text(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text
