"""Print a few lines, then ``ready`` late, then idle.

late_ready.py [DELAY | GATE_FILE]: the ready line comes DELAY seconds after start
(default 0.5), or once GATE_FILE exists (a test then decides the moment). Each
line is its own os.write (no buffering).
"""

import os
import sys
import time

when = sys.argv[1] if len(sys.argv) > 1 else "0.5"
os.write(1, b"starting\n")
os.write(1, b"loading things\n")
if when.replace(".", "", 1).isdigit():
    time.sleep(float(when))
else:
    while not os.path.exists(when):
        time.sleep(0.02)
os.write(1, b"server ready on port 1234\n")
while True:
    time.sleep(60)
