"""A template's lifecycle keys: ``restart``, its backoff overrides and ``depends_on``.

Pure parsing, shared by ``template`` (JSON bodies) and ``config`` (the ini),
so both refuse the same values with the same ``BadValue``/``InvalidProcessInfo``
naming the key. What the manager does with them lives in ``manager``,
``dependencies`` and ``dependency_gate``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

from . import limits
from .errors import BadValue, InvalidProcessInfo
from .limits import bounded_number, printable


class RestartPolicy(enum.Enum):
    """When an exit gaffer did not ask for is respawned (systemd's ``Restart=``)."""

    ALWAYS = "always"  # every exit (gaffer's behaviour, the default)
    ON_FAILURE = "on-failure"  # a non-zero status or a signal; exit 0 is ``completed``
    NEVER = "never"  # no exit: 0 is ``completed``, anything else ``failed``

    def respawns(self, exit_status: int, term_signal: int) -> bool:
        if self is RestartPolicy.ALWAYS:
            return True
        if self is RestartPolicy.NEVER:
            return False
        return exit_status != 0 or term_signal != 0

    @property
    def systemd(self) -> str:
        """The ``Restart=`` value of a systemd unit meaning the same."""
        return "no" if self is RestartPolicy.NEVER else self.value


class Condition(enum.Enum):
    """What a dependent waits for in each of its dependencies (docker compose's conditions)."""

    STARTED = "started"  # every slot has a pid that was spawned
    READY = "ready"  # every pid is ready (at spawn, for templates without a readiness check)
    COMPLETED = "completed"  # every slot exited 0 under restart = never|on-failure


def parse_restart(value: Any) -> RestartPolicy:
    if value is None:
        return RestartPolicy.ALWAYS
    if not isinstance(value, str):
        raise InvalidProcessInfo("restart must be a string", field="restart")
    try:
        return RestartPolicy(value)
    except ValueError:
        shown = printable(value[:40])
        raise BadValue(
            f"restart must be always, on-failure or never, not {shown!r}", field="restart"
        ) from None


def parse_delay(settings: Mapping[str, Any], key: str) -> float | None:
    """A backoff override in seconds, above 0 and at most a day; absent or null: not set."""
    value = settings.get(key)
    if value is None:
        return None
    number = bounded_number(value, key, 0, limits.MAX_RESTART_DELAY)
    if number <= 0:
        raise BadValue(f"{key} must be above 0 seconds", field=key)
    return number


def parse_jitter(settings: Mapping[str, Any]) -> float | None:
    value = settings.get("restart_jitter")
    if value is None:
        return None
    number = bounded_number(value, "restart_jitter", 0, 1)
    if number >= 1:
        raise BadValue("restart_jitter must be from 0 to below 1", field="restart_jitter")
    return number


def dependency_key_problem(key: str) -> str | None:
    """Why ``key`` cannot name a dependency: a template name, or ``GROUP:*``."""
    if key.endswith(":*"):
        return limits.name_problem(key[:-2])
    return limits.name_problem(key)


def parse_depends_on(value: Any) -> dict[str, Condition]:
    """``{"db": "ready", "web:*": "started"}``; names are checked by the name rule."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidProcessInfo(
            "depends_on must map template names to started, ready or completed",
            field="depends_on",
        )
    if len(value) > limits.MAX_DEPENDENCIES:
        raise BadValue(
            f"depends_on takes at most {limits.MAX_DEPENDENCIES} entries", field="depends_on"
        )
    parsed: dict[str, Condition] = {}
    for key, condition in value.items():
        problem = dependency_key_problem(key)
        if problem is not None:
            shown = printable(key[: limits.MAX_NAME_LENGTH])
            raise BadValue(f"depends_on name {shown!r} {problem}", field="depends_on")
        if not isinstance(condition, str):
            raise InvalidProcessInfo("depends_on conditions must be strings", field="depends_on")
        try:
            parsed[key] = Condition(condition)
        except ValueError:
            shown = printable(condition[:40])
            raise BadValue(
                f"depends_on condition must be started, ready or completed, not {shown!r}",
                field="depends_on",
            ) from None
    return parsed


def depends_on_from_ini(text: str) -> dict[str, str]:
    """The ini form: a JSON object, or ``NAME CONDITION`` items split by commas or lines.

    A bare ``NAME`` means ``started``. A name holding a comma needs the JSON form.
    """
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"is not a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError("is not a JSON object")
        return value
    result: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        name, _, condition = item.rpartition(" ")
        if not name:
            name, condition = condition, Condition.STARTED.value
        result[name.strip()] = condition
    return result
