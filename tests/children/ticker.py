"""Like examples/demo.py, faster: ``STDOUT n`` / ``STDERR n`` every interval, stdin echoed.

ticker.py [interval]: each line is its own os.write (no buffering), so one
line is one chunk.
"""

import contextlib
import os
import selectors
import sys
import time

interval = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
selector = selectors.DefaultSelector()
# With stdin on /dev/null (no redirect_input), epoll refuses it: nothing to echo.
with contextlib.suppress(PermissionError):
    selector.register(0, selectors.EVENT_READ)
count = 0
next_tick = time.monotonic()
while True:
    for _key, _ in selector.select(max(0.0, next_tick - time.monotonic())):
        data = os.read(0, 65536)
        if not data:
            selector.unregister(0)
            break
        os.write(1, data)
    if time.monotonic() >= next_tick:
        count += 1
        os.write(1, f"STDOUT {count}\n".encode())
        os.write(2, f"STDERR {count}\n".encode())
        next_tick += interval
