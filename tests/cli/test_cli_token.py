"""gafferctl, gaffer and the websocket example with a token, run as a user would.

The console scripts run as subprocesses against a real recording server (see
recorder.py): the token reaches the server as ``Authorization: Bearer`` from
``--token``, ``--token-file`` or ``GAFFER_TOKEN`` (in that order), a bad token
or token file is a one-line usage error (exit 2) that never shows the token,
and gafferd's refusals are one line and exit 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gaffer_gevent.auth import mint_token

from ..helpers import self_signed_cert
from .conftest import ECHO_CLIENT, one_line, run_script
from .recorder import Answer, Recorder

TOKEN = mint_token()


def ctl(recorder: Recorder, *args: str, env: dict[str, str] | None = None):
    url = f"http://127.0.0.1:{recorder.port}"
    return run_script("gafferctl", "--connect", url, *args, env=env)


def test_token_from_the_option_the_file_or_the_environment(recorder: Recorder, tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text(f"  file-{TOKEN}  \r\nsecond line is ignored\n")
    runs = [
        ((), {}, None),
        (("--token", f"opt-{TOKEN}"), {}, f"opt-{TOKEN}"),
        (("--token-file", str(token_file)), {}, f"file-{TOKEN}"),
        ((), {"GAFFER_TOKEN": f"env-{TOKEN}"}, f"env-{TOKEN}"),
        # precedence: --token > --token-file > GAFFER_TOKEN
        (("--token", f"opt-{TOKEN}", "--token-file", str(token_file)),
         {"GAFFER_TOKEN": f"env-{TOKEN}"}, f"opt-{TOKEN}"),
        (("--token-file", str(token_file)), {"GAFFER_TOKEN": f"env-{TOKEN}"}, f"file-{TOKEN}"),
        ((), {"GAFFER_TOKEN": ""}, None),  # empty: unset for one command
    ]  # fmt: skip
    for options, env, expected in runs:
        recorder.seen.clear()
        result = ctl(recorder, *options, "processes", env=env)
        assert (result.code, result.out, result.err) == (0, "", ""), (options, result)
        assert [seen.authorization for seen in recorder.seen] == [
            None if expected is None else f"Bearer {expected}"
        ], options


def test_options_after_the_command_and_every_feed_carry_the_token(recorder: Recorder):
    assert ctl(recorder, "processes", "--token", TOKEN).code == 0
    result = ctl(recorder, "watch", env={"GAFFER_TOKEN": TOKEN})  # ends when the server ends
    assert result.code == 0 and "create x" in result.out, result
    result = ctl(recorder, "--token", TOKEN, "tail", "1", "stdout", "--heartbeat", "0")
    assert (result.code, result.out) == (0, "hello\n"), result
    assert ctl(recorder, "--token", TOKEN, "stop", "x").code == 0
    assert [(s.method, s.path) for s in recorder.seen] == [
        ("GET", "/processes"), ("GET", "/watch"), ("GET", "/streams/1/stdout"),
        ("POST", "/processes/x/_stop"),
    ]  # fmt: skip
    assert recorder.authorizations() == {f"Bearer {TOKEN}"}


def test_whoami_and_health(recorder: Recorder):
    result = ctl(recorder, "--token", TOKEN, "whoami")
    assert (result.code, result.out, result.err) == (0, "ops operate web:*,w\n", "")
    result = ctl(recorder, "--token", TOKEN, "--json", "whoami")
    assert json.loads(result.out) == {"name": "ops", "role": "operate", "scope": ["web:*", "w"]}
    recorder.answers["/auth/whoami"] = Answer.json({"name": None, "role": "admin", "scope": None})
    assert ctl(recorder, "whoami").out == "- admin *\n"
    result = ctl(recorder, "health")
    assert (result.code, result.out) == (0, "ok\n")
    assert json.loads(ctl(recorder, "--json", "health").out) == {"status": "ok"}
    recorder.answers["/health"] = Answer(body=b"OK\n", content_type="text/plain")
    assert ctl(recorder, "health").out == "OK\n"


NOT_SENDABLE = "must be printable ASCII without spaces or line breaks"
BAD_TOKENS = [
    pytest.param(("--token-file", "/nonexistent/token"), {},
                 "cannot read token file /nonexistent/token: No such file or directory",
                 id="missing-file"),
    pytest.param(("--token-file", "{tmp}"), {}, "cannot read token file {tmp}: Is a directory",
                 id="directory"),
    pytest.param(("--token-file", "{tmp}/empty"), {}, "token file {tmp}/empty is empty",
                 id="empty-file"),
    pytest.param(("--token-file", "{tmp}/spaced"), {}, f"token file {{tmp}}/spaced {NOT_SENDABLE}",
                 id="spaces-in-file"),
    pytest.param(("--token", ""), {}, "--token is empty", id="empty-option"),
    pytest.param(("--token", f"{TOKEN} x"), {}, f"--token {NOT_SENDABLE}", id="space-option"),
    pytest.param((), {"GAFFER_TOKEN": f"{TOKEN}\nX-Evil: 1"}, f"GAFFER_TOKEN {NOT_SENDABLE}",
                 id="newline-env"),
    pytest.param(("--cacert", "/nonexistent/ca.pem"), {},
                 "cannot read --cacert /nonexistent/ca.pem: No such file or directory",
                 id="missing-cacert"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "env", "message"), BAD_TOKENS)
def test_bad_tokens_are_usage_errors_that_never_show_the_token(
    recorder: Recorder, tmp_path: Path, options: tuple[str, ...], env: dict[str, str], message: str
):
    (tmp_path / "empty").write_text("\n\n")
    (tmp_path / "spaced").write_text(f"{TOKEN} and more\n")
    options = tuple(option.replace("{tmp}", str(tmp_path)) for option in options)
    result = ctl(recorder, *options, "processes", env=env)
    assert result.code == 2
    assert one_line(result.err) == "gafferctl: " + message.replace("{tmp}", str(tmp_path))
    assert TOKEN not in result.err + result.out
    assert recorder.seen == []  # nothing was sent


def test_refusals_are_one_line_and_exit_1(recorder: Recorder):
    cases = [
        (Answer.json({"error": "unauthorized"}, "401 Unauthorized"), (),
         "gafferctl: unauthorized: this gafferd needs a token "
         "(--token, --token-file or GAFFER_TOKEN)"),
        (Answer.json({"error": "unauthorized"}, "401 Unauthorized"), ("--token", TOKEN),
         "gafferctl: unauthorized: gafferd did not accept the token "
         "(unknown, or removed from its config)"),
        (Answer.json({"error": "forbidden", "reason": "needs role operate"}, "403 Forbidden"),
         ("--token", TOKEN), "gafferctl: forbidden: needs role operate"),
        (Answer.json({"error": "forbidden_origin"}, "403 Forbidden"), (),
         "gafferctl: forbidden_origin: gafferd does not accept requests from this origin"),
        (Answer.json({"error": "misdirected_request"}, "421 Misdirected Request"), (),
         "gafferctl: misdirected_request: gafferd does not answer to this host name "
         "(server_names)"),
        (Answer.json({"error": "too_many_failures"}, "429 Too Many Requests",
                     **{"Retry-After": "42"}), ("--token", TOKEN),
         "gafferctl: too_many_failures: too many failed authentications from this address "
         "(retry in 42 s)"),
    ]  # fmt: skip
    for answer, options, line in cases:
        recorder.answers["/processes/x/_stop"] = answer
        result = ctl(recorder, *options, "stop", "x")
        assert result.code == 1, (line, result)
        assert one_line(result.err) == line
        assert TOKEN not in result.err + result.out


def test_gaffer_sends_the_token_too(recorder: Recorder, tmp_path: Path):
    url = f"http://127.0.0.1:{recorder.port}"
    result = run_script("gaffer", "--token", TOKEN, "unload", "grp", url, cwd=tmp_path)
    assert (result.code, result.out) == (0, "'grp' unloaded\n"), result
    result = run_script("gaffer", "unload", "grp", url, cwd=tmp_path, env={"GAFFER_TOKEN": TOKEN})
    assert result.code == 0, result
    assert [(s.method, s.path) for s in recorder.seen] == 2 * [
        ("GET", "/groups"), ("DELETE", "/groups/grp")
    ]  # fmt: skip
    assert recorder.authorizations() == {f"Bearer {TOKEN}"}
    recorder.answers["/groups"] = Answer.json({"error": "unauthorized"}, "401 Unauthorized")
    result = run_script("gaffer", "unload", "grp", url, cwd=tmp_path)
    assert result.code == 1
    assert one_line(result.err) == (
        "gaffer: unauthorized: this gafferd needs a token (--token, --token-file or GAFFER_TOKEN)"
    )
    result = run_script("gaffer", "--token-file", str(tmp_path / "no"), "unload", "grp", url)
    assert result.code == 2 and "cannot read token file" in one_line(result.err)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a cert")
def test_cacert_trusts_a_private_ca(tmp_path: Path):
    cert, key = self_signed_cert(tmp_path)
    recorder = Recorder(("127.0.0.1", 0), certfile=str(cert), keyfile=str(key))
    url = f"https://127.0.0.1:{recorder.port}"
    try:
        result = run_script("gafferctl", "--connect", url, "--cacert", str(cert), "--token", TOKEN,
                            "processes")  # fmt: skip
        assert (result.code, result.err) == (0, "")
        assert recorder.authorizations() == {f"Bearer {TOKEN}"}
        result = run_script("gafferctl", "--connect", url, "--token", TOKEN, "processes")
        assert result.code == 3 and "CERTIFICATE_VERIFY_FAILED" in one_line(result.err)
        assert len(recorder.seen) == 1  # the untrusted server never saw the token
    finally:
        recorder.stop()


def echo_client(recorder: Recorder, *args: str, env: dict[str, str] | None = None):
    inherited = {k: v for k, v in os.environ.items() if k != "GAFFER_TOKEN"}
    return subprocess.run(
        [sys.executable, str(ECHO_CLIENT), "--url", f"ws://127.0.0.1:{recorder.port}", "1", *args],
        capture_output=True, text=True, timeout=20, env={**inherited, **(env or {})},
    )  # fmt: skip


def test_echo_client_sends_the_token_in_the_handshake(recorder: Recorder):
    result = echo_client(recorder, "--token", TOKEN)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Sent\nReceiving...\nReceived 'hello'\n"
    result = echo_client(recorder, env={"GAFFER_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    assert [(s.path, s.websocket, s.authorization, s.origin) for s in recorder.seen] == 2 * [
        ("/wstreams/1", True, f"Bearer {TOKEN}", None)
    ]
    recorder.answers["/wstreams/1"] = Answer.json({"error": "unauthorized"}, "401 Unauthorized")
    result = echo_client(recorder)
    assert result.returncode == 1
    assert result.stderr == "the server refused: unauthorized\n"
    result = echo_client(recorder, "--token", "a b")
    assert result.returncode == 2 and "a b" not in result.stderr
