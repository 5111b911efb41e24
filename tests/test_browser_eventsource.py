"""A real headless Chromium: an EventSource page reconnects by itself after the server cuts
its feed, sends Last-Event-ID, and ends up showing every line exactly once, in order; the
child print()s its lines unbuffered (two writes each), and no event arrives empty.

Chromium is driven through chromedriver's W3C WebDriver protocol with httpx (already a
dependency), so no browser-automation package is needed. Install the browser with
``apt-get install chromium chromium-driver``; without it the test is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, Response

from gaffer_gevent.api.access import READ, ROUTES
from tests.conftest import LiveServer
from tests.helpers import child, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
)

CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip

LINES = 400

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>resume</title></head>
<body><pre id="log"></pre>
<script>
window.lines = []; window.opens = 0; window.gaps = 0; window.empty = 0;
const log = document.getElementById("log");
const source = new EventSource(%(url)s);
source.onopen = () => { window.opens += 1; };
source.addEventListener("gap", () => { window.gaps += 1; });
source.addEventListener("out", (event) => {
  if (event.data === "") { window.empty += 1; }
  for (const line of event.data.split("\\n")) { window.lines.push(line); }
  log.textContent += event.data + "\\n";
});
</script></body></html>
"""


class WebDriver:
    """The few WebDriver commands the test needs, over plain HTTP."""

    def __init__(self, url: str, profile: Path) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        options = {"binary": CHROMIUM, "args": [*CHROME_FLAGS, f"--user-data-dir={profile}"]}
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

    def quit(self) -> None:
        try:
            self.http.delete(self.session)
        finally:
            self.http.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
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
        web = WebDriver(url, tmp_path / "profile")
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


def cut_feeds(server: LiveServer, pid: int) -> int:
    """End every eventsource feed of the stream from the server side, as a restart would."""
    stream = server.manager.running[pid].streams["out"]
    feeds = [s for s in list(stream.subscriptions) if s.owner.startswith("eventsource")]
    for sub in feeds:
        sub.close()
    return len(feeds)


def test_eventsource_page_reconnects_and_misses_no_line(
    server: LiveServer, browser: WebDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Flask = server.app  # type: ignore[assignment]
    pids: list[int] = []

    def page() -> Response:
        url = f"/streams/{pids[0]}/out?feed=eventsource&since=0"
        return Response(PAGE % {"url": json.dumps(url)}, mimetype="text/html")

    app.add_url_rule("/page", view_func=page)
    monkeypatch.setitem(ROUTES, ("page", "GET"), READ)  # the guard refuses unlisted routes
    with httpx.Client(base_url=server.url, timeout=10) as client:
        body = {"name": "count", **child("printer", str(LINES), "0.01", "wait"),
                "redirect_output": ["out"]}  # fmt: skip
        assert client.post("/processes", json=body).status_code == 200
        pids.extend(client.get("/processes/count/_pids").json()["pids"])
    browser.get(f"{server.url}/page")

    def seen() -> int:
        return int(browser.js("return window.lines.length"))

    wait_for(lambda: seen() >= 50, timeout=30, interval=0.05)
    assert cut_feeds(server, pids[0]) == 1
    wait_for(lambda: browser.js("return window.opens") >= 2 and seen() >= 200, timeout=30)
    assert cut_feeds(server, pids[0]) == 1
    expected = [f"line {n}" for n in range(1, LINES + 1)]
    wait_for(lambda: seen() >= LINES, timeout=30, interval=0.05)
    assert browser.js("return window.lines") == expected
    assert browser.js("return window.opens") == 3
    assert browser.js("return window.gaps") == 0
    assert browser.js("return window.empty") == 0
    shown = browser.js("return document.getElementById('log').textContent").split()
    assert [f"{a} {b}" for a, b in zip(shown[::2], shown[1::2], strict=True)] == expected
