"""The manager as Prometheus metrics: a custom collector read at scrape time, nothing in between.

``ManagerCollector`` is built for one scrape (who may see which template,
whether per-pid series are wanted) and reads the manager, the
``TemplateCounters`` and psutil when ``collect`` runs: no background thread,
no cache, nothing kept after the scrape. Labels are template names, stream
labels and fixed words only, so the number of series follows the templates,
never the pids spawned (per-pid series exist only with ``per_pid``).
Process trees are read by ``stats.tree_usage``: one parent scan, then one
``oneshot`` read per process (100 pids each with a child: a few ms).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from .counters import EXIT_OUTCOMES, RESTART_REASONS, TemplateCounters
from .manager import Manager
from .process import Process, ProcessState
from .stats import tree_usage


class ManagerCollector:
    """One scrape's view of the manager: templates, their pids' trees, their streams."""

    def __init__(
        self,
        manager: Manager,
        counters: TemplateCounters,
        *,
        visible: Callable[[str], bool] = lambda name: True,
        per_pid: bool = False,
    ) -> None:
        self.manager = manager
        self.counters = counters
        self.visible = visible
        self.per_pid = per_pid

    def collect(self) -> Iterator[Metric]:
        names = [name for name in self.manager.template_names() if self.visible(name)]
        pids = self._pids(names)
        yield self._states(names, pids)
        yield from self._tallies(names)
        yield from self._usage(names, pids)
        yield from self._streams(names)

    def _pids(self, names: list[str]) -> dict[str, list[Process]]:
        """Each template's pids: running, then those asked to stop that have not exited."""
        pids: dict[str, list[Process]] = {name: list(self.manager.states[name].queue)
                                          for name in names}  # fmt: skip
        for process in self.manager.stopping.values():
            if process.name in pids:
                pids[process.name].append(process)
        return pids

    def _states(self, names: list[str], pids: dict[str, list[Process]]) -> Metric:
        family = GaugeMetricFamily(
            "gaffer_processes", "Pids of a template in each state", labels=["template", "state"]
        )
        for name in names:
            count = {state: 0 for state in ProcessState}
            for process in pids[name]:
                count[process.state] += 1
            for state, value in count.items():
                family.add_metric([name, state.value], value)
        return family

    def _tallies(self, names: list[str]) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "gaffer_process_restarts", "Pids respawned, by reason (exit, flapping, api)",
            labels=["template", "reason"],
        )  # fmt: skip
        exits = CounterMetricFamily(
            "gaffer_process_exits", "Pids exited, by outcome (success, failure, signal)",
            labels=["template", "outcome"],
        )  # fmt: skip
        for name in names:
            tally = self.counters.tally(name)
            for reason in RESTART_REASONS:
                restarts.add_metric([name, reason], tally.restarts[reason])
            for outcome in EXIT_OUTCOMES:
                exits.add_metric([name, outcome], tally.exits[outcome])
        yield restarts
        yield exits

    def _usage(self, names: list[str], pids: dict[str, list[Process]]) -> Iterator[Metric]:
        """Each template's trees; CPU also counts pids gone since (a counter never goes down)."""
        roots = [p.os_pid for name in names for p in pids[name] if p.os_pid and p.alive]
        usage = tree_usage(roots)
        cpu = CounterMetricFamily(
            "gaffer_process_cpu_seconds",
            "CPU seconds of the template's pids and all their descendants", labels=["template"],
        )  # fmt: skip
        rss = GaugeMetricFamily(
            "gaffer_process_resident_memory_bytes",
            "Resident memory of the template's pids and all their descendants",
            labels=["template"],
        )
        fds = GaugeMetricFamily(
            "gaffer_process_open_fds",
            "Open descriptors of the template's pids and all their descendants",
            labels=["template"],
        )
        pid_families = _pid_families() if self.per_pid else None
        counted = _by_template(self.counters.live.values())
        for name in names:
            seconds = self.counters.tally(name).retired_cpu
            for process in counted[name]:  # until its exit is counted, whether it runs or not
                tree = usage.get(process.os_pid)
                seconds += self.counters.cpu_of(
                    process.pid, None if tree is None else tree.cpu_seconds
                )
            rss_bytes = open_fds = 0
            for process in pids[name]:
                tree = usage.get(process.os_pid)
                if tree is None:
                    continue
                rss_bytes += tree.rss_bytes
                open_fds += tree.open_fds
                if pid_families is not None:
                    labels = [name, str(process.pid)]
                    pid_families[0].add_metric(labels, self.counters.cpu_of(process.pid, None))
                    pid_families[1].add_metric(labels, tree.rss_bytes)
                    pid_families[2].add_metric(labels, tree.open_fds)
            cpu.add_metric([name], seconds)
            rss.add_metric([name], rss_bytes)
            fds.add_metric([name], open_fds)
        yield from (cpu, rss, fds)
        if pid_families is not None:
            yield from pid_families

    def _streams(self, names: list[str]) -> Iterator[Metric]:
        carried = CounterMetricFamily(
            "gaffer_stream_bytes", "Bytes read from the template's output pipes",
            labels=["template", "label"],
        )  # fmt: skip
        dropped = CounterMetricFamily(
            "gaffer_stream_dropped_bytes",
            "Bytes consumers of the template's streams lost by falling behind",
            labels=["template", "label"],
        )
        subscribers = GaugeMetricFamily(
            "gaffer_stream_subscribers", "Open subscriptions (feeds, log files) to the streams",
            labels=["template", "label"],
        )  # fmt: skip
        live = _by_template(self.counters.live.values())
        for name in names:
            tally = self.counters.tally(name)
            labels = dict.fromkeys(self.manager.states[name].template.labels)
            labels.update(dict.fromkeys(tally.retired_bytes))
            for label in labels:
                streams = [p.streams[label] for p in live[name] if label in p.streams]
                carried.add_metric(
                    [name, label], tally.retired_bytes[label] + sum(s.total_bytes for s in streams)
                )
                dropped.add_metric(
                    [name, label],
                    tally.retired_dropped[label] + sum(s.dropped_bytes_total for s in streams),
                )
                subscribers.add_metric([name, label], sum(len(s.subscriptions) for s in streams))
        yield from (carried, dropped, subscribers)


def _by_template(processes: Iterable[Process]) -> defaultdict[str, list[Process]]:
    grouped: defaultdict[str, list[Process]] = defaultdict(list)
    for process in list(processes):
        grouped[process.name].append(process)
    return grouped


def _pid_families() -> tuple[CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    """The per-pid series ``?per_pid=1`` asks for (for debugging: one series per pid)."""
    return (
        CounterMetricFamily("gaffer_pid_cpu_seconds", "CPU seconds of one pid's process tree",
                            labels=["template", "pid"]),
        GaugeMetricFamily("gaffer_pid_resident_memory_bytes",
                          "Resident memory of one pid's process tree", labels=["template", "pid"]),
        GaugeMetricFamily("gaffer_pid_open_fds", "Open descriptors of one pid's process tree",
                          labels=["template", "pid"]),
    )  # fmt: skip
