"""Test child: prints ``tick N`` on stdout (and ``tock N`` on stderr) every 0.05 s.

Argument: an optional prefix printed once at start (with the environment's GREETING).
"""

import os
import sys
import time

print(f"start {' '.join(sys.argv[1:])} {os.environ.get('GREETING', '')}".rstrip(), flush=True)
n = 0
while True:
    n += 1
    print(f"tick {n}", flush=True)
    print(f"tock {n}", file=sys.stderr, flush=True)
    time.sleep(0.05)
