"""The ``[process:NAME]`` and ``[env:NAME]`` sections: each one a ``POST /processes`` body.

The keys a section accepts are the template's own (``template.KNOWN_KEYS``), so
a key the API learns is a key the ini reads. To teach the ini a new template
key, add it to ``KNOWN_KEYS``; if its ini text is not plain text, give it a
converter in ``PROCESS_CONVERTERS`` below (the one table to extend). Every body
is then checked by ``ProcessTemplate`` itself, so the ini refuses what the API
would refuse, naming the section and key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import GafferError
from .ini_source import IniSource
from .ini_values import (
    as_bool,
    as_check,
    as_flapping,
    as_float,
    as_int,
    as_labels,
    as_size,
    as_user,
)
from .lifecycle_settings import depends_on_from_ini
from .template import KNOWN_KEYS, ProcessTemplate


@dataclass
class ProcessConfig:
    """One ``[process:NAME]``: the ``POST /processes`` body it stands for."""

    name: str
    section: str
    body: dict[str, Any]
    priority: int | None


#: How the ini reads a [process:NAME] key that is not plain text (one key a line, sorted, so
#: keys added side by side merge cleanly); any other template key is read as text.
PROCESS_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "buffer_size": as_size,
    "depends_on": depends_on_from_ini,
    "detach": as_bool,
    "flapping": as_flapping,
    "gid": as_user,
    "graceful_timeout": as_float,
    "liveness": as_check,
    "logfile_backups": as_int,
    "logfile_maxbytes": as_size,
    "logfile_rotate_daily": as_bool,
    "max_restart_delay": as_float,
    "numprocesses": as_int,
    "os_env": as_bool,
    "priority": as_int,
    "readiness": as_check,
    "redirect_input": as_bool,
    "redirect_output": as_labels,
    "restart_delay": as_float,
    "restart_jitter": as_float,
    "shell": as_bool,
    "start": as_bool,
    "uid": as_user,
}
#: Template keys the ini writes elsewhere: the name is the section's, env is [env:NAME], and
#: custom_streams and group have no ini form.
_NOT_PROCESS_KEYS = frozenset({"name", "env", "custom_streams", "group"})
#: [process:NAME] key -> converter: the template's keys (one table, in template.py), so a key
#: the API learns is a key the ini reads; text unless PROCESS_CONVERTERS says otherwise.
PROCESS_KEYS: dict[str, Callable[[str], Any]] = {
    key: PROCESS_CONVERTERS.get(key, str) for key in sorted(KNOWN_KEYS - _NOT_PROCESS_KEYS)
}


def parse_process(src: IniSource, section: str) -> ProcessConfig | None:
    """The POST body for one [process:NAME], or None when it has no cmd (spec)."""
    name = section.partition(":")[2]
    values = src.values(section, PROCESS_KEYS.__contains__)
    parsed = {key: src.convert(section, values, key, PROCESS_KEYS[key], None) for key in values}
    if not (parsed.get("cmd") or "").strip():
        return None
    body: dict[str, Any] = {"name": name, "cmd": parsed.pop("cmd")}
    body["start"] = parsed.pop("start", True)
    body.update(parsed)
    return ProcessConfig(name, section, body, body.get("priority"))


def apply_env(src: IniSource, processes: dict[str, ProcessConfig]) -> None:
    """Each [env:NAME] replaces the env of the template named exactly NAME."""
    for section, values in src.sections.items():
        if section.startswith("env:"):
            name = section.partition(":")[2]
            if name not in processes:
                raise src.error(f"no [process:{name}] with a cmd to apply it to", section)
            processes[name].body["env"] = {key.upper(): value for key, value in values.items()}


def validate_process(src: IniSource, process: ProcessConfig) -> ProcessTemplate:
    """Refuse here what POST /processes would refuse, naming the key."""
    try:
        return ProcessTemplate.from_json(process.body)
    except GafferError as exc:
        key = exc.field if exc.field in PROCESS_KEYS else None
        section = f"env:{process.name}" if exc.field == "env" else process.section
        raise src.error(exc.message, section, key) from None
    except Exception as exc:  # a config mistake must stay a ConfigError, whatever raised it
        raise src.error(f"invalid: {exc}", process.section) from None
