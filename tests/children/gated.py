"""Wait for a line on stdin, then write ``out N`` / ``err N`` lines and exit.

gated.py [count] [exit_code]: nothing is written before the gate opens, so a
test can subscribe first; every line is its own os.write (no buffering).
"""

import os
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
code = int(sys.argv[2]) if len(sys.argv) > 2 else 0
received = b""
while b"\n" not in received:
    data = os.read(0, 1024)
    if not data:
        break
    received += data
for n in range(1, count + 1):
    os.write(1, f"out {n}\n".encode())
    os.write(2, f"err {n}\n".encode())
sys.exit(code)
