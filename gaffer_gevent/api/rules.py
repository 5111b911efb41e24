"""The rules of ``limits.py`` and ``template.py`` as JSON Schema, for the OpenAPI document.

Each bound is imported, never copied, so the document and the checks cannot
drift apart. Where a rule is more than JSON Schema can say portably (Python's
idea of a printable character), the schema is the looser one and says so: a
client that follows it may still get a 400 naming the field, never a 5xx.
"""

from __future__ import annotations

from typing import Any

from ..checks import spec as checks
from ..limits import (
    MAX_ARGS,
    MAX_DEPENDENCIES,
    MAX_ENV,
    MAX_FLAPPING_COUNT,
    MAX_ID,
    MAX_INT_DIGITS,
    MAX_LABEL_LENGTH,
    MAX_LABELS,
    MAX_LOGFILE_BACKUPS,
    MAX_LOGFILE_BYTES,
    MAX_NAME_LENGTH,
    MAX_PATH_LENGTH,
    MAX_PRIORITY,
    MAX_RESTART_DELAY,
    MAX_STRING_LENGTH,
    MAX_TIMEOUT,
    MAX_USER_NAME_LENGTH,
    MIN_BUFFER_SIZE,
    MIN_PRIORITY,
    NAME_FORBIDDEN_CHARS,
    ProcessLimits,
)  # fmt: skip

Schema = dict[str, Any]

_CONTROL = r"\x00-\x1f\x7f-\x9f"
_FORBIDDEN = "".join("\\" + c if c in "\\]^-" else c for c in NAME_FORBIDDEN_CHARS)
#: limits.name_problem as a pattern: no forbidden or control character, not all digits, no
#: space at either end (the length is ``maxLength``; other unprintable characters are refused
#: too, which a portable pattern cannot say).
NAME_PATTERN = rf"^(?![0-9]+$)(?! )(?!.* $)[^{_FORBIDDEN}{_CONTROL}]+$"
NAME: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH,
                "pattern": NAME_PATTERN}  # fmt: skip
#: Our pids, in URLs: ASCII digits only, at most MAX_INT_DIGITS of them.
PID: Schema = {"type": "string", "pattern": rf"^[0-9]{{1,{MAX_INT_DIGITS}}}$"}
LABEL: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_LENGTH,
                 "pattern": rf"^[^/{_CONTROL}]+$"}  # fmt: skip
SEGMENT: Schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
#: Any integer a client writes in a URL or header: at most MAX_INT_DIGITS ASCII digits.
MAX_URL_INT = 10**MAX_INT_DIGITS - 1
URL_INT: Schema = {"type": "integer", "minimum": -MAX_URL_INT, "maximum": MAX_URL_INT}
COUNT: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_URL_INT}
#: limits.check_relative_path: relative, no component starting with a dot but ``.``, a file.
_PART = rf"[^./{_CONTROL}][^/{_CONTROL}]*"
LOG_PATH_PATTERN = rf"^(?:(?:\.|{_PART})/+)*{_PART}$"


