"""Write blocks to stdout forever and count them in a file: progress.py PATH [BLOCK] [INTERVAL].

The count (rewritten atomically after each block) shows from outside that the
child is still writing, whatever happens to the pipe's reader's own output.
"""

import os
import sys
import time

path = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 65536
interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.005
block = b"p" * (size - 1) + b"\n"
n = 0
while True:
    os.write(1, block)
    n += 1
    with open(path + ".tmp", "w") as f:
        f.write(str(n))
    os.replace(path + ".tmp", path)
    time.sleep(interval)
