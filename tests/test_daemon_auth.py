"""Tokens in a real gafferd: roles, a SIGHUP that removes a token, the audit trail, network binds.

gafferd runs as a subprocess (``tests/gafferd.py``'s ``Gafferd``) with ``-v`` and a
config holding ``[token:admin]`` (role admin) and ``[token:viewer]`` (role read). Its
stdout and stderr go to its log file, so a test can look for audit lines and prove
that no token ever shows up in them.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gevent
import httpx
import psutil
import pytest
from gevent.event import Event

from gaffer_gevent.auth import hash_token, mint_token

from .gafferd import Gafferd
from .helpers import wait_for, write_config


@dataclass(frozen=True)
class Tokens:
    admin: str
    viewer: str


def auth_config(tokens: Tokens, *, viewer: bool = True) -> str:
    text = f"[token:admin]\nrole = admin\nhash = {hash_token(tokens.admin)}\n"
    if viewer:
        text += f"[token:viewer]\nrole = read\nhash = {hash_token(tokens.viewer)}\n"
    return text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_never_shown(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret[:16] not in output  # not even a prefix of it


class Logs:
    """gafferd's stdout and stderr, line by line, from its log file."""

    def __init__(self, gafferd: Gafferd) -> None:
        self.gafferd = gafferd

    def finish(self) -> str:
        """Everything, once gafferd has exited."""
        assert self.gafferd.proc.poll() is not None
        return self.gafferd.log_text()

    def line_with(self, *words: str) -> str | None:
        lines = self.gafferd.log.lines
        return next((line for line in lines if all(w in line for w in words)), None)


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(mint_token(), mint_token())


@pytest.fixture
def config(tmp_path: Path, tokens: Tokens) -> Path:
    return write_config(tmp_path / "gaffer.ini", auth_config(tokens))


@pytest.fixture
def daemon(config: Path) -> Iterator[tuple[Gafferd, Logs]]:
    with Gafferd(config, "-v") as gafferd:
        yield gafferd, Logs(gafferd)


def test_every_route_but_ping_and_health_needs_a_token_with_the_role(
    daemon: tuple[Gafferd, Logs], tokens: Tokens
) -> None:
    gafferd, _ = daemon
    http = gafferd.http
    refused = http.get("/processes")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["error"] == "unauthorized"
    wrong = http.get("/processes", headers=bearer(mint_token()))
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert http.get("/processes", headers=bearer(tokens.viewer)).json() == []
    assert http.get("/auth/whoami", headers=bearer(tokens.viewer)).json() == {
        "name": "viewer", "role": "read", "scope": ["*"],
    }  # fmt: skip

    body = {"name": "viewer-made", "cmd": "sleep", "args": ["600"]}
    forbidden = http.post("/processes", json=body, headers=bearer(tokens.viewer))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == "forbidden" and "admin" in forbidden.json()["reason"]
    assert http.post("/processes", json=body).status_code == 401
    assert http.get("/processes", headers=bearer(tokens.admin)).json() == []  # nothing was made

    assert http.get("/ping").text == "OK"
    health = http.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert gafferd.stop() == 0


class Feed:
    """An open ``/watch`` eventsource feed, read by a greenlet until the server ends it."""

    def __init__(self, url: str, query: str, headers: dict[str, str] | None = None) -> None:
        self.http = httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=30))
        self.context = self.http.stream("GET", f"/watch?feed=eventsource{query}", headers=headers)
        self.response = self.context.__enter__()
        # The status line comes once the view has returned, so the feed is tracked by now.
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.data = b""
        self.error: Exception | None = None
        self.ended = Event()
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        try:
            for chunk in self.response.iter_raw():
                self.data += chunk
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.ended.set()

    def close(self) -> None:
        self.reader.kill(timeout=5)
        self.context.__exit__(None, None, None)
        self.http.close()


