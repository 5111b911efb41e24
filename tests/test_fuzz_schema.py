"""Schemathesis over our own ``/openapi.json``: no input gets a 5xx or an answer it does not state.

Each operation of the document is fuzzed against a real server on 127.0.0.1
(the ``server`` fixture, with log files), with cases the document allows and
cases it refuses, and every answer is checked: no 5xx, a documented status, a
documented content type, a body (and headers) matching the schema; for template
bodies, whose rules the document states in full, also that what it refuses is
refused. Twice, one test per operation each:

* auth off (the anonymous admin of loopback): anything may change;
* auth on, with a read token: every request that is not a read is refused
  (403 ``forbidden``, or routing's 404/405 when no route matches), and the
  manager ends as it began: the same templates, settings and groups, the same
  processes, none stopped by a signal, and no event but ``auth.denied`` (and
  ``api.ticket``).

Extra probes: half of the path parameters are aimed at what exists (seeded
templates, live pids, the seeded group and labels) so that cases get past "not
found", and half of the new templates get a plain name. One case in five (with
the read token: every change) is also sent as HEAD, which must answer without a
body and never change anything (Flask answers HEAD on every GET route: a HEAD
once ran the POST actions; a ``send_signal`` recorder proves no signal went out).

Harmless and bounded:

* Children: the spawn is confined here, below ``fork_exec``: only ``true`` and
  ``sleep`` (at most 60 s) run, with an empty environment; any other command a
  case asks for runs as ``sleep 60``. The manager's limits are lowered
  (``FUZZ_LIMITS``), and the ``server`` fixture stops everything at the end.
* Log files live in the test's ``tmp_path``.
* Time: a fixed number of cases per operation (``EXAMPLES``, about 70 s in all
  here), derandomized, no example database, no shrinking (the first failing case
  is reported with its curl line). Every call is bounded: ``FEED_WAIT`` for
  feeds, ``WAIT`` for the rest (a non-feed call still unanswered then fails).
  ``GAFFER_FUZZ_SCALE=10 GAFFER_FUZZ_RANDOM=1`` runs a deeper, new run;
  ``GAFFER_FUZZ_REPORT=1`` (with ``-s``) prints what each operation answered.

Left out, and why:

* The websocket itself: ``requests`` cannot upgrade. The plain GET on its route
  is fuzzed (400); the websocket tests test the websocket.
* A feed still waiting after ``FEED_WAIT`` (a longpoll with nothing to say yet:
  no status line is sent before the first byte) is not validated: there is
  nothing to validate yet. It is counted, and the connection dropped (the server
  must then clean up; the next cases and the leftover check would notice).
  Continuous and eventsource feeds send a first byte at once: their status,
  headers and first ``FEED_WAIT`` of body are validated, then the call is cut.
  With children that print nothing, stream feeds never carry a chunk.
* ``503 stdin_full`` (documented) is not a server error: a child that does not
  read its stdin (``sleep``) fills its bounded queue.
* Wrong or missing tokens: ``tests/api/test_auth_matrix.py`` walks every route
  with them; here they would only trip the per-address throttle (429).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast
from urllib.parse import unquote

import gevent
import psutil
import pytest
import requests
import schemathesis
import urllib3
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.exceptions import HTTPException

import gaffer_gevent.checks.exec
import gaffer_gevent.process
from gaffer_gevent import spawn
from gaffer_gevent.api import replace_credentials
from gaffer_gevent.api.openapi import ENDPOINTS
from gaffer_gevent.auth import Credentials
from gaffer_gevent.limits import ProcessLimits
from gaffer_gevent.logfiles import LogFiles
from gaffer_gevent.manager import Manager
from gaffer_gevent.process import Process
from gaffer_gevent.template import ProcessTemplate
from tests.api.secure import spec
from tests.conftest import LiveServer, managed
from tests.helpers import wait_for

#: Small enough that no case starts much: 4 processes a template, 16 in all, 1 MiB rings.
FUZZ_LIMITS = ProcessLimits(max_processes=4, max_total_processes=16, max_buffer_size=1 << 20)
#: Cases per operation and run: about two minutes in all on two cores. A deeper run:
#: ``GAFFER_FUZZ_SCALE=10`` (ten times as many), ``GAFFER_FUZZ_RANDOM=1`` (new cases each time).
SCALE = float(os.environ.get("GAFFER_FUZZ_SCALE", "1"))
EXAMPLES = {"anonymous": round(60 * SCALE), "read": round(25 * SCALE)}
DERANDOMIZE = os.environ.get("GAFFER_FUZZ_RANDOM", "") != "1"
#: How long a feed is read (and a longpoll waited for) before the call is cut.
FEED_WAIT = 0.2
#: How long any other call may take: more is a hang, and fails the test.
WAIT = 5.0
TRUE, SLEEP = shutil.which("true"), shutil.which("sleep")
#: ``sleep N`` runs as asked for N up to 60 seconds.
SLEEP_ARG = re.compile(r"[0-5]?[0-9](?:\.[0-9]{1,3})?|60")
#: Operations whose answer is a feed: they may wait, and may never end.
FEEDS = re.compile(r"GET /(watch|streams|stats/)")
READ_METHODS = ("GET", "HEAD")
#: The one non-read a read token may do: a ticket changes nothing in the manager.
READ_TOKEN_MAY = {"POST /auth/ticket"}
SEED_GROUP = "fuzz"
#: The seeded sleeper's streams, and its stdin.
LABELS = ["out", "err", "stdin"]
READ_TOKEN = "r" * 43


class StillWaiting(Exception):
    """A call whose answer had not started within its wait (a longpoll with nothing yet)."""


def confined_argv(argv: Sequence[str]) -> list[str]:
    """What really runs: ``true``, ``sleep N`` (N <= 60), or else ``sleep 60``."""
    assert TRUE and SLEEP
    exe = os.path.basename(argv[0]) if argv else ""
    if exe == "true" and len(argv) == 1:
        return [TRUE]
    if exe == "sleep" and len(argv) == 2 and SLEEP_ARG.fullmatch(argv[1]):
        return [SLEEP, argv[1]]
    return [SLEEP, "60"]


@pytest.fixture(autouse=True)
def harmless_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a case asks to run, only ``true`` and ``sleep`` are executed."""

    def fork_exec(argv: Sequence[str], *, env: Mapping[str, str], **kwargs: Any) -> int:
        return spawn.fork_exec(confined_argv(argv), env={}, **kwargs)

    monkeypatch.setattr(gaffer_gevent.process, "fork_exec", fork_exec)
    monkeypatch.setattr(gaffer_gevent.checks.exec, "fork_exec", fork_exec)  # exec checks


