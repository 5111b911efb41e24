"""mTLS on a real server: client certificates verified against ``ca_certs`` at the TLS layer.

Issue 11 point 2: an endpoint with ``certfile``/``keyfile`` can add ``ca_certs``
and ``client_cert = required|optional``. The verified certificate's common
name reaches the app as ``environ["gaffer.client_subject"]`` (the guard maps
it to a ``[client:CN]`` role); a request without one never gets that far.
A test CA is made in each test, plus a second, unrelated one.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gaffer_gevent.api import create_app
from gaffer_gevent.auth import ClientSpec, Credentials, Role
from gaffer_gevent.config import Address, ConnectionLimits, EndpointConfig
from gaffer_gevent.manager import Manager
from gaffer_gevent.server import CLIENT_SUBJECT_KEY, GafferServer, make_servers

from .certs import TestCA
from .gafferd import Gafferd


def echo_subject(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The environ key the guard reads, or ``-`` when the server put none there."""
    body = environ.get(CLIENT_SUBJECT_KEY, "-").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@dataclass
class PKI:
    ca: TestCA
    other_ca: TestCA
    server: tuple[Path, Path]
    alice: tuple[Path, Path]  # signed by ``ca``
    mallory: tuple[Path, Path]  # signed by ``other_ca``


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    ca, other = TestCA(tmp_path), TestCA(tmp_path, "another CA")
    return PKI(ca, other, ca.issue("127.0.0.1", server=True), ca.issue("alice"),
               other.issue("mallory"))  # fmt: skip


Serve = Callable[..., GafferServer]


@pytest.fixture
def serve(pki: PKI) -> Iterator[Serve]:
    servers: list[GafferServer] = []

    def start(client_cert: str, ca_certs: bool = True, **limits: float) -> GafferServer:
        cert, key = pki.server
        endpoint = EndpointConfig(
            "mtls", [Address("tcp", "127.0.0.1", 0, "")], str(cert), str(key), 128,
            str(pki.ca.path) if ca_certs else None, client_cert,
        )  # fmt: skip
        ((server, url),) = make_servers(echo_subject, [endpoint], limits=ConnectionLimits(**limits))
        assert url.startswith("https://127.0.0.1:")
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(timeout=1)
        server.connections.close()


def get_subject(pki: PKI, server: GafferServer, client: tuple[Path, Path] | None) -> str:
    """GET / over TLS, trusting the test CA, presenting ``client``'s certificate if given."""
    context = ssl.create_default_context(cafile=str(pki.ca.path))
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    conn = http.client.HTTPSConnection("127.0.0.1", server.server_port, timeout=10, context=context)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)


def test_required_refuses_a_client_without_a_certificate(
    pki: PKI, serve: Serve, capfd: pytest.CaptureFixture[str]
) -> None:
    server = serve("required")
    with pytest.raises(REFUSED):
        get_subject(pki, server, None)
    assert get_subject(pki, server, pki.alice) == "alice"  # and the server is fine
    assert "Traceback" not in capfd.readouterr().err  # a refused handshake is not an error


def test_required_gives_the_app_the_verified_common_name(pki: PKI, serve: Serve) -> None:
    server = serve("required")
    assert get_subject(pki, server, pki.alice) == "alice"


def test_required_refuses_a_certificate_from_another_ca(pki: PKI, serve: Serve) -> None:
    server = serve("required")
    with pytest.raises(REFUSED):
        get_subject(pki, server, pki.mallory)


def test_optional_lets_a_client_without_a_certificate_in_without_a_subject(
    pki: PKI, serve: Serve
) -> None:
    server = serve("optional")
    assert get_subject(pki, server, None) == "-"
    assert get_subject(pki, server, pki.alice) == "alice"
    with pytest.raises(REFUSED):  # a certificate, if sent, must verify
        get_subject(pki, server, pki.mallory)


