"""A crash loop with the default backoff: how many spawns a crashing `false` costs.

    .venv/bin/python bench/crash_loop.py [--seconds 10]

Creates a template running `false` (no flapping setting) in an in-process
manager with the defaults, and prints each spawn's time after the first and the
number of spawns within the period. Issue 13 measured 1,793 spawns in 2 s
before the backoff; the goal is at most about ten in the first 10 s.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from gaffer_gevent.manager import Manager  # noqa: E402
from gaffer_gevent.template import ProcessTemplate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    manager = Manager()
    spawns: list[float] = []
    manager.bus.subscribe("proc.crash.spawn", lambda e, p: spawns.append(time.monotonic()))
    manager.add_template(ProcessTemplate.from_json({"name": "crash", "cmd": "false"}))
    gevent.sleep(args.seconds)
    status = manager.status("crash")
    manager.stop_all(10)
    offsets = [round(t - spawns[0], 3) for t in spawns]
    print(f"spawns in {args.seconds:g} s: {len(spawns)} at {offsets}")
    print(f"status then: {json.dumps(status)}")


if __name__ == "__main__":
    main()
