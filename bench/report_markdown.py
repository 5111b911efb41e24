"""bench/RESULTS.md's text: the headline, the side-by-side table, the targets, the methods."""

from __future__ import annotations

import statistics
from typing import Any

from report_figures import (
    GAFFER,
    MANAGERS,
    PEERS,
    SHARED,
    Metric,
    advantage,
    gaffer_only,
    num,
    raw_rate,
    spread,
    targets,
    values,
)


def not_applicable(results: dict[str, Any], who: str, what: str) -> str | None:
    """The reason a manager has no figure for `what` (n/a or its error), if it has one."""
    for run in results["runs"]:
        entry = run.get(who, {}).get(what)
        if isinstance(entry, dict) and "na" in entry:
            return "n/a"
    return None


def cell(results: dict[str, Any], who: str, metric: Metric) -> str:
    data = values(results, who, metric.get)
    if data:
        return spread(data)
    return (not_applicable(results, who, metric.what) if metric.what else None) or "-"


def markdown(results: dict[str, Any]) -> str:
    """The whole RESULTS.md."""
    meta = results["meta"]
    plan, box, ver = meta["plan"], meta["machine"], meta["versions"]
    runs = len(results["runs"])
    idle_counts = list(plan["idle_clients"])
    lines = [
        "# Benchmark results: gaffer-gevent, supervisord, circusd",
        "",
        f"- **Date**: {meta['date']}",
        f"- **Command**: `{meta['command']}` (took {meta.get('elapsed_s', 0) / 60:.1f} min)",
        f"- **Machine**: {box['nproc']} CPUs ({box['cpu']}), {box['memory_gib']} GiB memory, "
        f"Linux {box['kernel']}, Python {box['python']}",
        f"- **Versions**: gaffer-gevent {ver.get('gaffer-gevent')} (gevent {ver.get('gevent')}, "
        f"gevent-websocket {ver.get('gevent-websocket')}, Flask {ver.get('Flask')}, psutil "
        f"{ver.get('psutil')}); supervisor {ver.get('supervisor')}; circus {ver.get('circus')} "
        f"(pyzmq {ver.get('pyzmq')}, tornado {ver.get('tornado')})",
        f"- **Load** (1-min load average around each measurement, {box['nproc']} CPUs): "
        f"{load_summary(results)}",
        f"- **Runs**: {runs}; respawn ({plan['kills']} kills each) in {plan['respawn_runs']} of "
        f"them, the {plan['flood_s']:g} s flood in {plan['flood_runs']}; "
        f"{plan['output_s']:g} s per output rate",
        "",
        "Each cell: median of the runs [min-max]. The last two columns say how many times "
        "better gaffer-gevent did than the peer (peer / gaffer-gevent for times and memory, "
        "gaffer-gevent / peer for rates), taken within each run and then summarised: above 1x "
        "gaffer-gevent is better, below 1x it is worse.",
        "",
        "![chart](results.png)",
        "",
        "## Headline",
        "",
        *headline(results),
        "",
        "## Side by side",
        "",
        "| Metric | supervisord | circusd | gaffer-gevent "
        "| gaffer-gevent vs supervisord | gaffer-gevent vs circusd |",
        "|---|---|---|---|---|---|",
    ]
    for metric in SHARED:
        unit = f" ({metric.unit})" if metric.unit else ""
        row = [f"{metric.label}{unit}"]
        row += [cell(results, who, metric) for who in MANAGERS]
        if metric.label.startswith("  "):  # a restatement of the row above: same ratios
            row += ["", ""]
        else:
            row += [spread(advantage(results, metric, peer), "x") for peer in PEERS]
        lines.append("| " + " | ".join(row) + " |")
    raw = [rate / 1e6 for rate in values(results, "raw-pipe", raw_rate)]
    lines += [
        f"| raw pipe read, same runs (MB/s) | {spread(raw)} (physical reference) | | | | |",
        "",
        "## gaffer-gevent against its targets",
        "",
        "| Target (foundation and HTTP API issues) | Measured | Met in |",
        "|---|---|---|",
    ]
    for label, get, target, lower in targets(idle_counts):
        data = values(results, GAFFER, get)
        met = sum(1 for v in data if (v < target if lower else v >= target))
        lines.append(f"| {label} | {spread(data)} | {met}/{len(data)} runs |")
    lines += [
        "",
        "## gaffer-gevent alone: streams",
        "",
        "| Metric | gaffer-gevent |",
        "|---|---|",
    ]
    for metric in gaffer_only(idle_counts):
        unit = f" ({metric.unit})" if metric.unit else ""
        lines.append(f"| {metric.label}{unit} | {cell(results, GAFFER, metric)} |")
    lines += ["", "## How each figure was taken", "", *HOW, ""]
    failures = failures_list(results)
    if failures:
        lines += ["## Failed measurements", "", *failures, ""]
    return "\n".join(lines)