@pytest.fixture
def manager() -> Iterator[Manager]:
    """This module's manager (``server`` uses it): lowered limits."""
    yield from managed(limits=FUZZ_LIMITS)


def seed(manager: Manager, *, ticking: bool) -> None:
    """Templates the cases are aimed at: a sleeper with streams, stdin, log files and a
    readiness check that never passes, a stopped one (started, it exits at once, flaps and
    gives up), and in group ``fuzz`` a second sleeper, or a ticker respawning every 0.1 s so
    that event feeds have something to say (not with the read token: its run must end with
    everything as it was)."""
    bodies: list[dict[str, Any]] = [
        {"name": "sleeper", "cmd": "sleep", "args": ["60"], "redirect_output": ["out", "err"],
         "redirect_input": True, "stdout_logfile": "sleeper.log",
         "stderr_logfile": "sleeper.err.log",
         # never ready (nothing listens on port 1): GET /ready answers its 503 too
         "readiness": {"tcp": "127.0.0.1:1", "period": 60}},
        {"name": "idle", "cmd": "true", "start": False,  # started, it flaps, then gives up
         "flapping": {"attempts": 2, "window": 1, "retry_in": 0.5, "max_retry": 1}},
        {"name": f"{SEED_GROUP}:ticker", "cmd": "sleep", "args": ["0.1" if ticking else "60"],
         "redirect_output": ["out"]},
    ]  # fmt: skip
    for body in bodies:
        if body["name"] not in manager.states:
            template = ProcessTemplate.from_json(body)
            manager.add_template(template, start=body.get("start", True))


