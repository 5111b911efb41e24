"""print() numbered lines unbuffered, as `python -u` does: two writes per line (text, newline).

printer.py count [interval] [wait]: ``line 1`` .. ``line count`` (count 0: forever); with
``wait``, then sleeps.
"""

import io
import itertools
import sys
import time

sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
count = int(sys.argv[1])
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
for n in range(1, count + 1) if count else itertools.count(1):
    print(f"line {n}")
    if interval:
        time.sleep(interval)
if "wait" in sys.argv[3:]:
    time.sleep(3600)
