"""gaffer-gevent: a process manager driven by gaffer 0.4's HTTP API, on gevent.

Importing the package patches nothing and loads neither Flask nor gevent's
monkey module: entry points (``gafferd``, ``wsgi.py``, tests) patch first.
Public names are resolved lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.5.0"

_LAZY = {
    "Manager": "gaffer_gevent.manager",
    "ProcessTemplate": "gaffer_gevent.template",
    "GafferError": "gaffer_gevent.errors",
    "create_app": "gaffer_gevent.api",
    "Gaffer": "gaffer_gevent.api",
}

__all__ = ["Gaffer", "GafferError", "Manager", "ProcessTemplate", "__version__", "create_app"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(import_module(module), name)
