"""The physical reference: how fast can anyone read the flooding child's pipe on this machine?

A plain loop of `os.read(fd, 65536)` on the child's stdout, nothing else. Every "live output
over HTTP" figure is compared with this rate measured in the same run, because the absolute
numbers move by ±30 % from one run to the next on these machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from common import ChildScripts, launch, stop_tree, workdir


def measure(duration: float = 5.0) -> dict[str, float]:
    """Bytes per second read from a `yes`-like child's pipe over `duration` seconds."""
    with workdir("raw") as tmp:
        scripts = ChildScripts(tmp)
        child = launch(scripts.flood, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            assert child.stdout is not None
            fd = child.stdout.fileno()
            os.read(fd, 65536)  # the child is up and writing
            total = 0
            start = time.perf_counter()
            deadline = start + duration
            while True:
                total += len(os.read(fd, 65536))
                if time.perf_counter() >= deadline:
                    break
            elapsed = time.perf_counter() - start
        finally:
            stop_tree(child, grace=2.0)
    return {"bytes_per_s": total / elapsed, "seconds": elapsed, "bytes": float(total)}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
