"""The client side of tokens end to end: gafferctl, gaffer and Client against a real gafferd
configured with ``[token:NAME]`` sections (one token per role, and a scoped one).

gafferd's route table and its matrix are tested on the server side; here the
point is what a user of the tools sees: no token gives the hint, each way of
giving a token works, a token without the role is refused in one line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gaffer_gevent.client import AccessForbidden, Client, TooManyFailures, Unauthorized

from ..certs import TestCA
from .conftest import (
    ECHO_CLIENT,
    SecuredDaemon,
    one_line,
    run_script,
    start_gafferd,
    stop_process,
    wait_for,
)


def ctl(daemon: SecuredDaemon, *args: str, env: dict[str, str] | None = None):
    return run_script("gafferctl", "--connect", daemon.url, *args, env=env)


def test_gafferctl_without_a_token_gets_the_hint(secured_gafferd: SecuredDaemon):
    result = ctl(secured_gafferd, "processes")
    assert result.code == 1 and result.out == ""
    assert one_line(result.err) == (
        "gafferctl: unauthorized: this gafferd needs a token "
        "(--token, --token-file or GAFFER_TOKEN)"
    )
    result = ctl(secured_gafferd, "--token", "not-a-token-it-knows", "processes")
    assert result.code == 1
    assert one_line(result.err) == (
        "gafferctl: unauthorized: gafferd did not accept the token "
        "(unknown, or removed from its config)"
    )
    assert "not-a-token-it-knows" not in result.err


def test_each_way_of_giving_the_token_works(secured_gafferd: SecuredDaemon, tmp_path: Path):
    token = secured_gafferd.tokens["read"]
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    for options, env in [
        (("--token", token), {}),
        (("--token-file", str(token_file)), {}),
        ((), {"GAFFER_TOKEN": token}),
        (("--token", token), {"GAFFER_TOKEN": "wrong"}),  # --token wins
    ]:
        result = ctl(secured_gafferd, *options, "processes", env=env)
        assert (result.code, result.out, result.err) == (0, "x\n", ""), (options, result)
    assert token not in secured_gafferd.log.text()


def test_a_read_token_cannot_stop(secured_gafferd: SecuredDaemon):
    read = secured_gafferd.tokens["read"]
    result = ctl(secured_gafferd, "--token", read, "stop", "x")
    assert result.code == 1
    line = one_line(result.err)
    assert line.startswith("gafferctl: forbidden: ") and "operate" in line, line
    assert read not in result.err
    assert ctl(secured_gafferd, "--token", read, "status", "x").out == "active\n"
    result = ctl(secured_gafferd, "--token", secured_gafferd.tokens["operate"], "stop", "x")
    assert (result.code, result.out) == (0, "ok\n"), result


def test_whoami_and_health(secured_gafferd: SecuredDaemon):
    result = ctl(secured_gafferd, "whoami", env={"GAFFER_TOKEN": secured_gafferd.tokens["read"]})
    assert (result.code, result.out) == (0, "read-token read *\n"), result
    result = ctl(secured_gafferd, "--token", secured_gafferd.tokens["scoped"], "whoami")
    assert result.out == "web-ops operate web:*\n"
    result = ctl(secured_gafferd, "health")  # no token: for load balancers
    assert result.code == 0 and result.out.strip(), result


def test_client_feeds_and_websocket_carry_the_token(secured_gafferd: SecuredDaemon):
    with secured_gafferd.client(None) as anonymous:
        assert anonymous.ping()  # /ping needs no token
        with pytest.raises(Unauthorized):
            anonymous.watch()
        with anonymous.websocket(1, timeout=10) as ws:  # gafferd refuses after the upgrade
            assert json.loads(ws.recv() or "") == {"error": "unauthorized"}
            assert ws.recv() is None
    with secured_gafferd.client("read") as reader:
        (pid,) = wait_for(lambda: reader.pids("x"))
        with reader.follow(pid, heartbeat=1) as chunks:
            assert next(chunks)
        with reader.websocket(pid, timeout=10) as ws:  # stdin needs the stdin role
            assert json.loads(ws.recv() or "") == {"error": "forbidden"}
        with pytest.raises(AccessForbidden, match="needs role stdin"):
            reader.write_stdin(pid, b"x")
        ticket = reader.ticket()
        assert isinstance(ticket["ticket"], str) and 0 < ticket["expires_in"] <= 30
    with secured_gafferd.client("stdin") as writer, writer.websocket(pid, timeout=10) as ws:
        ws.send("")  # the handshake was accepted: the socket is open
    with secured_gafferd.client("admin") as admin, admin.watch("proc.x", heartbeat=1) as events:
        admin.stop_process("x")
        assert next(events)[0].startswith("proc.x.")


def test_gaffer_load_needs_an_admin_token(secured_gafferd: SecuredDaemon, tmp_path: Path):
    app = tmp_path / "shop"
    app.mkdir()
    (app / "Procfile").write_text("web: sleep 60\n")
    url = secured_gafferd.url
    result = run_script("gaffer", "load", ".", url, cwd=app)
    assert result.code == 1 and "needs a token (--token" in one_line(result.err)
    operate = secured_gafferd.tokens["operate"]
    result = run_script("gaffer", "--token", operate, "load", ".", url, cwd=app)
    assert result.code == 1 and one_line(result.err).startswith("gaffer: forbidden: ")
    admin = secured_gafferd.tokens["admin"]
    result = run_script("gaffer", "load", ".", url, cwd=app, env={"GAFFER_TOKEN": admin})
    assert (result.code, result.out) == (0, f"'shop' has been loaded in {url}\n"), result
    result = run_script("gaffer", "--token", admin, "unload", "shop", url, cwd=app)
    assert result.code == 0, result


def test_gafferctl_with_a_private_ca_and_a_client_certificate(tmp_path: Path):
    ca = TestCA(tmp_path)
    server_cert, server_key = ca.issue("127.0.0.1", server=True)
    client_cert, client_key = ca.issue("deployer")
    config = (
        "[gaffer]\nhttp_endpoints = tls\n\n[endpoint:tls]\nbind = 127.0.0.1:0\n"
        f"certfile = {server_cert}\nkeyfile = {server_key}\n"
        f"ca_certs = {ca.path}\nclient_cert = required\n\n"
        "[client:deployer]\nrole = operate\nscope = web:*\n"
    )
    daemon = start_gafferd(tmp_path, bind=None, config=config)  # --bind would replace it
    try:
        assert daemon.url.startswith("https://")
        tls = ("--connect", daemon.url, "--cacert", str(ca.path))
        mine = ("--certfile", str(client_cert), "--keyfile", str(client_key))
        result = run_script("gafferctl", *tls, *mine, "whoami")
        assert (result.code, result.out) == (0, "deployer operate web:*\n"), result
        result = run_script("gafferctl", *tls, *mine, "kill", "db", "HUP")
        assert result.code == 1 and one_line(result.err).startswith("gafferctl: forbidden: ")
        result = run_script("gafferctl", *tls, "whoami")  # no client certificate
        assert result.code == 3 and "cannot reach gafferd" in one_line(result.err)
        result = run_script("gafferctl", "--connect", daemon.url, *mine, "whoami")  # unknown CA
        assert result.code == 3 and "CERTIFICATE_VERIFY_FAILED" in one_line(result.err)
    finally:
        stop_process(daemon.proc)


def test_too_many_failures_is_one_line_with_the_wait(secured_gafferd: SecuredDaemon):
    with Client(secured_gafferd.url, token="wrong", timeout=10) as client:
        for _ in range(25):
            try:
                client.processes()
            except TooManyFailures as exc:
                assert exc.retry_after is not None and 0 < exc.retry_after <= 60
                break
            except Unauthorized:
                continue
        else:
            pytest.fail("gafferd never throttled 25 failed authentications")
    result = ctl(secured_gafferd, "--token", "wrong", "processes")
    assert result.code == 1
    assert re.fullmatch(
        r"gafferctl: too_many_failures: too many failed authentications \(retry in \d+ s\)",
        one_line(result.err),
    )


def test_echo_client_example_with_a_token(secured_gafferd: SecuredDaemon):
    with secured_gafferd.client("read") as reader:
        (pid,) = wait_for(lambda: reader.pids("x"))

    def echo_client(*args: str, env: dict[str, str] | None = None):
        return subprocess.run(
            [sys.executable, str(ECHO_CLIENT), "--url", secured_gafferd.url.replace("http", "ws"),
             str(pid), *args],
            capture_output=True, text=True, timeout=20,
            env={**{k: v for k, v in os.environ.items() if k != "GAFFER_TOKEN"}, **(env or {})},
        )  # fmt: skip

    result = echo_client("--token", secured_gafferd.tokens["stdin"])
    assert result.returncode == 0, result.stderr
    assert re.search(r"Received '(tick|start)", result.stdout), result.stdout
    result = echo_client(env={"GAFFER_TOKEN": secured_gafferd.tokens["stdin"]})
    assert result.returncode == 0, result.stderr
    result = echo_client()
    assert result.returncode == 1
    assert result.stderr == "the server refused: unauthorized\n"
    result = echo_client("--token", secured_gafferd.tokens["read"])
    assert result.returncode == 1
    assert result.stderr == "the server refused: forbidden\n"
