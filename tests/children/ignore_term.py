"""Ignore SIGTERM and sleep: only SIGKILL ends it."""

import signal
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
sys.stdout.flush()
while True:
    time.sleep(1)
