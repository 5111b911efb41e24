"""Runs one pid's readiness and liveness checks, with Kubernetes' thresholds.

One greenlet per check, in a ``gevent.pool.Group`` that the pid owns: it is
killed when the pid exits, and a check runs again only after its previous run
ended, so runs never pile up. Every run is bounded by the check's timeout
(``gevent.Timeout``), and a failing run is a result, never an exception.

States (``ProcessState``), changed here only while the pid is neither stopping
nor gone:

* no readiness check: ``running``, and ``ready`` is published at spawn, so that
  whoever waits for readiness waits the same way for every template;
* a readiness check: ``starting`` until it passes ``success_threshold`` times in
  a row, then ``ready``; once ready, ``failure_threshold`` failures in a row make
  it ``starting`` again (not ready, not restarted: Kubernetes' readiness);
* a liveness check failing ``failure_threshold`` times in a row: ``unhealthy``,
  then the pid is stopped and its exit counts as a crash (``failed_check`` tells
  the manager), so backoff and flapping apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from gevent.pool import Group

from ..errors import GafferError
from ..process import ProcessState
from .exec import probe_exec
from .http import probe_http
from .log import first_match
from .notify import NotifySocket
from .spec import CheckSpec
from .tcp import probe_tcp

if TYPE_CHECKING:
    from ..process import Process

log = logging.getLogger(__name__)

#: publish(event, process, **fields): the manager's ``proc.<name>.<event>`` twin.
Publish = Callable[..., None]


class CheckRunner:
    """The checks of one pid, their greenlets and its notify socket."""

    def __init__(
        self,
        process: Process,
        publish: Publish,
        on_group: Callable[[int, str, bool], None] | None = None,
    ) -> None:
        """``on_group(os_pid, name, running)``: an exec check's command started or is gone."""
        self.process = process
        self._on_group = on_group
        self.readiness: CheckSpec | None = process.template.readiness
        self.liveness: CheckSpec | None = process.template.liveness
        self.publish = publish
        self.notify: NotifySocket | None = None
        #: What the last run of a check saw, for ``GET /processes/<pid>``.
        self.last: dict[str, Any] = {}
        self._env: dict[str, str] = {}
        self._greenlets = Group()
        self._stopped = False

    @property
    def uses_notify(self) -> bool:
        return any(spec is not None and spec.kind == "notify"
                   for spec in (self.readiness, self.liveness))  # fmt: skip

    # -- the pid's life ------------------------------------------------------

    def prepare(self, env: dict[str, str]) -> None:
        """Before the fork: remember the environment ($VAR) and add ``NOTIFY_SOCKET``."""
        self._env = dict(env)
        if self.uses_notify:
            self.notify = NotifySocket(self.process.name, self.process.pid)
            env["NOTIFY_SOCKET"] = self.notify.env_value
            if self.liveness is not None and self.liveness.kind == "notify":
                env["WATCHDOG_USEC"] = str(round(self.liveness.period * 1_000_000))

    def start(self) -> None:
        """After a successful spawn: start the checks (or say "ready" at once)."""
        if self._stopped or not self.process.alive:
            return  # it exited already (a spawn hook yielded): nothing to check
        if self.notify is not None:
            self.notify.os_pid = self.process.os_pid
            self._greenlets.spawn(self.notify.serve)
        if self.readiness is None:
            self.publish("ready", self.process, reason="no readiness check")
        else:
            self._greenlets.spawn(self._readiness)
        if self.liveness is not None:
            self._greenlets.spawn(self._liveness, self.liveness)

    def stop(self) -> None:
        """The pid is gone (or never started): end every check and close the socket."""
        self._stopped = True
        self._greenlets.kill(block=False)
        if self.notify is not None:
            self.notify.close()

    @property
    def status_text(self) -> str | None:
        return None if self.notify is None else self.notify.status_text

    # -- readiness -----------------------------------------------------------

    def _readiness(self) -> None:
        spec = self.readiness
        assert spec is not None
        if spec.kind == "notify":
            assert self.notify is not None
            self.notify.ready.wait()
            self._ready("notify", "READY=1")
            return
        if spec.kind == "log":
            stream = self.process.streams.get(spec.label)
            assert spec.pattern is not None
            line = None if stream is None else first_match(stream, spec.pattern)
            if line is not None:
                self._ready("log", line[:200])
            return
        gevent.sleep(spec.initial_delay)
        successes = failures = 0
        ready = False
        while True:
            began = time.monotonic()
            passed, detail = self._run(spec, "readiness")
            successes, failures = (successes + 1, 0) if passed else (0, failures + 1)
            if not ready and successes >= spec.success_threshold:
                ready = True
                self._ready(spec.kind, detail)
            elif ready and failures >= spec.failure_threshold:
                ready = False
                self._not_ready(detail)
            gevent.sleep(max(0.0, spec.period - (time.monotonic() - began)))

    def _ready(self, kind: str, detail: str) -> None:
        if self._set_state(ProcessState.READY):  # STARTING -> READY
            self.publish("ready", self.process, reason=kind, detail=detail)

    def _not_ready(self, detail: str) -> None:
        if self._set_state(ProcessState.STARTING):  # READY -> STARTING
            self.publish("unhealthy", self.process, reason="readiness", detail=detail)

    # -- liveness ------------------------------------------------------------

    def _liveness(self, spec: CheckSpec) -> None:
        gevent.sleep(spec.initial_delay)
        failures = 0
        seen_pings = 0
        while True:
            began = time.monotonic()
            if spec.kind == "notify":
                gevent.sleep(spec.period)
                pings = self.notify.pings if self.notify is not None else 0
                passed = pings > seen_pings
                seen_pings = pings
                detail = "WATCHDOG=1" if passed else f"no WATCHDOG=1 for {spec.period:g} s"
                self.last["liveness"] = {"passed": passed, "detail": detail}
            else:
                passed, detail = self._run(spec, "liveness")
            failures = 0 if passed else failures + 1
            if failures >= spec.failure_threshold:
                self._unhealthy(detail)
                return
            if spec.kind != "notify":
                gevent.sleep(max(0.0, spec.period - (time.monotonic() - began)))

    def _unhealthy(self, detail: str) -> None:
        if not self._set_state(ProcessState.UNHEALTHY):  # -> UNHEALTHY, then restarted
            return
        process = self.process
        log.warning("%s[%d] failed its liveness check (%s): restarting it",
                    process.name, process.pid, detail)  # fmt: skip
        process.failed_check = "liveness"
        self.publish("unhealthy", process, reason="liveness", detail=detail)
        process.stop()

    # -- one run -------------------------------------------------------------

    def _run(self, spec: CheckSpec, which: str) -> tuple[bool, str]:
        """One run of ``spec``, bounded by its timeout; (passed, what it saw)."""
        timer = gevent.Timeout(spec.timeout)
        timer.start()
        try:
            passed, detail = self._probe(spec)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            passed, detail = False, f"timed out after {spec.timeout:g} s"
        except KeyError as exc:
            passed, detail = False, f"cannot substitute ${exc.args[0]}"
        except GafferError as exc:
            passed, detail = False, exc.message
        except (OSError, ValueError) as exc:
            passed, detail = False, str(exc) or type(exc).__name__
        finally:
            timer.close()
        self.last[which] = {"passed": passed, "detail": detail}
        return passed, detail

    def _probe(self, spec: CheckSpec) -> tuple[bool, str]:
        target = spec.substituted(self._env)
        if spec.kind == "http":
            return probe_http(target, spec.timeout)
        if spec.kind == "tcp":
            return probe_tcp(target, spec.timeout)
        tpl = self.process.template
        hook = self._on_group
        name = self.process.name
        on_group = None if hook is None else (lambda os_pid, up: hook(os_pid, name, up))
        return probe_exec(target, spec.timeout, env=self._env, cwd=tpl.cwd, uid=tpl.uid,
                          gid=tpl.gid, on_group=on_group)  # fmt: skip

    def _set_state(self, state: ProcessState) -> bool:
        """Change the pid's state unless it is stopping or gone; True if it changed."""
        live = (ProcessState.STARTING, ProcessState.READY, ProcessState.RUNNING,
                ProcessState.UNHEALTHY)  # fmt: skip
        if self.process.state not in live or self.process.state is state:
            return False
        self.process.state = state
        return True