def test_sighup_without_a_token_ends_its_feeds_and_its_access(
    daemon: tuple[Gafferd, Logs], tokens: Tokens, config: Path
) -> None:
    gafferd, logs = daemon
    http = gafferd.http

    def ticket() -> str:
        reply = http.post("/auth/ticket", headers=bearer(tokens.viewer))
        assert reply.status_code == 200 and reply.json()["expires_in"] == 30
        value: str = reply.json()["ticket"]
        return value

    used = ticket()
    feeds = [
        Feed(gafferd.url, "", bearer(tokens.viewer)),
        Feed(gafferd.url, f"&ticket={used}"),
        Feed(gafferd.url, "", bearer(tokens.admin)),  # stays open: admin is kept
    ]
    spare = ticket()  # issued, never used: it dies with its token
    try:
        write_config(config, auth_config(tokens, viewer=False))
        gafferd.proc.send_signal(signal.SIGHUP)
        viewer_feeds, admin_feed = feeds[:2], feeds[2]
        wait_for(lambda: all(feed.ended.is_set() for feed in viewer_feeds), timeout=10)
        assert [feed.error for feed in viewer_feeds] == [None, None]  # ended cleanly
        assert logs.line_with("closed 2 feeds and websockets of removed or changed tokens")

        assert http.get("/processes", headers=bearer(tokens.viewer)).status_code == 401
        with http.stream("GET", f"/watch?feed=eventsource&ticket={spare}") as reply:
            assert reply.status_code == 401  # a stream that opened would fail here, not hang
        body = {"name": "after-reload", "cmd": "sleep", "args": ["600"], "start": False}
        assert http.post("/processes", json=body, headers=bearer(tokens.admin)).status_code == 200
        wait_for(lambda: b"after-reload" in admin_feed.data, timeout=10)
        assert not admin_feed.ended.is_set()
    finally:
        for feed in feeds:
            feed.close()
    assert gafferd.stop() == 0
    assert_never_shown(logs.finish(), tokens.admin, tokens.viewer, used, spare)


def test_audit_lines_name_the_token_and_never_show_it(
    daemon: tuple[Gafferd, Logs], tokens: Tokens
) -> None:
    gafferd, logs = daemon
    http = gafferd.http
    body = {"name": "audited", "cmd": "sleep", "args": ["600"]}
    assert http.post("/processes", json=body, headers=bearer(tokens.admin)).status_code == 200
    created = wait_for(lambda: logs.line_with("api.create", "token=admin"))
    assert "audited" in created and "remote=127.0.0.1" in created

    assert http.get("/processes").status_code == 401
    denied = wait_for(lambda: logs.line_with("auth.denied", "status=401"))
    assert "error=unauthorized" in denied and "route=/processes" in denied
    reply = http.get("/processes/audited", headers=bearer(tokens.viewer + "x"))
    assert reply.status_code == 401
    wait_for(lambda: logs.line_with("auth.denied", "route=/processes/<segment>"))
    assert http.post("/processes", json=body, headers=bearer(tokens.viewer)).status_code == 403
    forbidden = wait_for(lambda: logs.line_with("auth.denied", "status=403"))
    assert "token=viewer" in forbidden and "error=forbidden" in forbidden

    assert gafferd.stop() == 0
    everything = logs.finish()
    assert "gafferd: stopped" in everything
    assert_never_shown(everything, tokens.admin, tokens.viewer, tokens.viewer + "x")


def lan_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, if it has one."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if (
                address.family == socket.AF_INET
                and not ipaddress.ip_address(address.address).is_loopback
            ):
                return str(address.address)
    return None


def test_with_tokens_gafferd_serves_every_interface_and_asks_each_caller(
    config: Path, tokens: Tokens
) -> None:
    gafferd = Gafferd(config, "--bind", "0.0.0.0:0")
    try:
        assert gafferd.url.startswith("http://0.0.0.0:")
        assert not [line for line in gafferd.stderr_lines if "WARNING" in line]
        port = int(gafferd.url.rsplit(":", 1)[1])
        hosts = ["127.0.0.1", *filter(None, [lan_address()])]
        for host in hosts:
            with httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as http:
                assert http.get("/processes").status_code == 401  # not 403 "loopback only"
                assert http.get("/processes", headers=bearer(tokens.admin)).json() == []
                assert http.get("/health").status_code == 200
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()
