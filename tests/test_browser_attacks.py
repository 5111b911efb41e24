"""Issue 11, point 0: a web page the operator visits cannot turn the browser against gafferd.

A real headless Chromium loads an attacker's page from a second origin (another
port of 127.0.0.1, the same site; ``localhost``, another site; or a sandboxed frame,
whose origin is ``null``). The page tries
what the issue saw work: a ``text/plain`` fetch POST that needs no preflight (also
``no-cors``), an auto-submitted ``text/plain`` form whose body is JSON, a websocket
to a process' stdin, and reading ``GET /processes``. The victim is the API without
tokens and with default settings (the ``server`` fixture). The server side proves
each request arrived and was refused before any work (an ``auth.denied`` event),
nothing was created or run, and the process' stdin got nothing. The same page from
an origin listed in ``cors_origins`` gets through, so the test can fail. DNS
rebinding (a name the attacker controls, resolved to 127.0.0.1) gets 421.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, Response
from gevent.pywsgi import WSGIServer

from gaffer_gevent.api import create_app
from gaffer_gevent.manager import Manager
from tests.browser import WebDriver, chromium, needs_chromium
from tests.conftest import LiveServer, serving
from tests.helpers import child, wait_for

#: The attacker's name, which Chromium resolves to 127.0.0.1 (a rebound DNS answer).
REBOUND = "attacker.example"
ATTACKS = ("pwned-fetch", "pwned-nocors", "pwned-form")
LINE = "attack from the page\n"

#: The attacker's script: ``attack(config)`` fires every attack at once and records in
#: ``window.results`` what the page could learn of each.
ATTACK_JS = """
window.attack = (config) => {
  const results = window.results = {ws: {opened: false, messages: [], close: null}};
  const failed = (key) => (error) => { results[key] = "failed: " + error.name; };
  const command = (name) =>
    JSON.stringify({name: name, cmd: "touch", args: [config.markers[name]]});
  const post = (name, mode) => fetch(config.victim + "/processes", {
    method: "POST", mode: mode, headers: {"Content-Type": "text/plain"}, body: command(name)});
  post("pwned-fetch", "cors").then((r) => "status " + r.status).then(
    (value) => { results.fetch = value; }, failed("fetch"));
  post("pwned-nocors", "no-cors").then((r) => "type " + r.type).then(
    (value) => { results.nocors = value; }, failed("nocors"));
  fetch(config.victim + "/processes").then((r) => r.text().then((t) => r.status + " " + t)).then(
    (value) => { results.read = value; }, failed("read"));
  const ws = new WebSocket(config.websocket + "/wstreams/" + config.pid);
  ws.onopen = () => { results.ws.opened = true; ws.send(config.line); };
  ws.onmessage = (event) => { results.ws.messages.push(event.data); };
  ws.onclose = (event) => { results.ws.close = event.code; };
  // A text/plain form sends "name=value": split around an "=" in a string, that is JSON.
  const sink = document.createElement("iframe");
  sink.name = "sink";
  sink.hidden = true;
  document.body.appendChild(sink);
  const form = document.createElement("form");
  Object.assign(form, {method: "POST", enctype: "text/plain", target: "sink",
                       action: config.victim + "/processes"});
  const input = document.createElement("input");
  const json = JSON.stringify({name: "pwned-form", cmd: "touch",
                               args: [config.markers["pwned-form"]], env: {PAD: "="}});
  const equals = json.indexOf("=");
  Object.assign(input, {type: "hidden", name: json.slice(0, equals),
                        value: json.slice(equals + 1)});
  form.appendChild(input);
  document.body.appendChild(form);
  sink.onload = () => {  // the answer arrived; a page reads it only on its own origin
    try { results.form = sink.contentDocument.body.innerText; }
    catch (error) { results.form = "unreadable"; }
  };
  form.submit();
};
"""

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>a page the operator happens to visit</title></head>
<body><script>%(script)s
attack(%(config)s);
</script></body></html>
"""


#: The attacker's page in a sandboxed frame: its origin is opaque, its requests say
#: ``Origin: null`` (which a careless CORS setup echoes).
SANDBOXED = """<!doctype html>
<html><head><meta charset="utf-8"><title>a page with a sandboxed frame</title></head>
<body><iframe sandbox="allow-scripts allow-forms" srcdoc="%(page)s"></iframe></body></html>
"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium(tmp_path / "profile", f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1") as web:
        yield web


@dataclass
class Site:
    """The attacker's web site: one page, on its own port of 127.0.0.1."""

    port: int = 0
    page: str = ""

    def origin(self, host: str) -> str:
        return f"http://{host}:{self.port}"


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site()
    app = Flask("attacker")
    app.add_url_rule("/", view_func=lambda: Response(site.page, mimetype="text/html"))
    wsgi = WSGIServer(("127.0.0.1", 0), app, log=None)
    wsgi.start()
    site.port = wsgi.server_port
    yield site
    wsgi.stop(timeout=2)


