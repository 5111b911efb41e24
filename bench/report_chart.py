"""bench/results.png: one small bar chart per metric, the managers side by side.

Needs matplotlib, which lives in the bench venv (``.venv-bench``), imported only when drawn.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from report_figures import GAFFER, MANAGERS, SHARED, field, num, raw_rate, values

COLORS = {"supervisord": "#6c7a89", "circusd": "#e08a2c", GAFFER: "#2e8b57", "raw pipe": "#b0b0b0"}


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
