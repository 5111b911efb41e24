"""What authentication costs a request: gafferd with and without tokens, in one run.

Each round starts three gafferd on 127.0.0.1: `off` (no `[token:NAME]`), `cors` (no token but
`cors_origins = *`, the CORS answer that auth on implies by default: four more response headers)
and `on` (a read token for the measurements and an admin token that creates the fan-out's
ticker). Then:

- the SSE fan-out of `make bench` (100 eventsource clients, a child printing 1,000 timestamped
  lines/s for 10 s) on `off` and `on`, in the order off, on in even rounds and on, off in odd ones;
  with auth on every subscription sends `Authorization: Bearer <read token>`;
- `GET /ping` (public: the guard answers before looking at tokens) and `GET /processes` (read
  role: the token is checked) on one keep-alive connection per daemon, N of each, in blocks of
  100 that take turns between the three daemons, so machine drift hits each alike. With auth
  on they carry the read token, as any client would.

Then `guard_micro.py` (in process, no sockets) times `Credentials.authenticate` with 1 and
1,000 tokens and a whole request through the Flask app with and without tokens.

    .venv/bin/python bench/auth_overhead.py [--rounds 4] [--requests 2000] [--write-results]

Prints the JSON summary (also written to `bench/out/auth_overhead.json`), then the markdown
section; `--write-results` also puts the section in `bench/RESULTS.md` between the
`auth-overhead` markers (report.py keeps it there). About 3 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from common import RESULTS, launch, percentile, stop_tree, workdir, write_section
from gaffer import Gafferd
from gaffer_streams import PROJECT_PYTHON, fanout_on

from gaffer_gevent.auth import hash_token, mint_token  # pure: minting needs no gevent

BENCH = Path(__file__).resolve().parent
MICRO = BENCH / "guard_micro.py"
RAW = BENCH / "out" / "auth_overhead.json"  # not committed, like run_all's results.json
START = "<!-- auth-overhead:start (written by auth_overhead.py) -->"
END = "<!-- auth-overhead:end -->"
BLOCK = 100  # requests to one daemon before switching to the other
MODES = ("off", "on")  # the fan-out's set-ups
# The request loops add `cors`: no tokens, but `cors_origins = *`, the CORS answer auth on
# implies by default, so that on - cors is what the token itself costs over HTTP.
REQUEST_MODES = ("off", "cors", "on")


@contextmanager
def daemons() -> Iterator[dict[str, tuple[Gafferd, dict[str, str]]]]:
    """The gafferd of a round (`REQUEST_MODES`), each with the headers its requests carry."""
    read, admin = mint_token(), mint_token()
    ini = (
        "[gaffer]\n\n"
        f"[token:bench-read]\nrole = read\nhash = {hash_token(read)}\n\n"
        f"[token:bench-admin]\nrole = admin\nhash = {hash_token(admin)}\n"
    )
    with ExitStack() as stack:
        off = stack.enter_context(Gafferd(stack.enter_context(workdir("auth-off"))))
        cors = stack.enter_context(
            Gafferd(stack.enter_context(workdir("auth-cors")), ini="[gaffer]\ncors_origins = *\n")
        )
        on = stack.enter_context(
            Gafferd(
                stack.enter_context(workdir("auth-on")),
                ini=ini,
                headers={"Authorization": f"Bearer {admin}"},
            )
        )
        # The guard must really be on: no token is refused, the read token is not.
        on.call("GET", "/processes", expect=401, headers={})
        on.call("GET", "/processes", headers={"Authorization": f"Bearer {read}"})
        yield {
            "off": (off, {}),
            "cors": (cors, {}),
            "on": (on, {"Authorization": f"Bearer {read}"}),
        }


def latencies(
    pair: dict[str, tuple[Gafferd, dict[str, str]]], path: str, count: int
) -> dict[str, list[float]]:
    """Milliseconds per `GET path`, `count` per daemon, in blocks of `BLOCK` taking turns."""
    samples: dict[str, list[float]] = {mode: [] for mode in REQUEST_MODES}
    for mode in REQUEST_MODES:  # warm-up: connection, Flask's first request
        daemon, headers = pair[mode]
        for _ in range(BLOCK):
            daemon.call("GET", path, headers=headers)
    for block in range(max(1, count // BLOCK)):
        turn = block % len(REQUEST_MODES)  # rotate who goes first
        for mode in REQUEST_MODES[turn:] + REQUEST_MODES[:turn]:
            daemon, headers = pair[mode]
            for _ in range(BLOCK):
                start = time.perf_counter()
                daemon.call("GET", path, headers=headers)
                samples[mode].append((time.perf_counter() - start) * 1000)
    return samples


def one_round(index: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fan-out on each daemon, then `/ping` and `/processes`; p50/p99 per mode."""
    result: dict[str, Any] = {"load_start": os.getloadavg()[0]}
    with daemons() as pair:
        fanout: dict[str, Any] = {}
        for mode in MODES if index % 2 == 0 else MODES[::-1]:
            daemon, headers = pair[mode]
            lines = [f"{name}: {value}" for name, value in headers.items()]
            fanout[mode] = fanout_on(daemon, args.clients, args.rate, args.seconds, lines)
        result["fanout"] = fanout
        for path in ("/ping", "/processes"):
            samples = latencies(pair, path, args.requests)
            result[path] = {
                mode: {
                    "p50_ms": percentile(values, 50),
                    "p99_ms": percentile(values, 99),
                    "n": len(values),
                }
                for mode, values in samples.items()
            }
    result["load_end"] = os.getloadavg()[0]
    return result