def aim(case: Case[Any], data: st.DataObject, manager: Manager) -> None:
    """Point about half of the path parameters at what exists, and half of the new
    templates' names at a few plain ones (generated names are mostly refused: unassigned
    code points are not printable, which the document's pattern cannot say)."""
    params = dict(case.path_parameters or {})
    pids = [str(pid) for pid in sorted(manager.running)]
    names = sorted(manager.states)
    choices = {"name": [*names, *(pids if case.path == "/processes/{name}" else [])],
               "b": names, "pid": pids, "group": [SEED_GROUP], "label": LABELS}  # fmt: skip
    for key in params:
        if choices.get(key) and data.draw(st.booleans(), label=f"aim {key}"):
            which = data.draw(st.integers(0, 63), label="which")
            params[key] = choices[key][which % len(choices[key])]
    case.path_parameters = params
    body = case.body
    if isinstance(body, dict) and "name" in body and data.draw(st.booleans(), label="plain"):
        case.body = {**body, "name": f"made-{data.draw(st.integers(0, 7), label='made')}"}


class BoundedSession(requests.Session):
    """Reads each answer for a bounded time in all: a feed is cut there, and a call whose
    answer has not started by then raises ``StillWaiting``. Cut or not, the connection
    is closed here, never left to the garbage collector."""

    def __init__(self, wait: float) -> None:
        super().__init__()
        self.wait = wait

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.update(stream=True, timeout=(WAIT, self.wait))
        started = time.monotonic()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.exceptions.ReadTimeout:  # no status line yet: urllib3 closed it
            raise StillWaiting(f"{method} {url!r}") from None
        body, cut = bytearray(), True
        try:
            with gevent.Timeout(max(0.0, self.wait - (time.monotonic() - started)), False):
                while chunk := response.raw.read1(65536, decode_content=True):
                    body += chunk
                cut = False
        except urllib3.exceptions.ReadTimeoutError:
            pass
        finally:
            if cut:
                response.raw.close()  # the rest of a feed is not for us
            response.close()
        response._content, response._content_consumed = bytes(body), True
        return response


def no_server_error(ctx: CheckContext, response: Any, case: Case[Any]) -> bool | None:
    """Schemathesis's ``not_a_server_error``, but the documented 503 ``stdin_full`` and the
    503 of ``GET /ready`` (a pid not ready yet)."""
    stdin = case.operation.label == "POST /streams/{pid}/{label}"
    if stdin and response.status_code == 503 and response.json().get("error") == "stdin_full":
        return None
    ready = case.operation.label == "GET /ready"
    if ready and response.status_code == 503 and response.json().get("ready") is False:
        return None
    return not_a_server_error(ctx, response, case)


def refuses_what_the_document_refuses(
    ctx: CheckContext, response: Any, case: Case[Any]
) -> bool | None:
    """Schemathesis's ``negative_data_rejection``: a template body the document refuses is
    refused (413 ``payload_too_large`` is a refusal too: a value over its maxLength can
    make the body larger than the 1 MiB any body may be)."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


#: For template bodies, whose rules the document states in full: what it refuses is refused.
BODY_CHECKS: list[Any] = [refuses_what_the_document_refuses]
CHECKS: list[Any] = [no_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]  # fmt: skip


def fuzz(server: LiveServer, label: str, run: str, headers: dict[str, str]) -> dict[str, int]:
    """Run ``EXAMPLES[run]`` cases of operation ``label``; returns what was seen, by kind."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=headers)
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))  # fmt: skip
    session = BoundedSession(FEED_WAIT if FEEDS.match(label) else WAIT)
    seen: dict[str, int] = {}

    @settings(max_examples=EXAMPLES[run], deadline=None, derandomize=DERANDOMIZE, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=strategy, data=st.data())
    def one(case: Case[Any], data: st.DataObject) -> None:
        if run == "anonymous":
            seed(server.manager, ticking=True)  # again: a case may have removed them
        aim(case, data, server.manager)
        try:
            response = case.call(base_url=server.url, session=session, headers=headers)
        except StillWaiting:
            assert FEEDS.match(label), f"{label}: no answer within {WAIT} s"
            seen["still waiting"] = seen.get("still waiting", 0) + 1
        else:
            extra = BODY_CHECKS if label in ("POST /processes", "PUT /processes/{name}") else []
            case.validate_response(response, checks=CHECKS + extra, headers=headers)
            seen[str(response.status_code)] = seen.get(str(response.status_code), 0) + 1
            if run == "read" and method not in READ_METHODS and label not in READ_TOKEN_MAY:
                refused(response, case, cast(Flask, server.app))
        # With the read token, every change is probed as HEAD too: a HEAD once ran them.
        changes = run == "read" and method not in READ_METHODS
        if method != "HEAD" and (changes or data.draw(st.integers(0, 4), label="HEAD") == 0):
            head_probe(case, server.url, session, headers)

    one()
    if os.environ.get("GAFFER_FUZZ_REPORT"):
        print(f"\n{label} ({run}): {seen}")
    return seen