@dataclass
class Victim:
    """gafferd's API with an echo process whose stdin is open to a websocket."""

    live: LiveServer
    markers: dict[str, Path]
    pid: int = 0
    denied: list[dict[str, Any]] = field(default_factory=list)
    audited: list[str] = field(default_factory=list)

    def config(self, victim: str | None = None) -> dict[str, Any]:
        """What ``attack`` needs; ``victim`` overrides the API's address (rebinding)."""
        url = self.live.url if victim is None else victim
        return {"victim": url, "websocket": "ws" + url[4:], "pid": self.pid, "line": LINE,
                "markers": {name: str(path) for name, path in self.markers.items()}}  # fmt: skip

    def output(self) -> bytes:
        """Everything the echo process wrote so far: what reached its stdin."""
        stream = self.live.manager.running[self.pid].streams["out"]
        return b"".join(chunk.data for chunk in stream.chunks)

    def stdin_got_nothing_else(self) -> None:
        """Write a line of our own and wait for its echo: had the page's line reached stdin,
        it would have been written earlier and echoed first."""
        with httpx.Client(base_url=self.live.url, timeout=10) as http:
            reply = http.post(f"/streams/{self.pid}/stdin", content=b"control\n")
            assert reply.status_code == 200, reply.text
        wait_for(lambda: b"control\n" in self.output(), timeout=10)
        assert self.output() == b"control\n"

    def refusals(self) -> list[tuple[str, str, str]]:
        """The refused requests, but the favicon a browser asks for by itself."""
        return sorted((d["method"], d["route"], d["error"]) for d in self.denied
                      if d["route"] != "/favicon.ico")  # fmt: skip

    def pwned(self) -> list[str]:
        return [name for name in self.live.manager.template_names() if name.startswith("pwned")]


def prepare(live: LiveServer, tmp_path: Path) -> Victim:
    victim = Victim(live, {name: tmp_path / f"{name}.marker" for name in ATTACKS})
    live.manager.bus.subscribe("auth.denied", lambda event, info: victim.denied.append(info))
    live.manager.bus.subscribe("api", lambda event, info: victim.audited.append(event))
    with httpx.Client(base_url=live.url, timeout=10) as http:
        body = {"name": "echo", **child("echo"), "redirect_input": True,
                "redirect_output": ["out"]}  # fmt: skip
        assert http.post("/processes", json=body).status_code == 200
        victim.pid = wait_for(lambda: http.get("/processes/echo/_pids").json()["pids"])[0]
    wait_for(lambda: victim.audited == ["api.create"])  # events arrive after the reply
    victim.audited.clear()
    return victim


def results(browser: WebDriver, *, closed: bool) -> dict[str, Any]:
    """What the page learnt, once every attack has settled (the websocket closed or not)."""

    def settled() -> dict[str, Any] | None:
        found: dict[str, Any] | None = browser.js("return window.results || null")
        if found is None or not all(k in found for k in ("fetch", "nocors", "read", "form")):
            return None
        ws = found["ws"]
        return found if (ws["close"] is not None) == closed and (closed or ws["messages"]) else None

    value: dict[str, Any] = wait_for(settled, timeout=20, interval=0.05)
    return value


