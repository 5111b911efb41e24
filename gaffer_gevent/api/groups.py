"""/groups: templates named ``group:name`` act together."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..errors import ResourceNotFound
from .extension import manager
from .guard import current_principal, visible
from .params import json_response, ok

bp = Blueprint("groups", __name__)


@bp.route("/groups", methods=["GET"])
def collection() -> Response:
    groups = manager().groups
    if not current_principal().scoped:
        return json_response(list(groups))
    return json_response([g for g, names in groups.items() if any(map(visible, names))])


@bp.route("/groups/<group>", methods=["GET", "DELETE"])
def item(group: str) -> Response:
    if request.method == "DELETE":
        manager().remove_group(group)
        return ok()
    return json_response([name for name in manager().group(group) if visible(name)])


@bp.route("/groups/<group>/<action>", methods=["POST"])
def action(group: str, action: str) -> Response:
    # gaffer takes the word after the first "_"; it is checked before the group exists.
    parts = action.split("_")
    name = parts[1] if len(parts) > 1 else ""
    if name not in ("start", "stop", "restart"):
        raise ResourceNotFound()
    manager().group_action(group, name)
    return ok()
