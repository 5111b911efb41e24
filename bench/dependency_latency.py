"""Dependency latency (issue 15): from a dependency's ``ready`` to its dependent's exec.

    .venv/bin/python bench/dependency_latency.py [--rounds 200] [--write]

A manager in this process (gevent, as in gafferd) runs ``db`` and ``web`` with
``depends_on = {"db": "ready"}``. db has a real readiness check (a log line it
prints once this round's gate file exists); each round creates the gate and times
the gap from ``proc.db.ready`` on the bus to the moment ``web``'s ``fork_exec``
has returned (web's spawn hook: the child exists and has exec'd or is about to).
Both templates are then stopped and started again for the next round. Target:
under 20 ms.

``--write`` puts the figures in their own section of bench/RESULTS.md (between
markers, so a rerun replaces them).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from common import write_section  # noqa: E402
from gevent.event import Event  # noqa: E402

from gaffer_gevent.manager import Manager  # noqa: E402
from gaffer_gevent.process import Process  # noqa: E402
from gaffer_gevent.template import ProcessTemplate  # noqa: E402

BEGIN, END = "<!-- dependency_latency: begin -->", "<!-- dependency_latency: end -->"
SLEEP = ["3600.5"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(rounds: int, gate_dir: Path) -> list[float]:
    manager = Manager()
    marks: dict[str, float] = {}
    web_spawned = Event()

    def hook(process: Process) -> None:
        if process.name == "web":
            marks["exec"] = time.perf_counter()
            web_spawned.set()

    publish = manager.publish_twin

    def publish_twin(event: str, name: str, **fields: Any) -> None:
        """The moment db's check publishes ``ready`` (the bus delivers it a moment later)."""
        if (event, name) == ("ready", "db"):
            marks["ready"] = time.perf_counter()
        publish(event, name, **fields)

    manager.spawn_hooks.append(hook)
    manager.publish_twin = publish_twin  # type: ignore[method-assign]
    gate = gate_dir / "gate"
    wait_then_ready = f"while [ ! -e {gate} ]; do sleep 0.005; done; echo ready; exec sleep 3600"
    readiness = {"log": "ready", "label": "stdout"}
    db = {"name": "db", "cmd": "sh", "args": ["-c", wait_then_ready],
          "redirect_output": ["stdout"], "readiness": readiness}  # fmt: skip
    manager.add_template(ProcessTemplate.from_json(db))
    web = {"name": "web", "cmd": "sleep", "args": SLEEP, "depends_on": {"db": "ready"}}
    manager.add_template(ProcessTemplate.from_json(web))
    gaps: list[float] = []
    try:
        for _ in range(rounds):
            gevent.sleep(0.02)  # let the last round's events settle: web is waiting
            assert not manager.pids("web"), "web started before db was ready"
            web_spawned.clear()
            gate.touch()
            if not web_spawned.wait(5):
                raise RuntimeError("web never started")
            gaps.append(marks["exec"] - marks["ready"])
            gate.unlink()
            manager.stop_template("web")
            manager.stop_template("db")
            gevent.sleep(0.05)
            manager.start_template("db")
            manager.start_template("web")
    finally:
        manager.stop_all(timeout=10)
        manager.bus.close()
    return gaps


def report(gaps: list[float]) -> str:
    ms = [gap * 1000 for gap in gaps]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join(
        [
            BEGIN,
            "## Dependency latency: a dependency's `ready` to its dependent's exec",
            "",
            f"`.venv/bin/python bench/dependency_latency.py --rounds {len(gaps)} --write`, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs "
            f"(load {load}), Python {platform.python_version()}. From `proc.db.ready` published "
            'to `web`\'s fork_exec returned (`depends_on = {"db": "ready"}`), in-process '
            "manager; the bus wakes the dependency gate, nothing polls. Target: under 20 ms.",
            "",
            "| rounds | p50 | p95 | max |",
            "|---|---|---|---|",
            f"| {len(ms)} | {percentile(ms, 0.5):.2f} ms | {percentile(ms, 0.95):.2f} ms "
            f"| {max(ms):.2f} ms |",
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as gate_dir:
        section = report(measure(args.rounds, Path(gate_dir)))
    print(section)
    if args.write:
        write_section(section, BEGIN, END)


if __name__ == "__main__":
    main()