@needs_chromium
@pytest.mark.parametrize(
    ("host", "sandboxed"),
    [("127.0.0.1", False), ("localhost", False), ("127.0.0.1", True)],
    ids=["same-site", "cross-site", "opaque-origin"],
)
def test_a_foreign_page_can_neither_run_a_command_nor_write_stdin_nor_read(
    server: LiveServer, site: Site, browser: WebDriver, tmp_path: Path, host: str, sandboxed: bool
) -> None:
    victim = prepare(server, tmp_path)
    site.page = PAGE % {"script": ATTACK_JS, "config": json.dumps(victim.config())}
    if sandboxed:
        site.page = SANDBOXED % {"page": html.escape(site.page)}
    browser.get(site.origin(host) + "/")
    if sandboxed:
        browser.frame(0)

    refused = "forbidden_origin"
    expected = sorted([("POST", "/processes", refused)] * 3 + [("GET", "/processes", refused),
                      ("GET", "/wstreams/<segment>", refused)])  # fmt: skip
    wait_for(lambda: len(victim.refusals()) >= len(expected), timeout=20)
    page = results(browser, closed=True)
    assert victim.refusals() == expected  # each attack reached gafferd and was refused
    assert victim.pwned() == []
    assert [path for path in victim.markers.values() if path.exists()] == []
    assert victim.audited == []  # nothing was created, started or written
    victim.stdin_got_nothing_else()
    # The page learnt nothing: no status, no body, and a websocket closed for policy.
    assert page["fetch"] == "failed: TypeError"
    assert page["nocors"] == "type opaque"
    assert page["read"] == "failed: TypeError"
    assert page["form"] == "unreadable"
    assert page["ws"]["close"] == 1008
    assert [json.loads(m) for m in page["ws"]["messages"]] == [{"error": refused}]


@needs_chromium
def test_the_same_page_from_a_listed_origin_gets_through(
    manager: Manager, site: Site, browser: WebDriver, tmp_path: Path
) -> None:
    """The positive control: only the listing differs, and every attack works."""
    origin = site.origin("localhost")
    with serving(create_app(manager, cors_origins=[origin]), manager) as live:
        victim = prepare(live, tmp_path)
        site.page = PAGE % {"script": ATTACK_JS, "config": json.dumps(victim.config())}
        browser.get(origin + "/")

        page = results(browser, closed=False)
        wait_for(lambda: all(path.exists() for path in victim.markers.values()), timeout=20)
        assert sorted(victim.pwned()) == sorted(ATTACKS)
        assert victim.denied == []
        assert page["fetch"] == "status 200"
        assert page["form"] == "unreadable"  # the answer is in a frame of another origin
        status, _, body = page["read"].partition(" ")
        assert status == "200" and "echo" in json.loads(body)
        assert page["ws"]["close"] is None and page["ws"]["messages"] == [LINE]
        wait_for(lambda: victim.output() == LINE.encode(), timeout=10)


@needs_chromium
def test_dns_rebinding_gets_421_for_every_attack(
    server: LiveServer, browser: WebDriver, tmp_path: Path
) -> None:
    """The attacker's name now resolves to 127.0.0.1: its page and gafferd share an origin,
    so the Origin check cannot help. The Host header names the attacker: 421."""
    victim = prepare(server, tmp_path)
    rebound = f"http://{REBOUND}:{server.port}"
    browser.get(rebound + "/processes")
    shown = browser.js("return document.body.innerText")
    assert json.loads(shown)["error"] == "misdirected_request"
    config = json.dumps(victim.config(rebound))
    assert browser.js(f"{ATTACK_JS}\nattack({config});\nreturn true;") is True

    refused = "misdirected_request"
    # Chromium retries a request answered 421 once, on a new connection (RFC 9110, 15.5.20):
    # each one is refused twice.
    expected = {("POST", "/processes", refused), ("GET", "/processes", refused),
                ("GET", "/wstreams/<segment>", refused)}  # fmt: skip
    wait_for(lambda: set(victim.refusals()) == expected, timeout=20)
    page = results(browser, closed=True)
    assert set(victim.refusals()) == expected
    assert victim.pwned() == []
    assert victim.audited == []
    assert [path for path in victim.markers.values() if path.exists()] == []
    victim.stdin_got_nothing_else()
    assert page["fetch"] == "status 421"  # same origin for the browser: it sees the refusal
    status, _, body = page["read"].partition(" ")
    assert status == "421" and json.loads(body)["error"] == refused
    assert json.loads(page["form"])["error"] == refused
    assert page["ws"]["close"] == 1008
    assert [json.loads(m) for m in page["ws"]["messages"]] == [{"error": refused}]


@pytest.mark.parametrize("host", [REBOUND, f"{REBOUND}:80", "192.0.2.1", "[2001:db8::1]:80"])
def test_a_host_that_names_no_address_of_gafferd_is_421(server: LiveServer, host: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for method, path in (("GET", "/processes"), ("POST", "/processes")):
            reply = http.request(method, path, headers={"Host": host}, content=b"{}")
            assert reply.status_code == 421
            assert reply.json()["error"] == "misdirected_request"
        for own in ("localhost", f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
            assert http.get("/processes", headers={"Host": own}).status_code == 200