HOW = [
    "- Every daemon is started fresh for each measurement from a config the bench writes to a "
    "temp dir, listening on 127.0.0.1 only, and stopped by pid and process group afterwards.",
    "- **Up / stopped**: the clock starts before the one request (supervisord "
    "`startProcessGroup` over XML-RPC with `numprocs=100`, `startsecs=0`; circus `start` on a "
    "`numprocesses=100` watcher through its own client; gaffer-gevent `POST /processes` with "
    "`numprocesses: 100`) and stops when the daemon's status, polled every 20 ms, reports 100 "
    "running and 100 live OS children exist; stopped = no live child left and the status says so.",
    "- **Respawn**: SIGKILL to the child's OS pid, then the process table is polled every "
    "0.5 ms for a new child of the daemon (not the API: polling supervisord's API wakes its "
    "select loop; with a client polling every 10 ms it respawned in 5-15 ms, idle it takes "
    "its 1 s poll timeout). Between kills a random pause over one period of the manager's tick "
    "(1 s; circus: its 5 s `check_delay`, the ini default) so kills land at random phases. "
    "circus's flapping check is turned off for this watcher (20 kills would trip it), "
    "supervisord runs with `startsecs=0`, and gafferd counts a 50 ms run as healthy "
    "(`backoff = 0.1 60 0.05`; default 10 s), so each kill is a healthy process's respawn, "
    "which is immediate (a crash loop backs off: `bench/crash_loop.py`).",
    "- **RSS**: the daemon process alone (psutil), 1 s after its children are up.",
    "- **Live output**: a child writes a fixed 80-byte line in 64 KiB writes as fast as the pipe "
    "takes it; one HTTP client (raw socket, `recv_into`, chunked framing decoded) counts payload "
    "bytes for the duration. supervisord: `GET /logtail/flood` with `stdout_logfile` set; "
    "gaffer-gevent: `GET /streams/<pid>/stdout?feed=continuous`; circus has no HTTP output "
    "feed. The raw pipe reference reads the same child with `os.read(fd, 65536)` in a loop, "
    "just before and just after gaffer-gevent's feed; the ratio uses the mean of the two.",
    "- **Flood**: the same child for 60 s, daemon RSS sampled each second. supervisord: "
    "`stdout_logfile` with its default 50 MB x 10 rotation and one `/logtail` reader that "
    "connects and never reads; circus: a `FileStream` with the same rotation and no reader "
    "(it has no feed to stall); gaffer-gevent: 10 `feed=continuous` clients that never read "
    "plus one that reads 4 KiB every 100 ms.",
    "- **SSE fan-out**: 100 `feed=eventsource` clients in one gevent client process; the child "
    "prints `<seq> <time.time()>` 1,000 times a second once all are subscribed; delivered = "
    "distinct sequence numbers received / printed; latency = receipt time - print time.",
    "- **Idle clients**: N `feed=eventsource` subscriptions on a silent child, 50 connecting at "
    "a time; RSS per client = RSS growth / N; 200 `GET /ping` 5 ms apart while they are held.",
    "- **Websocket**: `ws://127.0.0.1:PORT/wstreams/<pid>` on a `cat` child with "
    "`redirect_input`; one message, wait for the echo, repeat (websocket-client).",
]


def headline(results: dict[str, Any]) -> list[str]:
    """The few ratios a reader wants first, then, plainly, where gaffer-gevent loses."""
    lines = []
    losses = []
    for metric in SHARED:
        if not metric.summary:
            continue
        mine = values(results, GAFFER, metric.get)
        if not mine:
            continue
        parts = []
        for peer in PEERS:
            theirs = values(results, peer, metric.get)
            ratio = advantage(results, metric, peer)
            if theirs and ratio:
                factor = statistics.median(ratio)
                if factor >= 1:
                    verdict = f"{num(factor)}x better"
                else:
                    verdict = f"{num(1 / factor)}x worse"
                    losses.append(f"{metric.label.strip()} vs {peer}")
                parts.append(f"{peer} {num(statistics.median(theirs))} {metric.unit} ({verdict})")
        if parts:
            lines.append(
                f"- {metric.label.strip()}: gaffer-gevent {num(statistics.median(mine))} "
                f"{metric.unit}; " + ", ".join(parts)
            )
    idle_counts = list(results["meta"]["plan"]["idle_clients"])
    missed = []
    for label, get, target, lower in targets(idle_counts):
        data = values(results, GAFFER, get)
        if data and not (
            statistics.median(data) < target if lower else statistics.median(data) >= target
        ):
            missed.append(f"{label} (measured {num(statistics.median(data))})")
    lines.append("")
    lines.append(
        "**Where gaffer-gevent loses**: "
        + ("; ".join(losses) if losses else "no side-by-side comparison")
        + ". **Targets missed** (median of the runs): "
        + ("; ".join(missed) if missed else "none")
        + "."
    )
    return lines


def load_summary(results: dict[str, Any]) -> str:
    """Median and max load average seen around the measurements: how quiet the machine was."""
    loads = [
        value
        for run in results["runs"]
        for entries in run.values()
        for entry in entries.values()
        if isinstance(entry, dict)
        for value in entry.get("load_1m", [])
    ]
    if not loads:
        return "not recorded"
    return f"median {statistics.median(loads):.2f}, max {max(loads):.2f}"


def failures_list(results: dict[str, Any]) -> list[str]:
    """One bullet per failed measurement."""
    out = []
    for index, run in enumerate(results["runs"], 1):
        for who, entries in run.items():
            for what, entry in entries.items():
                if isinstance(entry, dict) and "error" in entry:
                    out.append(f"- run {index}, {who} {what}: `{entry['error']}`")
    return out
