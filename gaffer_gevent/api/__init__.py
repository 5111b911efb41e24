"""The Flask side: ``create_app`` for a standalone app, ``Gaffer`` to embed in yours.

Every blueprint only parses the request, calls the manager and shapes the
reply. Errors of the ``GafferError`` tree render as ``{"error": code}``;
anything unexpected is logged and answered with a JSON 500, never a
traceback page. CORS follows gaffer's contract (spec 2.3) through flask-cors.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException, InternalServerError

from .. import __version__
from ..errors import GafferError
from ..manager import Manager
from . import groups, logs, processes, stats, streams, watch, websocket
from .extension import GafferSettings, GafferState, gaffer, manager
from .params import json_response

__all__ = ["Gaffer", "GafferSettings", "create_app", "gaffer", "manager"]

log = logging.getLogger(__name__)

CORS_METHODS = ["POST", "GET", "PUT", "DELETE", "OPTIONS"]
CORS_HEADERS = [
    "X-Requested-With", "X-HTTP-Method-Override", "Content-Type", "Accept", "Authorization",
]  # fmt: skip
CORS_MAX_AGE = 86400

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
    root, processes.bp, groups.bp, streams.bp, websocket.bp, watch.bp, stats.bp, logs.bp,
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
    ) -> None:
        self.manager = manager or Manager()
        self.settings = settings or GafferSettings()
        self.settings.url_prefix = url_prefix or self.settings.url_prefix
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        prefix = self.settings.url_prefix.rstrip("/")
        app.extensions["gaffer"] = GafferState(self.manager, self.settings)
        for bp in BLUEPRINTS:
            app.register_blueprint(bp, url_prefix=prefix or None)
        origins: Any = self.settings.cors_origins or "*"
        # Flask runs after_request functions in reverse order of registration:
        # registered before flask-cors, _cors_compat runs after it and sees its headers.
        app.after_request(_cors_compat)
        CORS(
            app,
            resources={f"{prefix}/*": {"origins": origins}},
            methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            max_age=CORS_MAX_AGE,
            supports_credentials=True,
            always_send=True,
            vary_header=True,
        )
        app.before_request(_preflight)
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


def _preflight() -> Response | None:
    """gaffer answers OPTIONS on every route with 204 and an empty body (Flask: 200)."""
    if request.method == "OPTIONS" and _ours():
        return Response(status=204)
    return None


def _cors_compat(response: Response) -> Response:
    """Fill in what flask-cors leaves out of gaffer's contract (spec 2.3).

    gaffer sends its CORS headers on every response, with ``*`` when there is
    no Origin or it is ``null``; flask-cors only answers requests that carry
    an allowed Origin, so we complete those cases here.
    """
    if not _ours():
        return response
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        if gaffer().settings.cors_origins is None:
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = ", ".join(CORS_METHODS)
            response.headers["Access-Control-Allow-Headers"] = ", ".join(CORS_HEADERS)
            response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE)
    elif "Access-Control-Allow-Origin" in response.headers:
        response.headers["Access-Control-Allow-Methods"] = ", ".join(CORS_METHODS)
        response.headers["Access-Control-Allow-Headers"] = ", ".join(CORS_HEADERS)
        response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE)
    return response


def _gaffer_error(exc: GafferError) -> Response:
    return json_response(exc.to_json(), exc.status)


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
    app = Flask("gaffer_gevent")
    app.config["JSONIFY_PRETTYPRINT_REGULAR"] = False
    Gaffer(manager, app, settings=GafferSettings(**settings))
    return app
