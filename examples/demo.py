"""A demo child for examples/gaffer.ini: ticks on stdout and stderr, echoes stdin back.

Try it: `make run`, then
    curl localhost:5000/streams/1/stdout?feed=continuous
    curl -XPOST -d $'ECHO\n' localhost:5000/streams/1/stdin
"""

import os
import selectors
import sys
import time

selector = selectors.DefaultSelector()
selector.register(sys.stdin, selectors.EVENT_READ)
count = 0
next_tick = time.monotonic()
while True:
    timeout = max(0.0, next_tick - time.monotonic())
    for _key, _ in selector.select(timeout):
        line = os.read(sys.stdin.fileno(), 65536)
        if not line:
            selector.unregister(sys.stdin)
            break
        sys.stdout.write(line.decode(errors="replace"))
        sys.stdout.flush()
    if time.monotonic() >= next_tick:
        count += 1
        print(f"STDOUT {count}", flush=True)
        print(f"STDERR {count}", file=sys.stderr, flush=True)
        next_tick += 1.0