def refused(response: Any, case: Case[Any], app: Flask) -> None:
    """A read token's change is refused by the guard, or routing found no route for it (a
    parameter holding a ``/`` or a newline): then no view ran either."""
    error = response.json().get("error")
    if (response.status_code, error) == (403, "forbidden"):
        return
    assert (response.status_code, error) in ((404, "not_found"), (405, "method_not_allowed"))
    with pytest.raises(HTTPException):
        app.url_map.bind("127.0.0.1").match(unquote(case.formatted_path), method=case.method)


def head_probe(case: Case[Any], url: str, session: BoundedSession, headers: dict[str, str]) -> None:
    """The same request as HEAD: no 5xx, no body."""
    kwargs = case.as_transport_kwargs(base_url=url, headers=headers)
    for key in ("json", "data", "files"):  # a HEAD with a body is refused before routing
        kwargs.pop(key, None)
    kwargs["method"] = "HEAD"
    try:
        response = session.request(**kwargs)
    except StillWaiting:
        assert FEEDS.match(f"GET {case.path}"), f"HEAD {case.formatted_path} did not answer"
        return
    not_ready = case.path == "/ready" and response.status_code == 503  # documented, not an error
    assert response.status_code < 500 or not_ready, (
        f"HEAD {case.formatted_path}: {response.status_code}"
    )
    assert response.content == b"", f"HEAD {case.formatted_path} sent a body"


OPERATIONS = [f"{method.upper()} {path}" for method, path, *_ in ENDPOINTS]


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_without_auth(server: LiveServer, logfiles: LogFiles, label: str) -> None:
    seed(server.manager, ticking=True)
    seen = fuzz(server, label, "anonymous", {})
    assert sum(seen.values()) > 0
    assert len(server.manager.running) <= FUZZ_LIMITS.max_total_processes + 4
    r = requests.get(f"{server.url}/ping", timeout=2)  # the daemon still answers at once
    assert r.text == "OK"


def snapshot(manager: Manager) -> dict[str, Any]:
    """Everything a change would show: templates, groups, processes and their states."""

    def stopped(os_pid: int) -> bool:
        try:
            return psutil.Process(os_pid).status() == psutil.STATUS_STOPPED
        except psutil.NoSuchProcess:
            return True

    return {
        "templates": {name: (json.dumps(state.template.to_json(), sort_keys=True, default=str),
                             state.stopped) for name, state in manager.states.items()},
        "groups": {group: list(names) for group, names in manager.groups.items()},
        "processes": {pid: (p.name, p.os_pid, p.alive, stopped(p.os_pid))
                      for pid, p in manager.running.items()},
    }  # fmt: skip


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_with_a_read_token_changes_nothing(
    server: LiveServer, logfiles: LogFiles, label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    signalled: list[tuple[int, int]] = []  # also the signals a sleep ignores (CONT, WINCH...)
    send_signal = Process.send_signal

    def recorded(process: Process, sig: int) -> None:
        signalled.append((process.pid, sig))
        send_signal(process, sig)

    monkeypatch.setattr(Process, "send_signal", recorded)
    tokens = [spec("fuzz-read", "read", READ_TOKEN)]
    replace_credentials(server.app, Credentials(tokens))  # type: ignore[arg-type]
    seed(server.manager, ticking=False)
    wait_for(lambda: len(server.manager.running) == 2, timeout=5)
    server.manager.bus.flush()  # the seeding's own events
    before = snapshot(server.manager)
    events: list[str] = []
    server.manager.bus.subscribe(".", lambda event, payload: events.append(event))
    seen = fuzz(server, label, "read", {"Authorization": f"Bearer {READ_TOKEN}"})
    assert sum(seen.values()) > 0
    server.manager.bus.flush()
    assert snapshot(server.manager) == before
    assert signalled == []
    assert set(events) <= {"auth.denied", "api.ticket"}, sorted(set(events))
