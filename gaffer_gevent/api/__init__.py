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
from werkzeug.exceptions import HTTPException, InternalServerError

from .. import __version__
from ..auth import Credentials, Security
from ..errors import GafferError
from ..manager import Manager
from ..runtime import Runtime
from . import auth, groups, guard, logs, processes, stats, streams, watch, websocket
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

    return json_response(build_spec(gaffer().settings.url_prefix))


BLUEPRINTS = (
    root, auth.bp, processes.bp, groups.bp, streams.bp, websocket.bp, watch.bp, stats.bp,
    logs.bp,
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
        prefix = self.settings.url_prefix.rstrip("/")
        security = Security(self.settings.credentials)
        app.extensions["gaffer"] = GafferState(self.manager, self.settings, security=security)
        for bp in BLUEPRINTS:
            app.register_blueprint(bp, url_prefix=prefix or None)
        app.before_request(_guard)
        app.after_request(_finish)
        app.register_error_handler(GafferError, _gaffer_error)
        app.register_error_handler(HTTPException, _http_error)
        app.register_error_handler(Exception, _server_error)


def _ours() -> bool:
    """Is this request for the API? Embedded under a prefix, the host's routes are not.

    The hooks and error handlers are registered on the whole app (unknown routes
    under the prefix must answer gaffer's JSON 404 too), so each one asks this
    first and leaves the host app's own requests alone.
    """
    prefix = gaffer().settings.url_prefix.rstrip("/")
    return not prefix or request.path == prefix or request.path.startswith(prefix + "/")


def _guard() -> Response | None:
    return guard.check_request() if _ours() else None


def _finish(response: Response) -> Response:
    return guard.finish_response(response) if _ours() else response


def _gaffer_error(exc: GafferError) -> Response:
    response = json_response(exc.to_json(), exc.status)
    response.headers.update(exc.headers)
    return response


def _http_error(exc: HTTPException) -> Response | HTTPException:
    if not _ours():
        return exc  # the host app's own error page
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.code or 500, (exc.name or "error").lower().replace(" ", "_")
    )
    response = json_response({"error": code}, exc.code or 500)
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _server_error(exc: Exception) -> Response | HTTPException:
    log.exception("internal error on %s %s", request.method, request.path)
    if not _ours():
        return InternalServerError(original_exception=exc)
    return json_response({"error": "internal_error"}, 500)


def create_app(manager: Manager | None = None, **settings: Any) -> Flask:
    """A Flask app serving the whole API over ``manager`` (a new one if not given)."""
    app = Flask("gaffer_gevent", static_folder=None)
    app.config["JSONIFY_PRETTYPRINT_REGULAR"] = False
    Gaffer(manager, app, settings=GafferSettings(**settings))
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
