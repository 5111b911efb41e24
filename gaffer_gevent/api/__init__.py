"""The Flask side: ``create_app`` for a standalone app, ``Gaffer`` to embed in yours.

Every blueprint only parses the request, calls the manager and shapes the
reply. Errors of the ``GafferError`` tree render as ``{"error": code}``;
anything unexpected is logged and answered with a JSON 500, never a
traceback page. ``guard`` checks every request (Host, Origin, credentials,
role, scope) before a view runs and adds the CORS headers.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException

from .. import __version__
from ..auth import Credentials, Security
from ..errors import GafferError
from ..manager import Manager
from ..runtime import Runtime
from . import auth, groups, guard, logs, metrics, processes, stats, streams, watch, websocket
from .extension import GafferSettings, GafferState, gaffer, manager
from .params import json_response

__all__ = ["Gaffer", "GafferSettings", "create_app", "gaffer", "manager", "replace_credentials"]

log = logging.getLogger(__name__)

root = Blueprint("root", __name__)


@root.route("/", methods=["GET"])
def welcome() -> Response:
    return json_response({"welcome": "gaffer", "version": __version__})


@root.route("/ping", methods=["GET"])
def ping() -> Response:
    return Response("OK", mimetype="text/plain")


@root.route("/openapi.json", methods=["GET"])
def openapi() -> Response:
    from .openapi import build_spec

    state = gaffer()
    return json_response(
        build_spec(
            state.settings.url_prefix,
            limits=state.manager.limits,
            stdin_max_body=state.settings.stdin_max_body,
        )
    )


BLUEPRINTS = (
    root, auth.bp, processes.bp, groups.bp, streams.bp, websocket.bp, watch.bp, stats.bp,
    logs.bp, metrics.bp,
)  # fmt: skip


class Gaffer:
    """Flask extension: ``Gaffer(manager).init_app(app)`` mounts the API on ``app``.

    The host app must be served by gevent (pywsgi or gunicorn's gevent
    workers): gevent's child watcher, which reaps the children, only runs
    on gevent's default loop.
    """

    def __init__(
        self,
        manager: Manager | None = None,
        app: Flask | None = None,
        *,
        url_prefix: str = "",
        settings: GafferSettings | None = None,
        runtime_dir: str | None = None,
    ) -> None:
        self.manager = manager or Manager()
        self.settings = settings or GafferSettings()
        self.settings.url_prefix = url_prefix or self.settings.url_prefix
        #: With ``runtime_dir``: its lock (NotTheManager if another manager holds it), what a
        #: crashed run left stopped, the children recorded. ``close()`` it after ``stop_all``.
        self.runtime: Runtime | None = None
        if runtime_dir is not None:
            self.runtime = Runtime(runtime_dir)
            self.runtime.attach(self.manager)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        require_gevent()
        prefix = self.settings.url_prefix.rstrip("/")
        security = Security(self.settings.credentials)
        state = GafferState(self.manager, self.settings, security=security)
        app.extensions["gaffer"] = state
        metrics.install(app, state, prefix)  # its own registry: two apps never clash
        for bp in BLUEPRINTS:
            app.register_blueprint(bp, url_prefix=prefix or None)
        # App-wide hooks, since unknown routes under the prefix are ours too (deny by
        # default, JSON 404); each asks ``_ours()`` first and leaves the host's requests be.
        app.before_request(_guard)
        app.after_request(_finish)


def require_gevent() -> None:
    """Refuse to mount the API where gevent cannot watch the children.

    gevent's child watcher reaps them and only runs on its default loop in a
    patched process; under a threaded or sync server a spawned child would run
    untracked. Better a clear error at start than a 500 and an orphan later.
    """
    from gevent import monkey

    missing = [name for name in ("os", "socket", "signal") if not monkey.is_module_patched(name)]
    if missing:
        raise RuntimeError(
            "gaffer_gevent needs a gevent-patched process (not patched: "
            f"{', '.join(missing)}): call gevent.monkey.patch_all() first thing in your entry "
            "point and serve with gevent's WSGIServer or gunicorn's gevent worker"
        )


def _ours() -> bool:
    """Is this request for the API? Embedded under a prefix, the host's routes are not."""
    prefix = gaffer().settings.url_prefix.rstrip("/")
    return not prefix or request.path == prefix or request.path.startswith(prefix + "/")


def _guard() -> Response | None:
    if not _ours():
        return None
    try:
        response = guard.check_request()
    except GafferError as exc:
        return _gaffer_error(exc)
    routing = request.routing_exception
    if response is None and isinstance(routing, HTTPException) and (routing.code or 0) >= 400:
        return _http_error(routing)  # our JSON 404/405, before a host's handler can answer
    return response


def _finish(response: Response) -> Response:
    return guard.finish_response(response) if _ours() else response


def _gaffer_error(exc: GafferError) -> Response:
    response = json_response(exc.to_json(), exc.status)
    response.headers.update(exc.headers)
    return response


def _http_error(exc: HTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.code or 500, (exc.name or "error").lower().replace(" ", "_")
    )
    response = json_response({"error": code}, exc.code or 500)
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _server_error(exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.path)
    return json_response({"error": "internal_error"}, 500)


def _install_error_handlers(target: Flask | Blueprint) -> None:
    """JSON errors for ``target``'s views: on gaffer's blueprints only when embedded, so the
    host app's own errors (and its tests' propagated exceptions) stay its own."""
    target.register_error_handler(GafferError, _gaffer_error)
    target.register_error_handler(HTTPException, _http_error)
    target.register_error_handler(Exception, _server_error)


for _blueprint in BLUEPRINTS:
    _install_error_handlers(_blueprint)


def create_app(manager: Manager | None = None, **settings: Any) -> Flask:
    """A Flask app serving the whole API over ``manager`` (a new one if not given)."""
    app = Flask("gaffer_gevent", static_folder=None)
    app.config["JSONIFY_PRETTYPRINT_REGULAR"] = False
    Gaffer(manager, app, settings=GafferSettings(**settings))
    _install_error_handlers(app)  # the whole app is the API
    return app


def replace_credentials(app: Flask, credentials: Credentials) -> int:
    """Use ``credentials`` from now on (a reload); a removed or changed token stops working
    at once, and its open feeds and websockets are closed. Returns how many were closed."""
    state: GafferState = app.extensions["gaffer"]
    state.settings.credentials = credentials
    closed = state.security.replace(credentials)
    if closed:
        state.manager.bus.publish("auth.revoked", closed=closed)
    return closed