def test_plain_tls_never_reports_an_unverified_certificate(pki: PKI, serve: Serve) -> None:
    server = serve("none", ca_certs=False)
    assert get_subject(pki, server, pki.mallory) == "-"
    assert get_subject(pki, server, pki.alice) == "-"


def test_a_header_cannot_pose_as_the_client_subject(pki: PKI, serve: Serve) -> None:
    server = serve("optional")
    context = ssl.create_default_context(cafile=str(pki.ca.path))
    conn = http.client.HTTPSConnection("127.0.0.1", server.server_port, timeout=10, context=context)
    try:
        conn.request("GET", "/", headers={"gaffer.client_subject": "admin"})
        assert conn.getresponse().read() == b"-"
    finally:
        conn.close()


def test_a_silent_tls_client_is_dropped_after_the_header_timeout(pki: PKI, serve: Serve) -> None:
    server = serve("required", header_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
        assert sock.recv(1) == b""  # no ClientHello, no connection (a timeout fails the test)
    assert server.connections.waiting == 0


def test_gafferd_requiring_client_certificates_may_listen_on_every_interface(
    pki: PKI, tmp_path: Path
) -> None:
    """client_cert = required is authentication enough for a network bind (no warning)."""
    cert, key = pki.server
    config = tmp_path / "gaffer.ini"
    config.write_text("")
    gafferd = Gafferd(
        config, "--certfile", str(cert), "--keyfile", str(key), "--ca-certs", str(pki.ca.path),
        "--client-cert", "required", bind="0.0.0.0:0",
    )  # fmt: skip
    try:
        (line,) = gafferd.stderr_lines  # nothing before it: no warning
        match = re.fullmatch(r"gafferd: listening on https://0\.0\.0\.0:(\d+)\n", line)
        assert match, line
        port = int(match.group(1))
        context = ssl.create_default_context(cafile=str(pki.ca.path))
        context.load_cert_chain(str(pki.alice[0]), str(pki.alice[1]))
        with httpx.Client(verify=context, timeout=10) as client:
            assert client.get(f"https://127.0.0.1:{port}/ping").text == "OK"
        with pytest.raises(httpx.TransportError):  # no certificate: no HTTP at all
            trusting = ssl.create_default_context(cafile=str(pki.ca.path))
            httpx.get(f"https://127.0.0.1:{port}/ping", verify=trusting, timeout=10)
        assert gafferd.stop() == 0
        assert "WARNING" not in gafferd.log_text()
    finally:
        gafferd.cleanup()


def test_client_sections_give_certificate_subjects_roles(pki: PKI, manager: Manager) -> None:
    """The guard maps a verified common name through [client:CN] like a token."""
    credentials = Credentials(clients=[ClientSpec("alice", Role.READ, ("web:*",))])
    app = create_app(manager, credentials=credentials)
    cert, key = pki.server
    endpoint = EndpointConfig("mtls", [Address("tcp", "127.0.0.1", 0, "")], str(cert), str(key),
                              128, str(pki.ca.path), "required")  # fmt: skip
    ((server, url),) = make_servers(app, [endpoint])
    server.start()
    bob = pki.ca.issue("bob")

    def client(identity: tuple[Path, Path]) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(pki.ca.path))
        context.load_cert_chain(str(identity[0]), str(identity[1]))
        return httpx.Client(base_url=url, verify=context, timeout=10)

    try:
        with client(pki.alice) as alice:
            assert alice.get("/auth/whoami").json() == {"name": "alice", "role": "read",
                                                        "scope": ["web:*"]}  # fmt: skip
            assert alice.get("/processes").status_code == 200
            r = alice.post("/processes", json={"name": "web:x", "cmd": "true"})
            assert (r.status_code, r.json()["error"]) == (403, "forbidden")
        with client(bob) as stranger:  # signed by the CA, but no [client:bob]
            r = stranger.get("/processes")
            assert (r.status_code, r.json()["error"]) == (401, "unauthorized")
    finally:
        server.stop(timeout=1)
        server.connections.close()
