"""bench/out/results.json -> bench/RESULTS.md (tables) and bench/results.png (one chart).

Runs in the bench venv (matplotlib lives there). Every figure is the median of the runs with
the min-max range; every ratio is taken within one run first (gaffer-gevent's figure divided
by the peer's, measured seconds apart) and only then summarised the same way.

    .venv-bench/bin/python bench/report.py bench/out/results.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PEERS = ("supervisord", "circusd")
GAFFER = "gaffer-gevent"
MANAGERS = (*PEERS, GAFFER)
COLORS = {"supervisord": "#6c7a89", "circusd": "#e08a2c", GAFFER: "#2e8b57", "raw pipe": "#b0b0b0"}

Getter = Callable[[dict[str, Any], str], float | None]


def field(what: str, key: str, scale: float = 1.0) -> Getter:
    """Read run[who][what][key] (scaled), or None when missing, failed or not applicable."""

    def get(run: dict[str, Any], who: str) -> float | None:
        entry = run.get(who, {}).get(what)
        if not isinstance(entry, dict) or key not in entry:
            return None
        value = entry[key]
        return float(value) * scale if isinstance(value, int | float) else None

    return get


def raw_rate(run: dict[str, Any], who: str = "raw-pipe") -> float | None:
    """The raw pipe read of a run: the mean of the reads just before and after the feed."""
    rates = [field(what, "bytes_per_s")(run, who) for what in ("output", "output_after")]
    found = [rate for rate in rates if rate]
    return statistics.mean(found) if found else None


def share_of_raw(run: dict[str, Any], who: str) -> float | None:
    """Output rate over HTTP as a percentage of the raw pipe read in the same run."""
    rate = field("output", "bytes_per_s")(run, who)
    raw = raw_rate(run)
    return None if rate is None or not raw else 100.0 * rate / raw


def flood_growth(run: dict[str, Any], who: str) -> float | None:
    """RSS growth during the flood (max - start): the baselines of the daemons differ."""
    start, peak = field("flood", "start_mb")(run, who), field("flood", "max_mb")(run, who)
    return None if start is None or peak is None else peak - start


@dataclass(frozen=True)
class Metric:
    """One row of the side-by-side table and one panel of the chart."""

    label: str
    unit: str
    get: Getter
    lower_is_better: bool = True
    what: str = ""  # the measurement a manager may have marked "n/a"
    summary: bool = True  # a panel in the chart and a line in the headline


SHARED = (
    Metric("100 processes up (one request)", "s", field("spawn", "up_s")),
    Metric("100 processes stopped", "s", field("spawn", "down_s")),
    Metric("respawn after SIGKILL, median", "ms", field("respawn", "p50_ms")),
    Metric("respawn after SIGKILL, p95", "ms", field("respawn", "p95_ms")),
    Metric("daemon RSS, 1 child", "MiB", field("respawn", "rss_1_mb")),
    Metric("daemon RSS, 100 children", "MiB", field("spawn", "rss_100_mb")),
    Metric("live output over HTTP", "MB/s", field("output", "bytes_per_s", 1e-6), False, "output"),
    Metric("  same, % of raw pipe read", "%", share_of_raw, False, "output", summary=False),
    Metric("flood + stalled reader: RSS start", "MiB", field("flood", "start_mb"), summary=False),
    Metric("flood + stalled reader: RSS max", "MiB", field("flood", "max_mb")),
    Metric("flood + stalled reader: RSS end", "MiB", field("flood", "end_mb"), summary=False),
    Metric("flood + stalled reader: RSS growth", "MiB", flood_growth),
)


def gaffer_only(idle_counts: list[int]) -> list[Metric]:
    """Rows of the gaffer-gevent-only table (the idle-client counts come from the plan)."""
    rows = [
        Metric("SSE fan-out 100 x 1,000 lines/s: delivered", "%", field("fanout", "delivered_pct")),
        Metric("SSE fan-out: latency p50", "ms", field("fanout", "p50_ms")),
        Metric("SSE fan-out: latency p99", "ms", field("fanout", "p99_ms")),
    ]
    for count in idle_counts:
        what = f"idle_{count}"
        rows += [
            Metric(f"{count:,} idle SSE clients: connected", "", field(what, "connected")),
            Metric(
                f"{count:,} idle SSE clients: RSS per client", "KiB", field(what, "kib_per_client")
            ),
            Metric(f"{count:,} idle SSE clients: /ping p50", "ms", field(what, "ping_p50_ms")),
            Metric(f"{count:,} idle SSE clients: /ping p99", "ms", field(what, "ping_p99_ms")),
        ]
    rows += [
        Metric("websocket stdin->stdout round trip p50", "ms", field("websocket", "p50_ms")),
        Metric("websocket stdin->stdout round trip p99", "ms", field("websocket", "p99_ms")),
    ]
    return rows


def targets(idle_counts: list[int]) -> list[tuple[str, Getter, float, bool]]:
    """(label, getter, target, lower is better), from the foundation and HTTP API issues."""
    most = max(idle_counts)
    return [
        ("100 processes up < 0.5 s", field("spawn", "up_s"), 0.5, True),
        ("100 processes stopped < 0.2 s", field("spawn", "down_s"), 0.2, True),
        ("respawn median < 10 ms", field("respawn", "p50_ms"), 10.0, True),
        ("RSS with 100 children < 40 MB", field("spawn", "rss_100_mb", 1.048576), 40.0, True),
        ("continuous feed >= 60 % of raw pipe", share_of_raw, 60.0, False),
        ("fan-out p99 < 20 ms", field("fanout", "p99_ms"), 20.0, True),
        ("fan-out delivered = 100 %", field("fanout", "delivered_pct"), 100.0, False),
        (
            f"{most:,} idle clients (target: 5,000): /ping p99 < 10 ms",
            field(f"idle_{most}", "ping_p99_ms"),
            10.0,
            True,
        ),
        ("websocket round trip p99 < 2 ms", field("websocket", "p99_ms"), 2.0, True),
    ]


def values(results: dict[str, Any], who: str, get: Getter) -> list[float]:
    """The metric's value in every run where it was measured."""
    found = [get(run, who) for run in results["runs"]]
    return [v for v in found if v is not None]


