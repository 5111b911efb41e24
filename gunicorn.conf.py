"""gunicorn settings for serving gaffer's API from ``wsgi.py``.

    GAFFER_CONFIG=examples/gaffer.ini .venv/bin/gunicorn -c gunicorn.conf.py wsgi:application

Command-line flags win over this file (``-b 0.0.0.0:8000`` to bind elsewhere).
The settings, and why:

* one worker: the manager lives in the worker (see ``wsgi.py``); more workers
  would only stand by (503 ``not_the_manager``), so this file refuses to start
  with any other count and refuses ``kill -TTIN`` (``nworkers_changed``);
* geventwebsocket's worker: greenlets for thousands of open streams, and the
  websocket upgrade for ``/wstreams/<pid>``;
* ``worker_connections`` far above 1,000: each open stream holds a connection,
  and once the pool is full every further stream *and API call* hangs; the
  open-file limit is raised to match;
* no ``preload_app``: the master must not import ``wsgi.py`` (unpatched, it
  would own the children); no ``max_requests``: a recycled worker restarts
  every child;
* no control socket: gunicorn 27 opens a unix control socket by default, which
  would let anyone who can reach it add workers (i.e. managers);
* ``post_worker_init`` sets gafferd's request handler and has idle keep-alive
  connections closed once ``wsgi.py``'s signal hook has stopped the children,
  so the worker exits within ``graceful_timeout`` instead of being SIGKILLed.
"""

from __future__ import annotations

import contextlib
import resource
import socket
from typing import Any

bind = ["127.0.0.1:5000"]
workers = 1
worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
worker_connections = 10000
preload_app = False
max_requests = 0
control_socket_disable = True
#: The master SIGKILLs a worker still alive this long after SIGTERM; the
#: children get most of it (``gaffer_gevent.worker.stop_timeout``), the worker the rest.
graceful_timeout = 30
timeout = 30

#: Open files the master (and so the worker) may hold: every connection and
#: every child's pipes need descriptors.
WANTED_FILES = worker_connections + 4096


def on_starting(server: Any) -> None:
    """Refuse more than one worker and raise the open-file limit for the connections."""
    if server.cfg.workers != 1:
        raise RuntimeError(
            f"gaffer needs exactly one worker (got {server.cfg.workers}): only one can manage "
            "the processes, the others would answer 503 not_the_manager; see wsgi.py"
        )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_FILES if hard == resource.RLIM_INFINITY else min(WANTED_FILES, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def nworkers_changed(server: Any, new_value: int, old_value: int | None) -> None:
    """Undo ``kill -TTIN``: a second worker could only stand by (see ``wsgi.py``)."""
    if old_value is not None and new_value > 1:
        server.log.error(
            "gaffer needs exactly one worker: refusing to grow to %d (TTIN); "
            "a second worker would only answer 503 not_the_manager", new_value,
        )  # fmt: skip
        server.num_workers = 1


def post_worker_init(worker: Any) -> None:
    """Finish the worker once the app (and with it the manager) is loaded.

    Runs in the worker after the gevent patch and after ``wsgi.py`` was
    imported, just before the worker starts serving.
    """
    set_nodelay(worker.sockets)
    state = getattr(worker.wsgi, "extensions", {}).get("gaffer")
    if state is None:
        worker.log.warning("the WSGI app is not a gaffer app: no child shutdown hook installed")
        return
    from gaffer_gevent.server import GafferHandler

    # gafferd's handler (geventwebsocket's, plus the client socket in the environ
    # so stream views notice a client that leaves while idle), made to drop
    # keep-alive connections once stopping.
    handler = keepalive_closing(GafferHandler)
    worker.wsgi_handler = handler
    stop_hooks = state.extra.get("stop_hooks")
    if stop_hooks is not None:  # wsgi.py stops the children on the stop signals
        stop_hooks.append(handler.close_idle)
        return
    from gaffer_gevent.worker import stop_children_first, stop_timeout

    shutdown = state.extra.get("shutdown") or state.manager.stop_all

    def stop_children(timeout: float) -> None:
        shutdown(timeout)  # every stream of a process ends with it
        handler.close_idle()

    stop_children_first(stop_children, stop_timeout(worker.cfg.graceful_timeout))


def keepalive_closing(base: type[Any]) -> Any:
    """``base`` handler whose keep-alive connections end once ``close_idle`` is called.

    pywsgi has no keep-alive timeout: a client whose stream just ended (browsers
    and pooling HTTP clients keep the connection) sits between requests, and
    gunicorn's worker waits for every connection until the graceful timeout,
    after which the master SIGKILLs it. Connections waiting for a request are
    shut down; ones still answering get no further request.
    """
    idle: set[Any] = set()

    class KeepaliveClosingHandler(base):  # type: ignore[misc]
        stopping = False

        def read_requestline(self) -> str:
            if KeepaliveClosingHandler.stopping:
                return ""  # pywsgi closes the connection on an empty request line
            idle.add(self)
            try:
                line: str = super().read_requestline()
                return line
            finally:
                idle.discard(self)

        @classmethod
        def close_idle(cls) -> None:
            cls.stopping = True
            for handler in list(idle):
                with contextlib.suppress(OSError, AttributeError):
                    handler.socket.shutdown(socket.SHUT_RDWR)

    return KeepaliveClosingHandler


def set_nodelay(sockets: list[Any]) -> None:
    """TCP_NODELAY on the listening sockets (accepted ones inherit it on Linux).

    Small stream chunks otherwise wait for Nagle: p99 fan-out latency about
    doubled without it. gunicorn 27 already sets it on TCP listeners; this
    keeps the guarantee if that changes, and skips unix sockets.
    """
    for sock in sockets:
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
