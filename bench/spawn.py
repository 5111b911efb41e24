"""Spawn/stop/respawn speed of the manager core, in process (no HTTP in the way).

    .venv/bin/python bench/spawn.py [--runs 5]

Prints, as median [min-max] over the runs: time for 100 children of one
template to be running, time for all 100 to be gone after a stop, the respawn
latency after SIGKILL (median and p95 over 20 kills per run), and the RSS of
this process with 100 children. Like gafferd, the manager records its process
groups in a runtime dir (a temporary one here); ``--no-record`` leaves that
out, to see what it costs.

The respawn figure is that of a healthy process: one that ran past the
backoff's reset time, which is restarted at once (a crash loop waits 0.1 s,
doubling). So that 20 kills take a second rather than 20 x 10 s, this bench's
manager counts a run of RESET_AFTER as healthy instead of 10 s; the code path
measured is the same (bench/crash_loop.py measures the loop itself).

The full side-by-side comparison with supervisord and circusd over their APIs
is `make bench` (bench/run_all.py).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402

from gaffer_gevent.flapping import BackoffConfig  # noqa: E402
from gaffer_gevent.manager import Manager  # noqa: E402
from gaffer_gevent.runtime import Runtime  # noqa: E402
from gaffer_gevent.template import ProcessTemplate  # noqa: E402

#: A run this long counts as healthy here (the default is 10 s; see the docstring).
RESET_AFTER = 0.05


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("bench wait timed out")
        gevent.sleep(0.0005)


def one_run(manager: Manager, run: int) -> dict[str, float]:
    name = f"sleepers{run}"
    t0 = time.perf_counter()
    manager.add_template(ProcessTemplate.from_json({"name": name, "cmd": "sleep 3600",
                                                    "numprocesses": 100}))  # fmt: skip
    # The first 32 start within the call, the rest in batches that yield to the hub.
    wait_until(lambda: len(manager.pids(name)) == 100)
    up = time.perf_counter() - t0
    rss = psutil.Process().memory_info().rss / 2**20
    t0 = time.perf_counter()
    manager.stop_template(name)
    wait_until(lambda: not manager.stopping)
    down = time.perf_counter() - t0
    manager.remove_template(name)

    respawn = f"respawn{run}"
    manager.add_template(ProcessTemplate.from_json({"name": respawn, "cmd": "sleep 3600"}))
    latencies = []
    for _ in range(20):
        (pid,) = manager.pids(respawn)
        process = manager.running[pid]
        wait_until(lambda process=process: manager.clock() - process.spawned_at >= RESET_AFTER)
        os_pid = process.os_pid
        t0 = time.perf_counter()
        os.kill(os_pid, signal.SIGKILL)
        wait_until(lambda pid=pid: manager.pids(respawn) and manager.pids(respawn) != [pid])
        latencies.append((time.perf_counter() - t0) * 1000)
    manager.remove_template(respawn)
    wait_until(lambda: not manager.stopping)
    latencies.sort()
    return {
        "up_100_s": up,
        "down_100_s": down,
        "respawn_median_ms": statistics.median(latencies),
        "respawn_p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "rss_100_children_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="no runtime dir record")
    args = parser.parse_args()
    manager = Manager(backoff=BackoffConfig(reset_after=RESET_AFTER))
    with tempfile.TemporaryDirectory() as tmp:
        runtime = None if args.no_record else Runtime(os.path.join(tmp, "run"))
        if runtime is not None:
            runtime.attach(manager)
        runs = [one_run(manager, i) for i in range(args.runs)]
        manager.stop_all(10)
        if runtime is not None:
            runtime.close()
    summary = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        summary[key] = {"median": statistics.median(values), "min": min(values),
                        "max": max(values)}  # fmt: skip
        print(f"{key:22} {summary[key]['median']:9.4f} [{min(values):.4f}-{max(values):.4f}]")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
