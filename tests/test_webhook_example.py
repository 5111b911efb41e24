"""README "Signed webhooks": its code and its ini, run as written, against real signed deliveries.

The README's ``verify`` block is executed as it stands (and must be a verbatim part of
``examples/verify_webhook.py``); the example itself runs as a subprocess receiver.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gaffer_gevent.config import load_config
from gaffer_gevent.events import EventBus
from gaffer_gevent.signing import Secret
from gaffer_gevent.webhooks import WebhookDispatcher

from .gafferd import GAFFERD_SCRIPT, Gafferd
from .helpers import PYTHON, LoggedServer, Receiver, spawn_logged, wait_for

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
EXAMPLE = REPO / "examples" / "verify_webhook.py"
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/")

Verify = Callable[..., dict[str, Any]]


def readme_block(lang: str) -> str:
    """The first ```lang block of the README's "Signed webhooks" paragraph."""
    text = README.read_text()
    start = text.index(f"```{lang}\n", text.index("**Signed webhooks.**")) + len(lang) + 4
    return text[start : text.index("```\n", start)]


@pytest.fixture
def verify() -> Verify:
    """``verify`` as the README prints it, executed alone (so it needs nothing else)."""
    namespace: dict[str, Any] = {"__name__": "readme_verify"}
    exec(compile(readme_block("python"), "README.md", "exec"), namespace)
    return namespace["verify"]


@pytest.fixture
def bus() -> Iterator[EventBus]:
    b = EventBus()
    yield b
    b.close()


@pytest.fixture
def example(tmp_path: Path) -> Iterator[tuple[str, Path, LoggedServer]]:
    """``examples/verify_webhook.py`` running with a fresh secret: (its URL, key file, server)."""
    key_file = tmp_path / "hook.key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    log = tmp_path / "receiver.log"
    server = LoggedServer(
        spawn_logged([PYTHON, str(EXAMPLE), str(key_file), "--port", "0"], log, cwd=REPO), log
    )
    try:
        url = f"http://127.0.0.1:{server.logged_port(LISTENING, 'verify_webhook.py')}/hook"
        yield url, key_file, server
    finally:
        server.kill()


def verdicts(server: LoggedServer, count: int) -> list[str]:
    """The receiver's first ``count`` verdict lines, once it has printed them."""
    return wait_for(lambda: (v := server.log_text().splitlines()[1:]) and len(v) >= count and v)


def test_readme_shows_the_examples_own_code() -> None:
    code = readme_block("python")
    assert "def verify(" in code and "hmac.compare_digest" in code
    assert code in EXAMPLE.read_text()


def test_readme_ini_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hook.key").write_text(secrets.token_hex(32) + "\n")
    monkeypatch.setenv("GAFFER_HOOK_SECRET", "s" * 40)
    (tmp_path / "gafferd.ini").write_text(readme_block("ini"))
    config = load_config(str(tmp_path / "gafferd.ini"))
    assert [event for event, _ in config.webhooks] == ["proc.web.exit", "create", "delete", "."]
    assert config.webhook_secrets.keys() == {url for _, url in config.webhooks[:3]}


def test_readme_verify_accepts_a_real_delivery_and_nothing_else(
    verify: Verify, bus: EventBus, receiver: Receiver
) -> None:
    key = secrets.token_hex(32).encode()
    url = f"{receiver.url}/hook"
    dispatcher = WebhookDispatcher(bus, [("create", url)], secrets={url: Secret(key)})
    dispatcher.start()
    try:
        bus.publish("create", name="web")
        wait_for(lambda: dispatcher.delivered == 1)
    finally:
        dispatcher.stop(1.0)
    ((_, headers, body),) = receiver.raw
    signature = headers["X_GAFFER_SIGNATURE"]

    event = verify(key, body, signature)
    assert (event["event"], event["name"]) == ("create", "web")
    assert event["webhook_timestamp"] == int(headers["X_GAFFER_TIMESTAMP"])
    bad, stale = "bad signature", "stale timestamp"
    # Ages from the signed whole-second timestamp, not from time.time(): that drifts by up to
    # a second or more on a loaded machine and made "from the future" pass now and then.
    sent = event["webhook_timestamp"]
    refusals = {
        "another key": (bad, lambda: verify(b"another key", body, signature)),
        "tampered body": (bad, lambda: verify(key, body.replace(b'"web"', b'"evil"'), signature)),
        "no signature": (bad, lambda: verify(key, body, "")),
        "non-ASCII header": (bad, lambda: verify(key, body, "sha256=\xe9")),
        "too old": (stale, lambda: verify(key, body, signature, now=sent + 301)),
        "from the future": (stale, lambda: verify(key, body, signature, now=sent - 301)),
    }
    for what, (reason, attempt) in refusals.items():
        with pytest.raises(ValueError, match=f"^{reason}$"):
            attempt()
            pytest.fail(f"{what} was accepted")


