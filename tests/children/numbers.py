"""Write fixed-width numbered lines (``%09d\\n``, 10 bytes) as fast as the pipe takes them,
cut into writes of random sizes so that reads end anywhere inside a line.

numbers.py count [wait]: lines 1 .. count, then (with ``wait``) sleep.
"""

import os
import random
import sys
import time

count = int(sys.argv[1])
data = b"".join(b"%09d\n" % n for n in range(1, count + 1))
rng = random.Random(count)
pos = 0
while pos < len(data):
    pos += os.write(1, data[pos : pos + rng.randint(1, 20000)])
if "wait" in sys.argv[2:]:
    time.sleep(3600)
