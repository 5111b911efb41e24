"""The figures of the bench report: which value each row reads from results.json, and how.

Every figure is the median of the runs with the min-max range; every ratio is taken within
one run first (gaffer-gevent's figure divided by the peer's, measured seconds apart) and only
then summarised the same way. ``report_markdown`` and ``report_chart`` show the same rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PEERS = ("supervisord", "circusd")
GAFFER = "gaffer-gevent"
MANAGERS = (*PEERS, GAFFER)

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
