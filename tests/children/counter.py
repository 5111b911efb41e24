"""Print numbered lines: counter.py [count] [interval] [stream]; count 0 = forever."""

import os
import sys
import time

count = int(sys.argv[1]) if len(sys.argv) > 1 else 0
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
fd = 2 if len(sys.argv) > 3 and sys.argv[3] == "stderr" else 1
n = 0
while count == 0 or n < count:
    n += 1
    os.write(fd, f"line {n}\n".encode())
    if interval:
        time.sleep(interval)
if len(sys.argv) > 4 and sys.argv[4] == "wait":
    time.sleep(3600)
