"""Print a few lines, then ``ready`` after DELAY seconds, then idle.

late_ready.py [DELAY]: each line is its own os.write (no buffering).
"""

import os
import sys
import time

delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
os.write(1, b"starting\n")
os.write(1, b"loading things\n")
time.sleep(delay)
os.write(1, b"server ready on port 1234\n")
while True:
    time.sleep(60)
