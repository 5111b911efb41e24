"""gaffer in a gunicorn worker: the worker holding the runtime dir manages, the others stand by.

Each worker that imports ``wsgi.py`` builds an app and a manager, but only the
one that holds the runtime dir's lock (``runtime.py``) starts processes. Any
other worker (a second ``-w``, one added by ``kill -TTIN``, or the new worker of
a SIGHUP while the old one still stops its children) *stands by*: it answers
every request with 503 ``{"error": "not_the_manager"}`` and ``Retry-After: 1``,
tries the lock again every ``RETRY_INTERVAL`` seconds, and once it is free (the
managing worker stopped or died) stops whatever that worker left and starts the
config's processes. So two managers never run at once, no worker crashes in a
loop (gunicorn halts on a boot error and restarts a worker that exits), and the
master recovers by itself when the managing worker dies.

The worker's SIGTERM, SIGINT and SIGQUIT are wrapped here, when ``wsgi.py`` is
imported, so the children stop first with or without ``gunicorn.conf.py``:
otherwise the worker waits for streams that never end, the master SIGKILLs it
after its graceful timeout and the children live on under PID 1.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import gevent
from flask import Flask, Response

from .api.params import json_response
from .errors import ConfigError, NotTheManager
from .runtime import Runtime

if TYPE_CHECKING:
    from .manager import Manager

#: Seconds between two tries of the lock by a worker standing by.
RETRY_INTERVAL = 0.2
#: Seconds the children get when the worker's graceful timeout is unknown.
DEFAULT_STOP_TIMEOUT = 20.0
#: gunicorn's own log, so these lines show where its operator looks.
log = logging.getLogger("gunicorn.error")

SignalHandler = Callable[[int, FrameType | None], Any]


class ManagerClaim:
    """This worker's claim to be the manager: held (``active``), or waited for."""

    def __init__(
        self,
        app: Flask,
        manager: Manager,
        claim: Callable[[], Runtime],
        start: Callable[[], Any],
    ) -> None:
        """``claim`` takes the runtime dir (``Runtime.claim``); ``start`` starts the processes."""
        self.manager = manager
        self.runtime: Runtime | None = None
        self.active = False
        self.stopping = False
        self.holder: int | None = None
        self._claim, self._start = claim, start
        self._waiter: gevent.Greenlet[Any] | None = None
        app.before_request(self._gate)

    def begin(self) -> None:
        """Manage now if the lock is free, else stand by. ConfigError for an unusable dir."""
        try:
            runtime = self._claim()
        except NotTheManager as exc:
            self.holder = exc.holder
            log.warning(
                "gaffer: another worker or manager (pid %s) runs the processes of this config "
                "(%s is locked): this worker answers 503 not_the_manager and takes over when "
                "that one is gone; gaffer needs exactly one worker",
                exc.holder or "unknown", exc.lock,
            )  # fmt: skip
            self._waiter = gevent.spawn(self._wait)
            return
        self._take_over(runtime)

    def _wait(self) -> None:
        while not self.stopping:
            gevent.sleep(RETRY_INTERVAL)
            try:
                runtime = self._claim()
            except NotTheManager as exc:
                self.holder = exc.holder
                continue
            except ConfigError as exc:
                log.error("gaffer: cannot take over: %s", exc)
                continue
            log.info("gaffer: the lock is free: this worker manages the processes now")
            self._take_over(runtime)
            return

    def _take_over(self, runtime: Runtime) -> None:
        self.runtime = runtime
        runtime.attach(self.manager, say=log.warning)
        self._start()
        self.active = True

    def _gate(self) -> Response | None:
        if self.active and not self.stopping:
            return None
        if self.stopping:
            reason = "this worker is stopping"
        else:
            who = f"pid {self.holder}" if self.holder else "another process"
            reason = f"{who} manages the processes; gaffer needs exactly one worker"
        error = NotTheManager(reason)
        response = json_response(error.to_json(), error.status)
        response.headers.update(error.headers)
        return response

    def stop(self, timeout: float) -> bool:
        """Stop every child (or the wait for the lock); True if all exited. Then 503 only.

        A worker that stands by still cleans up after a manager that died without
        stopping (SIGKILL, OOM) if the lock is free: no worker may be left to do it.
        """
        self.stopping = True
        if self._waiter is not None:
            self._waiter.kill()
        if self.runtime is None:
            self._sweep_only()
        stopped = self.manager.stop_all(timeout)
        if self.runtime is not None:
            self.runtime.close()
        return stopped

    def _sweep_only(self) -> None:
        try:
            runtime = self._claim()
        except (NotTheManager, ConfigError):
            return
        try:
            runtime.sweep(self.manager.bus, say=log.warning)
        finally:
            runtime.close()


def gunicorn_worker() -> Any:
    """The gunicorn worker running us (its ``handle_exit`` handles SIGTERM), or None.

    Ask before ``stop_children_first`` replaces that handler.
    """
    worker = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return worker if hasattr(worker, "cfg") and hasattr(worker, "alive") else None


def graceful_timeout(worker: Any, default: float = DEFAULT_STOP_TIMEOUT) -> float:
    """How long the children may take to stop: most of ``worker``'s graceful timeout.

    ``default`` when not under gunicorn (``worker`` is None).
    """
    graceful = getattr(getattr(worker, "cfg", None), "graceful_timeout", None)
    if not isinstance(graceful, int | float) or graceful <= 0:
        return default
    return stop_timeout(graceful)


def stop_timeout(graceful: float) -> float:
    """Most of gunicorn's graceful timeout, never all of it: the worker must exit after."""
    return max(1.0, min(graceful - 5.0, graceful * 0.8))


def stop_children_first(shutdown: Callable[[float], Any], timeout: float) -> None:
    """Wrap the current SIGTERM/SIGINT/SIGQUIT handlers: stop the children, then do what they do.

    The handlers run at signal time, so they only spawn a greenlet; the first
    signal starts ``shutdown`` and any later one waits for that same run before
    handing over (gunicorn's SIGINT/SIGQUIT still end the worker at once after).
    """
    stopping: list[gevent.Greenlet[Any]] = []

    def stop_then(original: Any, sig: int, frame: FrameType | None) -> None:
        try:
            stopping[0].join()
            if not stopping[0].successful():
                log.error("stopping the children failed: %r", stopping[0].exception)
        finally:
            if callable(original):
                original(sig, frame)
            elif original != signal.SIG_IGN:  # SIG_DFL (not gunicorn): die of it as we would
                signal.signal(sig, signal.SIG_DFL)
                signal.raise_signal(sig)

    def wrap(original: Any) -> SignalHandler:
        def handler(sig: int, frame: FrameType | None) -> None:
            if not stopping:
                log.info("signal %s: stopping every child first", sig)
                stopping.append(gevent.spawn(shutdown, timeout))
            gevent.spawn(stop_then, original, sig, frame)

        return handler

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, wrap(signal.getsignal(sig)))