def template_schema(limits: ProcessLimits, *, named: bool = True) -> Schema:
    """A ``POST /processes`` body (``named``) or a ``PUT`` one (the URL names the template).

    Null is allowed exactly where ``template.py`` reads it as "not given".
    """

    def text(max_length: int, *types: str) -> Schema:
        # No NUL either (a pattern would say it, at a cost: generators fold maxLength into it)
        return {"type": ["string", *types] if types else "string", "maxLength": max_length}

    def flag() -> Schema:
        return {"type": ["boolean", "null"]}

    def integer(minimum: int, maximum: int, *types: str) -> Schema:
        kind = ["integer", *types] if types else "integer"
        return {"type": kind, "minimum": minimum, "maximum": maximum}

    labels = {"type": ["array", "null"], "maxItems": MAX_LABELS, "items": LABEL}
    seconds = {"type": "number", "minimum": 0, "maximum": MAX_TIMEOUT}
    logfile = {**text(MAX_PATH_LENGTH, "null"), "pattern": LOG_PATH_PATTERN}
    flapping = {
        "type": "object", "additionalProperties": False, "properties": {
            "attempts": integer(1, MAX_FLAPPING_COUNT), "window": seconds,
            "retry_in": seconds, "max_retry": integer(0, MAX_FLAPPING_COUNT)}}  # fmt: skip
    properties: Schema = {
        "name": NAME if named else {"description": "ignored: the URL names the template"},
        "cmd": {**text(MAX_STRING_LENGTH), "minLength": 1, "pattern": r"\S"},
        "args": {**text(MAX_STRING_LENGTH, "array", "null"), "maxItems": MAX_ARGS,
                 "items": text(MAX_STRING_LENGTH)},
        "env": {"type": ["object", "null"], "maxProperties": MAX_ENV,
                "propertyNames": {"minLength": 1, "maxLength": MAX_PATH_LENGTH,
                                  "pattern": "^[^=\\x00]*$"},
                "additionalProperties": text(MAX_STRING_LENGTH, "number")},
        "os_env": flag(), "shell": flag(), "detach": flag(), "redirect_input": flag(),
        "logfile_rotate_daily": flag(),
        "start": {"type": ["boolean", "null"], "description": "false: create it stopped"},
        "group": {"description": "ignored: the group is the part of the name before ':'"},
        "cwd": text(MAX_PATH_LENGTH, "null"),
        "uid": {**integer(0, MAX_ID, "string", "null"), "minLength": 1,
                "maxLength": MAX_USER_NAME_LENGTH},
        "gid": {**integer(0, MAX_ID, "string", "null"), "minLength": 1,
                "maxLength": MAX_USER_NAME_LENGTH},
        "numprocesses": {**integer(0, limits.max_processes), "description":
                         f"at most {limits.max_total_processes} over all templates"},
        "graceful_timeout": seconds,
        "flapping": {"anyOf": [flapping, {"type": "null"},
                               {**text(MAX_PATH_LENGTH), "description": "attempts window "
                                "retry_in max_retry, as in the ini file"}]},
        "priority": integer(MIN_PRIORITY, MAX_PRIORITY, "null"),
        "redirect_output": labels, "custom_streams": labels,
        "buffer_size": integer(MIN_BUFFER_SIZE, limits.max_buffer_size, "null"),
        "stdout_logfile": logfile, "stderr_logfile": logfile,
        "logfile_maxbytes": integer(0, MAX_LOGFILE_BYTES),
        "logfile_backups": integer(0, MAX_LOGFILE_BACKUPS),
        **lifecycle_properties(),
        "readiness": check_schema(liveness=False), "liveness": check_schema(liveness=True),
    }  # fmt: skip
    return {"type": "object", "required": ["name", "cmd"] if named else ["cmd"],
            "additionalProperties": False, "properties": properties}  # fmt: skip


def lifecycle_properties() -> Schema:
    """``restart``, its backoff overrides and ``depends_on`` (lifecycle_settings.py)."""
    delay = {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": MAX_RESTART_DELAY}
    conditions = {"enum": ["started", "ready", "completed"]}
    return {
        "restart": {"enum": ["always", "on-failure", "never", None]},
        "restart_delay": delay, "max_restart_delay": delay,
        "restart_jitter": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1},
        "depends_on": {"type": ["object", "null"], "maxProperties": MAX_DEPENDENCIES,
                       "propertyNames": {**NAME, "maxLength": MAX_NAME_LENGTH + 2},
                       "additionalProperties": conditions,
                       "description": "template name or GROUP:* -> started, ready or completed"},
    }  # fmt: skip


def check_schema(*, liveness: bool) -> Schema:
    """``readiness``/``liveness`` (checks/spec.py): one kind, Kubernetes' timings; null: none.

    Looser than the checks where they parse (a URL, ``host:port``, a regex): those
    get a 400 naming the field, as the module docstring says.
    """
    text = {"type": "string", "minLength": 1, "maxLength": checks.MAX_TARGET_LENGTH}
    kinds: Schema = {
        "http": text, "tcp": text,
        "exec": {"type": "array", "minItems": 1, "maxItems": checks.MAX_EXEC_ARGS,
                 "items": {"type": "string", "maxLength": checks.MAX_EXEC_ARG_LENGTH}},
        "notify": {"const": True},
    }  # fmt: skip
    if not liveness:
        kinds["log"] = {"type": "string", "maxLength": checks.MAX_TARGET_LENGTH}
    count = {"type": "integer", "minimum": 1, "maximum": checks.MAX_THRESHOLD}
    properties: Schema = {
        **kinds,
        "initial_delay": {"type": "number", "minimum": 0, "maximum": checks.MAX_DELAY},
        "period": {"type": "number", "minimum": checks.MIN_PERIOD, "maximum": checks.MAX_PERIOD},
        "timeout": {"type": "number", "minimum": checks.MIN_TIMEOUT,
                    "maximum": checks.MAX_TIMEOUT},
        "failure_threshold": count,
        "success_threshold": {"const": 1} if liveness else count,
    }  # fmt: skip
    if not liveness:
        properties["label"] = LABEL
    check = {"type": "object", "additionalProperties": False, "properties": properties,
             "oneOf": [{"required": [kind]} for kind in kinds]}  # fmt: skip
    return {"anyOf": [check, {"type": "null"}]}