def micro(args: argparse.Namespace) -> dict[str, Any]:
    """`guard_micro.py`'s figures (a gevent-patched subprocess, stopped by pid)."""
    proc = launch(
        [str(PROJECT_PYTHON), str(MICRO), f"--batches={args.micro_batches}"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        out, _ = proc.communicate(timeout=180)
    finally:
        stop_tree(proc, grace=2.0)
    if proc.returncode != 0:
        raise RuntimeError(f"guard_micro.py failed with exit status {proc.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure and mode: median [min-max] over the rounds; the differences (on - off, and
    on - cors for requests) are taken within each round."""
    figures = {
        "`GET /ping` p50 (µs)": ("/ping", "p50_ms", 1000.0),
        "`GET /ping` p99 (µs)": ("/ping", "p99_ms", 1000.0),
        "`GET /processes` p50 (µs)": ("/processes", "p50_ms", 1000.0),
        "`GET /processes` p99 (µs)": ("/processes", "p99_ms", 1000.0),
        "fan-out delivered (%)": ("fanout", "delivered_pct", 1.0),
        "fan-out latency p50 (ms)": ("fanout", "p50_ms", 1.0),
        "fan-out latency p99 (ms)": ("fanout", "p99_ms", 1.0),
    }
    summary: dict[str, Any] = {}
    for label, (what, key, scale) in figures.items():
        modes = MODES if what == "fanout" else REQUEST_MODES
        per_mode = {mode: [float(r[what][mode][key]) * scale for r in rounds] for mode in modes}
        summary[label] = {mode: spread(values) for mode, values in per_mode.items()}
        for base in ("off", "cors"):
            if base in per_mode:
                deltas = [a - b for a, b in zip(per_mode["on"], per_mode[base], strict=True)]
                summary[label][f"on_minus_{base}"] = spread(deltas)
    return summary


def num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def cell(figure: dict[str, float], signed: bool = False) -> str:
    text = num(figure["median"])
    if signed and figure["median"] > 0:
        text = "+" + text
    if figure["min"] == figure["max"]:
        return text
    return f"{text} [{num(figure['min'])} to {num(figure['max'])}]"


def markdown(result: dict[str, Any]) -> str:
    """The "Authentication overhead" section of RESULTS.md."""
    meta = result["meta"]
    summary = result["summary"]
    lines = [
        START,
        "## Authentication overhead",
        "",
        f"- **Date**: {meta['date']}",
        f"- **Command**: `{meta['command']}` (took {meta['seconds'] / 60:.1f} min)",
        f"- **Machine**: {meta['cpus']} CPUs, Linux {meta['kernel']}, Python {meta['python']}",
        f"- **Load** (1-min load average): {meta['load_start']:.2f} at start, "
        f"{meta['load_end']:.2f} at the end, {meta['load_max']:.2f} at most at a round's edge. "
        "The 2 cores are shared with other work, so absolute figures move from run to run; "
        "the set-ups are measured side by side (blocks and orders taking turns) so that the "
        "differences are the figures to read.",
        "",
        f"gafferd on 127.0.0.1 in each of {meta['rounds']} rounds: **off** without tokens, "
        "**on** with a `[token:NAME]` read token that every measured request carries as "
        "`Authorization: Bearer`. `/ping` is public (the guard answers it before looking at "
        "tokens), so it shows what auth on costs a request that is not checked; `/processes` "
        f"needs the read role, so the token is checked on every call. {meta['requests']:,} "
        f"sequential keep-alive requests of each per daemon and round, in blocks of {BLOCK} "
        "taking turns; a third gafferd without tokens but with `cors_origins = *` takes part "
        "in them, because auth on makes CORS default to `*`, which adds four response headers "
        "to every answer: on - (off + cors) is what the token adds (its request header and "
        f"its check). Fan-out: {meta['clients']} `feed=eventsource` "
        f"clients, {meta['rate']:,.0f} lines/s for {meta['fanout_s']:g} s, as in `make bench`. "
        "Each cell: median of the rounds [min to max]; differences are taken within each "
        "round.",
        "",
        "| Figure | auth off | off + `cors_origins = *` | auth on | on - off | on - (off + cors) |",
        "|---|---|---|---|---|---|",
    ]
    for label, figure in summary.items():
        cors = cell(figure["cors"]) if "cors" in figure else "-"
        token = cell(figure["on_minus_cors"], signed=True) if "cors" in figure else "-"
        lines.append(
            f"| {label} | {cell(figure['off'])} | {cors} | {cell(figure['on'])} "
            f"| {cell(figure['on_minus_off'], signed=True)} | {token} |"
        )
    micro_result = result["micro"]
    lines += [
        "",
        "In process (`guard_micro.py`, no sockets), CPU microseconds (`time.process_time`, so "
        "time the scheduler gives to other work does not count):",
        "",
        "| `Credentials.authenticate` | known token | unknown token |",
        "|---|---|---|",
    ]
    for entry in micro_result["lookup"]:
        lines.append(
            f"| {entry['tokens']:,} token{'s' if entry['tokens'] > 1 else ''} configured "
            f"| {entry['known']['median_us']:.2f} | {entry['unknown']['median_us']:.2f} |"
        )
    lines.append(
        f"| without tokens: the loopback check the guard makes instead "
        f"| {micro_result['loopback_check']['median_us']:.2f} | |"
    )
    request = micro_result["request"]
    lines += [
        "",
        "| Whole request, Flask test client | off | off + `cors_origins = *` | on "
        "| on - off | on - (off + cors) |",
        "|---|---|---|---|---|---|",
    ]
    for path, entry in request.items():
        lines.append(
            f"| `GET {path}` | {entry['off_best_us']:.1f} ({entry['off_median_us']:.1f}) "
            f"| {entry['cors_best_us']:.1f} ({entry['cors_median_us']:.1f}) "
            f"| {entry['on_best_us']:.1f} ({entry['on_median_us']:.1f}) "
            f"| {entry['on_minus_off_best_us']:+.1f} "
            f"({entry['on_minus_off_paired_median_us']:+.1f}) "
            f"| {entry['on_minus_cors_best_us']:+.1f} "
            f"({entry['on_minus_cors_paired_median_us']:+.1f}) |"
        )
    lines += [
        "",
        "Lookup: timeit, median of 7 runs of 100,000 calls (SHA-256 of the token, then a dict "
        "lookup: the same cost with 1 or 1,000 tokens). Without tokens the guard instead "
        "checks that the client is on loopback (`ipaddress`), so on - off can come out "
        "negative. Whole request: mean per request of "
        f"{request['/ping']['batches']} batches of {request['/ping']['batch']} per set-up, "
        "the set-ups taking turns; each cell is the best batch (the least disturbed by other "
        "work), then in parentheses the median of the batches, or of the differences between "
        "batches taken one after the other. Every request carries the same `Authorization` "
        "header (ignored without tokens) so the test client's work is equal. With auth on, CORS "
        "defaults to `*` (bearer tokens are not ambient credentials), which adds four response "
        "headers: the `off + cors` column separates that from the token check.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2000, help="per path, daemon, round")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="fan-out duration")
    parser.add_argument("--micro-batches", type=int, default=50)
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rounds = []
    for index in range(args.rounds):
        rounds.append(one_round(index, args))
        print(f"[auth] round {index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    micro_result = micro(args)
    load_end = os.getloadavg()[0]
    command = " ".join([".venv/bin/python bench/auth_overhead.py", *sys.argv[1:]])
    result = {
        "meta": {
            "date": date,
            "command": command,
            "seconds": time.monotonic() - started,
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "load_start": load_start,
            "load_end": load_end,
            "load_max": max(v for r in rounds for v in (r["load_start"], r["load_end"])),
            "rounds": args.rounds,
            "requests": args.requests,
            "clients": args.clients,
            "rate": args.rate,
            "fanout_s": args.seconds,
        },
        "summary": summarize(rounds),
        "micro": micro_result,
        "rounds": rounds,
    }
    section = markdown(result)
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print()
    print(section)
    if args.write_results:
        write_section(section, START, END)
        print(f"[auth] wrote the section to {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
