"""A live API with tokens configured, for the security tests: one token per role, and more."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from flask import Flask

from gaffer_gevent.api import create_app
from gaffer_gevent.auth import Credentials, Role, TokenSpec, hash_token, mint_token, parse_hash
from gaffer_gevent.config import Address, EndpointConfig
from gaffer_gevent.manager import Manager
from gaffer_gevent.server import make_servers
from tests.api.support import ECHO, SLEEPER

ROLES = ("read", "stdin", "operate", "admin")
#: The scoped token: an admin of the ``web`` group's templates only.
SCOPE = "web:*"


def spec(name: str, role: str, token: str, scope: tuple[str, ...] = ()) -> TokenSpec:
    return TokenSpec(name, Role.parse(role), parse_hash(hash_token(token)), scope)


@dataclass
class SecureServer:
    url: str
    manager: Manager
    app: Flask
    tokens: dict[str, str]  # name -> token: one per role, and "scoped"
    names: Iterator[int] = field(default_factory=itertools.count)

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=10, headers=headers, **kwargs)

    def admin(self) -> httpx.Client:
        return self.client(self.tokens["admin"])

    def name(self, inside: bool) -> str:
        """A new template name, inside the scoped token's scope or not."""
        return f"{'web' if inside else 'other'}:t{next(self.names)}"

    def template(self, inside: bool, **fields: Any) -> str:
        name = self.name(inside)
        with self.admin() as c:
            r = c.post("/processes", json={"name": name, **SLEEPER, "start": False, **fields})
            assert r.status_code == 200, r.text
        return name

    def pid(self, inside: bool) -> tuple[str, int]:
        """A running echo process: (template, pid)."""
        name = self.template(inside, **ECHO, start=True)
        with self.admin() as c:
            (pid,) = c.get(f"/processes/{name}/_pids").json()["pids"]
        return name, int(pid)


@contextmanager
def secure_server(manager: Manager, **settings: Any) -> Iterator[SecureServer]:
    tokens = {role: mint_token() for role in ROLES}
    tokens["scoped"] = mint_token()
    specs = [spec(role, role, tokens[role]) for role in ROLES]
    specs.append(spec("scoped", "admin", tokens["scoped"], (SCOPE,)))
    app = create_app(manager, credentials=Credentials(specs), **settings)
    endpoint = EndpointConfig("secure", [Address("tcp", "127.0.0.1", 0, "")])
    ((wsgi, url),) = make_servers(app, [endpoint])
    wsgi.start()
    try:
        yield SecureServer(url, manager, app, tokens)
    finally:
        manager.stop_all(timeout=10)
        wsgi.stop(timeout=2)