def advantage(results: dict[str, Any], metric: Metric, peer: str) -> list[float]:
    """How many times better gaffer-gevent did than `peer`, per run where both were measured.

    peer / gaffer for times and memory, gaffer / peer for rates: above 1 gaffer-gevent is
    better, below 1 it is worse. Taken within each run, before any summary.
    """
    out = []
    for run in results["runs"]:
        mine, theirs = metric.get(run, GAFFER), metric.get(run, peer)
        if mine and theirs:
            out.append(theirs / mine if metric.lower_is_better else mine / theirs)
    return out


def num(value: float) -> str:
    """A figure with as many digits as it deserves."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def spread(data: list[float], suffix: str = "") -> str:
    """`median [min-max]`, or the single value when there was one run."""
    if not data:
        return "-"
    median = statistics.median(data)
    if len(data) == 1 or min(data) == max(data):
        return f"{num(median)}{suffix}"
    return f"{num(median)}{suffix} [{num(min(data))}-{num(max(data))}]"


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


def chart(results: dict[str, Any], path: Path) -> None:
    """A grid of small bar charts, one per metric, the managers side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, list[tuple[str, list[float]]], float | None]] = []
    idle = tuple(f"idle_{count}" for count in results["meta"]["plan"]["idle_clients"])
    for metric in SHARED:
        if not metric.summary:
            continue
        bars = [(who, values(results, who, metric.get)) for who in MANAGERS]
        if metric.label == "live output over HTTP":
            raw = [rate / 1e6 for rate in values(results, "raw-pipe", raw_rate)]
            bars.append(("raw pipe", raw))
        title = f"{metric.label} ({metric.unit})"
        title += ", lower is better" if metric.lower_is_better else ", higher is better"
        panels.append((title, bars, None))
    for title, what, keys, target in (
        ("SSE fan-out latency (ms), 100 clients", "fanout", ("p50_ms", "p99_ms"), 20.0),
        ("idle SSE clients: RSS per client (KiB)", "", idle, None),
        ("idle SSE clients: /ping p99 (ms)", "", idle, 10.0),
        ("websocket round trip (ms)", "websocket", ("p50_ms", "p99_ms"), 2.0),
    ):
        bars = []
        for key in keys:
            if what:
                bars.append((key.replace("_ms", ""), values(results, GAFFER, field(what, key))))
            else:
                sub = "kib_per_client" if "RSS" in title else "ping_p99_ms"
                bars.append(
                    (
                        key.replace("idle_", "") + " clients",
                        values(results, GAFFER, field(key, sub)),
                    )
                )
        panels.append((f"gaffer-gevent: {title}", bars, target))

    columns = 5
    rows = (len(panels) + 1 + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.7 * columns, 3.4 * rows))
    flat = list(axes.flat)
    for ax, (title, bars, target) in zip(flat, panels, strict=False):
        draw_bars(ax, title, bars, target)
    flood_panel(flat[len(panels)], results)
    for ax in flat[len(panels) + 1 :]:
        ax.axis("off")
    meta = results["meta"]
    fig.suptitle(
        f"gaffer-gevent vs supervisord vs circusd - {meta['machine']['nproc']} CPUs, "
        f"{meta['date']}; bars: median of {len(results['runs'])} runs, whiskers: min-max",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_bars(
    ax: Any, title: str, bars: list[tuple[str, list[float]]], target: float | None
) -> None:
    """One panel: bars at the median with min-max whiskers, log scale if values span decades."""
    names = [name for name, _ in bars]
    medians = [statistics.median(data) if data else 0.0 for _, data in bars]
    low = [m - min(data) if data else 0.0 for m, (_, data) in zip(medians, bars, strict=True)]
    high = [max(data) - m if data else 0.0 for m, (_, data) in zip(medians, bars, strict=True)]
    colors = [COLORS.get(name, "#2e8b57") for name in names]
    positions = range(len(bars))
    ax.bar(positions, medians, color=colors, yerr=[low, high], capsize=3, width=0.65)
    positive = [m for m in medians if m > 0]
    if len(positive) >= 2 and max(positive) / min(positive) > 30:
        ax.set_yscale("log")
    for x, (median, (_, data)) in zip(positions, zip(medians, bars, strict=True), strict=True):
        if data:
            ax.annotate(  # above the whisker, so the two never overlap
                num(median),
                (x, max(data)),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=8,
            )
        else:  # placed in axes coordinates: a log axis has no 0 to put it at
            ax.text(x, 0.02, "n/a", transform=ax.get_xaxis_transform(), ha="center", fontsize=8)
    if target is not None:
        ax.axhline(target, color="#c0392b", linestyle="--", linewidth=1)
        ax.annotate(
            "target",
            (len(bars) - 0.5, target),
            fontsize=7,
            color="#c0392b",
            va="bottom",
            ha="right",
        )
    ax.set_xticks(list(positions), names, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.margins(y=0.15)


def flood_panel(ax: Any, results: dict[str, Any]) -> None:
    """Daemon RSS over the 60 s flood, first run that has it, one line per manager."""
    for who in MANAGERS:
        for run in results["runs"]:
            entry = run.get(who, {}).get("flood")
            if isinstance(entry, dict) and "rss_series_mb" in entry:
                ax.plot(entry["rss_series_mb"], label=who, color=COLORS[who])
                break
    ax.set_title("daemon RSS during flood + stalled readers (MiB)", fontsize=9)
    ax.set_xlabel("seconds", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)


README_START = "<!-- headline:start (written by report.py) -->"
README_END = "<!-- headline:end -->"


def update_readme(readme: Path, results: dict[str, Any]) -> None:
    """Replace the headline block of bench/README.md with this run's, if the markers exist."""
    if not readme.exists():
        return
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return
    meta = results["meta"]
    block = [
        README_START,
        f"Last run: {meta['date']}, `{meta['command']}`, {meta['machine']['nproc']} CPUs "
        f"({meta['machine']['cpu']}); medians of {len(results['runs'])} runs, full tables in "
        "[RESULTS.md](RESULTS.md).",
        "",
        "![chart](results.png)",
        "",
        *headline(results),
        "",
    ]
    readme.write_text(text[:start] + "\n".join(block) + text[end:])


# A section another script writes into RESULTS.md between its markers (auth_overhead.py's,
# flood_rss.py --record's, spawn_storm.py's...), kept when this report rewrites the file.
OTHER_SECTION = re.compile(
    r"<!-- ([a-z_ -]+?):? ?(?:start|begin)[^>]*-->\n.*?<!-- \1:? ?end -->\n", re.S
)


def kept_sections(path: Path) -> str:
    """The sections of an existing RESULTS.md that other scripts wrote, to append again."""
    if not path.exists():
        return ""
    return "".join("\n" + match.group(0) for match in OTHER_SECTION.finditer(path.read_text()))


def main() -> None:
    """Read results.json, write RESULTS.md and results.png next to this file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--out-dir", type=Path, default=BENCH)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    target = args.out_dir / "RESULTS.md"
    target.write_text(markdown(results) + kept_sections(target))
    update_readme(args.out_dir / "README.md", results)
    chart(results, args.out_dir / "results.png")
    print(f"[bench] wrote {args.out_dir / 'RESULTS.md'} and {args.out_dir / 'results.png'}")


if __name__ == "__main__":
    main()
