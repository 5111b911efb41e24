"""gaffer's HTTP API as a WSGI ``application`` for gunicorn's gevent-websocket worker.

Try it::

    GAFFER_CONFIG=examples/gaffer.ini .venv/bin/gunicorn -c gunicorn.conf.py wsgi:application
    # or with plain flags:
    GAFFER_CONFIG=examples/gaffer.ini .venv/bin/gunicorn \\
        -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 wsgi:application

It needs ``gunicorn[gevent]`` (plain gunicorn cannot load its gevent workers).
``GAFFER_CONFIG`` names a gafferd ini file; its ``[gaffer]`` settings, processes
and webhooks are used, its endpoints are not (gunicorn binds). Without it the
manager starts empty and templates are added over HTTP.

**One manager.** The manager, its children, their output buffers and every
stream subscription live in the memory of one worker. Only the worker holding
the runtime dir's lock (``[gaffer] runtime_dir``; by default one per config
file, the same as gafferd's, so gafferd and gunicorn over one ini exclude each
other too) starts processes. Any other worker (``-w 2``, ``kill -TTIN``, the new
worker of a SIGHUP) stands by: it answers 503 ``not_the_manager`` and takes over
once the lock is free, after stopping what the previous worker left (see
``gaffer_gevent/worker.py``). A gevent worker holds thousands of streams on its
own; scale with ``worker_connections``, not with workers.

**Created on import, in the worker.** gunicorn's gevent worker monkey-patches,
re-initialises the hub and installs its signal handlers *before* it imports the
application, so the manager built here spawns children that gevent's child
watcher reaps. Building it in ``post_fork`` (before the patch, with SIGCHLD
reset afterwards) leaves children unreaped; ``preload_app`` would build it in
the unpatched master. This module patches nothing itself: it refuses to run
where gevent has not patched the process.

**Stopping.** The worker's SIGTERM/SIGINT/SIGQUIT are wrapped on import to call
``shutdown`` before the worker's own handling: the children stop, their streams
and websockets end normally and the worker can exit; ``gunicorn.conf.py`` adds
the closing of idle keep-alive connections (``extra["stop_hooks"]``). gunicorn's
SIGHUP replaces the worker, so every child is stopped and the new worker starts
the ini's processes afresh (new pids); gafferd's SIGHUP instead reconciles the
running templates in place. A stop signal that reaches a worker in its first
moments, before gunicorn installs the worker's handlers, is lost by gunicorn; the
master SIGKILLs that worker after ``graceful_timeout``, and what it started is
stopped by the next worker or gafferd over the same config (README, "Crashes
and restarts").
"""

from __future__ import annotations

import os
from collections.abc import Callable

from gevent import monkey

from gaffer_gevent.bootstrap import apply_templates, build_app, build_manager, load, start_extras
from gaffer_gevent.runtime import Runtime
from gaffer_gevent.worker import (
    ManagerClaim,
    graceful_timeout,
    gunicorn_worker,
    log,
    stop_children_first,
)

if not monkey.is_module_patched("socket"):
    raise RuntimeError(
        "wsgi.py must be served by gunicorn's gevent worker "
        "(-k geventwebsocket.gunicorn.workers.GeventWebSocketWorker), which patches first; "
        "without gevent the children cannot be watched."
    )

config = load(os.environ.get("GAFFER_CONFIG") or None)
manager = build_manager(config)
application = build_app(manager, config)
extras = start_extras(application, manager, config)
#: Run after the children stopped (gunicorn.conf.py closes idle connections here).
stop_hooks: list[Callable[[], object]] = []
claim = ManagerClaim(
    application, manager,
    claim=lambda: Runtime.claim(config.runtime_dir, config.path, f"wsgi:{os.getcwd()}"),
    start=lambda: apply_templates(manager, config),
)  # fmt: skip
worker = gunicorn_worker()
#: Seconds ``shutdown`` gives the children: most of gunicorn's graceful timeout.
SHUTDOWN_TIMEOUT = graceful_timeout(worker)


def shutdown(timeout: float = SHUTDOWN_TIMEOUT) -> bool:
    """Stop every child (ending their streams), then log files and webhooks; True if all exited."""
    log.info("gaffer: stopping every process")
    stopped = claim.stop(timeout)
    extras.close()
    for hook in stop_hooks:
        hook()
    return stopped


stop_children_first(shutdown, SHUTDOWN_TIMEOUT)
application.extensions["gaffer"].extra.update(shutdown=shutdown, stop_hooks=stop_hooks)
# Only now, with the stop signals hooked: a stop that came earlier in the boot went to
# gunicorn's own handler, and children started after it would be left behind at once.
if worker is None or worker.alive:
    claim.begin()
else:
    claim.stop(0)