def test_example_receiver_takes_gafferd_and_refuses_forgery_staleness_and_replay(
    example: tuple[str, Path, LoggedServer], bus: EventBus
) -> None:
    url, key_file, server = example
    key = Secret(key_file.read_bytes().strip())  # what gafferd makes of that file
    dispatchers: list[WebhookDispatcher] = []
    try:
        for secret, clock in ((key, time.time), (Secret(b"a guess"), time.time),
                              (key, lambda: time.time() - 600)):  # fmt: skip
            dispatchers.append(
                WebhookDispatcher(bus, [("create", url)], secrets={url: secret}, clock=clock)
            )
            dispatchers[-1].start()
        good, forged, stale = dispatchers
        bus.publish("create", name="web")
        wait_for(lambda: good.delivered == 1 and forged.failed == 1 and stale.failed == 1)

        body, headers = good.signed({"event": "delete", "name": "web"}, key, "id-1")
        with httpx.Client(timeout=5) as client:
            statuses = [client.post(url, content=body, headers=headers).status_code
                        for _ in range(2)]  # fmt: skip
            unsigned = client.post(url, content=body, headers={"Content-Type": "application/json"})
        assert statuses == [200, 403]  # the same delivery again is a replay
        assert unsigned.status_code == 403
    finally:
        for dispatcher in dispatchers:
            dispatcher.stop(1.0)
    lines = verdicts(server, 6)
    assert len(lines) == 6
    verified = [line for line in lines if line.startswith("verified ")]
    assert [line.split()[1] for line in verified] == ["create", "delete"]
    assert json.loads(verified[0].split(" ", 3)[3])["name"] == "web"
    assert sorted(line for line in lines if line.startswith("refused: ")) == [
        "refused: bad signature",
        "refused: bad signature",
        "refused: replayed delivery",
        "refused: stale timestamp",
    ]


def test_gafferd_signs_with_its_secret_file_and_never_prints_it(
    tmp_path: Path, example: tuple[str, Path, LoggedServer]
) -> None:
    url, key_file, receiver = example
    ini = tmp_path / "gafferd.ini"
    ini.write_text(
        f"[webhooks]\ncreate = {url} secret_file=hook.key\n"  # next to the ini
        "[process:idle]\ncmd = sleep\nargs = 60\nstart = false\n"  # its create event, no child
    )
    with Gafferd(ini, "-v", cwd=tmp_path, program=GAFFERD_SCRIPT) as gafferd:
        assert gafferd.url.startswith("http://127.0.0.1:")
        (line,) = verdicts(receiver, 1)
        assert line.startswith("verified create ")
        assert json.loads(line.split(" ", 3)[3])["name"] == "idle"
        assert gafferd.stop(10) == 0
    assert key_file.read_text().strip() not in gafferd.log_text()


def test_gafferd_refuses_a_bad_secret_line_in_one_line_without_the_secret(tmp_path: Path) -> None:
    ini = tmp_path / "gafferd.ini"
    ini.write_text("[webhooks]\ncreate = http://127.0.0.1:9/hook s3cr3t-Value\n")  # no secret=
    result = subprocess.run(
        [*GAFFERD_SCRIPT, "--bind", "127.0.0.1:0", str(ini)],
        capture_output=True, text=True, timeout=15,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        f"gafferd: {ini}: [webhooks] create: after the URL, expected one of "
        "secret_file=PATH, secret_env=NAME or secret=VALUE\n"
    )
    assert "s3cr3t" not in result.stdout + result.stderr
