"""A real headless Chromium for the browser tests, driven over chromedriver's W3C WebDriver.

The protocol is spoken with httpx (already a dependency), so no browser-automation
package is needed. Install the browser with ``apt-get install chromium chromium-driver``;
a test module marks itself with ``needs_chromium`` and is skipped without it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
)

CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip


class WebDriver:
    """The few WebDriver commands the tests need, over plain HTTP."""

    def __init__(self, url: str, profile: Path, flags: list[str]) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        args = [*CHROME_FLAGS, *flags, f"--user-data-dir={profile}"]
        options = {"binary": CHROMIUM, "args": args}
        capabilities = {"browserName": "chrome", "goog:chromeOptions": options}
        reply = self.http.post("/session", json={"capabilities": {"alwaysMatch": capabilities}})
        assert reply.status_code == 200, reply.text
        self.session = f"/session/{reply.json()['value']['sessionId']}"

    def get(self, url: str) -> None:
        reply = self.http.post(f"{self.session}/url", json={"url": url})
        assert reply.status_code == 200, reply.text

    def js(self, script: str) -> Any:
        reply = self.http.post(f"{self.session}/execute/sync", json={"script": script, "args": []})
        assert reply.status_code == 200, reply.text
        return reply.json()["value"]

    def frame(self, index: int | None) -> None:
        """Run the next scripts in the page's ``index``-th frame (``None``: the top page)."""
        reply = self.http.post(f"{self.session}/frame", json={"id": index})
        assert reply.status_code == 200, reply.text

    def quit(self) -> None:
        try:
            self.http.delete(self.session)
        finally:
            self.http.close()


@contextlib.contextmanager
def chromium(profile: Path, *flags: str) -> Iterator[WebDriver]:
    """chromedriver in its own session and one Chromium window; both gone afterwards."""
    assert CHROMEDRIVER is not None
    port = free_port()
    driver = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return bool(httpx.get(f"{url}/status", timeout=2).json()["value"]["ready"])
        except httpx.HTTPError:
            return False

    web: WebDriver | None = None
    try:
        wait_for(ready, timeout=20, interval=0.05)
        web = WebDriver(url, profile, list(flags))
        yield web
    finally:
        if web is not None:
            web.quit()
        driver.terminate()
        try:
            driver.wait(10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(driver.pid, signal.SIGKILL)  # whatever chromium left in the group
            if driver.poll() is None:
                driver.wait(5)
