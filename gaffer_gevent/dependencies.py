"""The dependency graph of templates (``depends_on``): validation, start and stop order.

Pure: a graph is ``{template name: {dependency key: condition}}``, a key being a
template name or ``GROUP:*`` (every template named ``GROUP:...``). The same
checks serve ``POST``/``PUT /processes`` (the manager), the config file and a
SIGHUP reload, so an unknown name or a cycle is refused everywhere with the
same words, naming the loop (``web -> migrate -> web``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from .errors import DependencyCycle, UnknownDependency
from .limits import printable

V = TypeVar("V")
Graph = Mapping[str, Mapping[str, V]]


def expand(key: str, names: Iterable[str]) -> list[str]:
    """The template names ``key`` stands for among ``names`` (a group: its members)."""
    if key.endswith(":*"):
        prefix = key[:-1]
        return [name for name in names if name.startswith(prefix)]
    return [key] if key in names else []


def edges(graph: Graph[V], strict: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Each template's dependencies as template names.

    A key naming no template is an UnknownDependency for the templates in ``strict``
    (None: all of them) and skipped for the others (a dependency deleted since).
    """
    names = list(graph)
    checked = set(names if strict is None else strict)
    resolved: dict[str, list[str]] = {}
    for name, depends_on in graph.items():
        targets: list[str] = []
        for key in depends_on:
            found = expand(key, names)
            if not found and name in checked:
                what = "no template in group" if key.endswith(":*") else "no template named"
                shown = printable(key[:-2] if key.endswith(":*") else key)
                raise UnknownDependency(
                    f"{printable(name)} depends on {shown!r}: {what} {shown!r}", field="depends_on"
                )
            targets += [target for target in found if target not in targets]
        resolved[name] = targets
    return resolved


def start_order(graph: Graph[V], strict: Iterable[str] | None = None) -> list[str]:
    """Every template after its dependencies, otherwise in the graph's order.

    Raises UnknownDependency (for the templates in ``strict``, see ``edges``) or
    DependencyCycle (whose message is the loop).
    """
    resolved = edges(graph, strict)
    order: list[str] = []
    done: set[str] = set()
    on_path: dict[str, int] = {}
    for root in resolved:
        if root in done:
            continue
        # Iterative depth-first search: a path of 10,000 templates needs no recursion.
        path: list[str] = [root]
        pending: list[Iterable[str]] = [iter(resolved[root])]
        on_path[root] = 0
        while path:
            following = next(iter(pending[-1]), None)
            if following is None:
                name = path.pop()
                pending.pop()
                del on_path[name]
                done.add(name)
                order.append(name)
                continue
            if following in done:
                continue
            if following in on_path:
                loop = [*path[on_path[following] :], following]
                raise DependencyCycle(
                    " -> ".join(printable(step) for step in loop), field="depends_on"
                )
            on_path[following] = len(path)
            path.append(following)
            pending.append(iter(resolved[following]))
    return order


def check(graph: Graph[V], strict: Iterable[str] | None = None) -> None:
    """UnknownDependency (for ``strict``) or DependencyCycle if the graph cannot be started."""
    start_order(graph, strict)


def dependents(graph: Graph[V], name: str) -> list[str]:
    """The templates that depend on ``name`` directly (unknown keys are ignored)."""
    names = list(graph)
    return [
        other
        for other, depends_on in graph.items()
        if other != name and any(name in expand(key, names) for key in depends_on)
    ]
