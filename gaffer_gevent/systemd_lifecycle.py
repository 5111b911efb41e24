"""The lifecycle keys of a template as systemd unit lines, for ``gaffer export systemd``.

``depends_on`` becomes ``Requires=``/``After=`` on every instance of each
dependency, ``restart`` becomes ``Restart=`` (always, on-failure, no), a
readiness check ``{"notify": true}`` becomes ``Type=notify``, and a type others
wait to see ``completed`` with ``restart = never`` becomes a ``Type=oneshot`` unit
that remains active after it exits (so ``After=`` waits for it to finish, as
gaffer does). Pure: settings in, lines out, so an app moves to systemd and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .lifecycle_settings import Condition, RestartPolicy, parse_depends_on, parse_restart

#: Per process type, the template keys that map to systemd (others are ignored).
Settings = Mapping[str, Mapping[str, Any]]


def dependency_types(key: str, app: str, types: list[str]) -> list[str]:
    """The process types a ``depends_on`` key names: ``db``, ``<app>:db`` or ``<app>:*``."""
    name = key.removeprefix(f"{app}:")
    if key == f"{app}:*":
        return list(types)
    if name in types:
        return [name]
    raise ValueError(f"depends_on {key!r} names no process type of {app} ({', '.join(types)})")


def unit_lines(
    ptype: str,
    *,
    app: str,
    settings: Settings,
    concurrency: Mapping[str, int],
    types: list[str],
) -> tuple[list[str], list[str]]:
    """The ``[Unit]`` lines and the ``[Service]`` lines (Type=, Restart=) of one type."""
    own = settings.get(ptype, {})
    depends_on = parse_depends_on(own.get("depends_on"))
    needed: list[str] = []
    for key in depends_on:
        for other in dependency_types(key, app, types):
            if other != ptype:
                count = concurrency.get(other, 1)
                needed += [f"{app}-{other}@{i}.service" for i in range(1, count + 1)]
    unit = [f"Requires={' '.join(needed)}", f"After={' '.join(needed)}"] if needed else []
    restart = parse_restart(own.get("restart"))
    readiness = own.get("readiness")
    notify = isinstance(readiness, Mapping) and readiness.get("notify") is True
    if _awaited_to_complete(ptype, app, settings, types) and restart is RestartPolicy.NEVER:
        service = ["Type=oneshot", "RemainAfterExit=yes"]
    else:
        service = ["Type=notify" if notify else "Type=simple", f"Restart={restart.systemd}"]
    return unit, service


def _awaited_to_complete(ptype: str, app: str, settings: Settings, types: list[str]) -> bool:
    for own in settings.values():
        for key, condition in parse_depends_on(own.get("depends_on")).items():
            if condition is Condition.COMPLETED and ptype in dependency_types(key, app, types):
                return True
    return False
