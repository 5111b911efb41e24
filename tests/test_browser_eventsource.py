"""A real headless Chromium: an EventSource page reconnects by itself after the server cuts
its feed, sends Last-Event-ID, and ends up showing every line exactly once, in order; the
child print()s its lines unbuffered (two writes each), and no event arrives empty.

The page is served by the API's own server, so its route declares a role in
``access.ROUTES`` as every route must (the guard refuses the others). Chromium comes
from ``tests/browser.py``; without it the test is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask, Response

from gaffer_gevent.api import access
from tests.browser import WebDriver, chromium, needs_chromium
from tests.conftest import LiveServer
from tests.helpers import child, wait_for

pytestmark = needs_chromium

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


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium(tmp_path / "profile") as web:
        yield web


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
    monkeypatch.setitem(access.ROUTES, ("page", "GET"), access.READ)
    pids: list[int] = []

    def page() -> Response:
        url = f"/streams/{pids[0]}/out?feed=eventsource&since=0"
        return Response(PAGE % {"url": json.dumps(url)}, mimetype="text/html")

    app.add_url_rule("/page", view_func=page)
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
