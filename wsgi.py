"""gaffer's HTTP API as a WSGI ``application`` for gunicorn's gevent-websocket worker.

Try it::

    GAFFER_CONFIG=examples/gaffer.ini .venv/bin/gunicorn -c gunicorn.conf.py wsgi:application
    # or with plain flags (then SIGTERM does not stop the children first, see below):
    GAFFER_CONFIG=examples/gaffer.ini .venv/bin/gunicorn \\
        -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 wsgi:application

It needs ``gunicorn[gevent]`` (plain gunicorn cannot load its gevent workers).
``GAFFER_CONFIG`` names a gafferd ini file; its ``[gaffer]`` settings, processes
and webhooks are used, its endpoints are not (gunicorn binds). Without it the
manager starts empty and templates are added over HTTP.

**Exactly one worker.** The manager, its children, their output buffers and
every stream subscription live in the memory of the worker that imported this
module. With two workers there would be two managers: every process of the ini
would run twice, and a pid created through one worker would answer 404 on every
request the other worker happens to serve. A gevent worker holds thousands of
streams on its own; scale with ``worker_connections``, not with workers.

**Created on import, in the worker.** gunicorn's gevent worker monkey-patches,
re-initialises the hub and installs its signal handlers *before* it imports the
application, so the manager built here spawns children that gevent's child
watcher reaps. Building it in ``post_fork`` (before the patch, with SIGCHLD
reset afterwards) leaves children unreaped; ``preload_app`` would build it in
the unpatched master. This module patches nothing itself: it refuses to run
where gevent has not patched the process.

**Stopping.** ``gunicorn.conf.py`` hooks the worker's SIGTERM/SIGINT/SIGQUIT to
call ``shutdown`` (found in ``application.extensions["gaffer"].extra``) before
the worker's own handling: the children stop, their streams and websockets end
normally and the worker can exit. Without that hook gunicorn waits for streams
that never end, then SIGKILLs the worker and the children are orphaned.
gunicorn's SIGHUP replaces the worker, so every child is stopped and the new
worker starts the ini's processes afresh (new pids); gafferd's SIGHUP instead
reconciles the running templates in place.
"""

from __future__ import annotations

import logging
import os

from gevent import monkey

from gaffer_gevent.bootstrap import apply_templates, build_app, build_manager, load, start_extras

#: Seconds ``shutdown`` gives the children to exit before they are killed.
SHUTDOWN_TIMEOUT = 20.0

log = logging.getLogger("gaffer_gevent.wsgi")

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
apply_templates(manager, config)


def shutdown(timeout: float = SHUTDOWN_TIMEOUT) -> bool:
    """Stop every child (ending their streams), then log files and webhooks; True if all exited."""
    log.info("stopping every process")
    stopped = manager.stop_all(timeout)
    extras.close()
    return stopped


application.extensions["gaffer"].extra["shutdown"] = shutdown
