"""/health, /ready, /auth/whoami and /auth/ticket: is gafferd (and what it runs) up, who am I,
and a ticket for a browser's feeds."""

from __future__ import annotations

from flask import Blueprint, Response

from ..auth import TICKET_LIFETIME
from .extension import gaffer
from .guard import current_principal, visible
from .params import json_response

bp = Blueprint("auth", __name__)


@bp.route("/health", methods=["GET"])
def health() -> Response:
    """gafferd itself is alive and its manager answers; needs no token (load balancers)."""
    manager = gaffer().manager
    return json_response({"status": "ok", "templates": len(manager.template_names())})


@bp.route("/ready", methods=["GET"])
def ready() -> Response:
    """200 when every pid of every template with a readiness check is ready, else 503 with
    those that are not (for load balancers and Kubernetes' readinessProbe)."""
    not_ready = [
        {"name": process.name, "pid": process.pid, "state": process.state.value}
        for name, state in gaffer().manager.states.items()
        if state.template.readiness is not None and visible(name)
        for process in state.queue
        if not process.ready
    ]
    if not_ready:
        return json_response({"ready": False, "not_ready": not_ready}, status=503)
    return json_response({"ready": True})


@bp.route("/auth/whoami", methods=["GET"])
def whoami() -> Response:
    return json_response(current_principal().to_json())


@bp.route("/auth/ticket", methods=["POST"])
def ticket() -> Response:
    """A single-use ticket, valid for ``expires_in`` seconds, for ``?ticket=`` on a GET feed
    or the websocket: an EventSource or a WebSocket cannot send an Authorization header."""
    value = gaffer().security.tickets.issue(current_principal())
    return json_response({"ticket": value, "expires_in": TICKET_LIFETIME})
