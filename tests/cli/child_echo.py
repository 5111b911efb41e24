"""Test child: echoes each stdin line as ``echo: <line>``; exits at end of stdin."""

import sys

print("ready", flush=True)
for line in sys.stdin:
    print(f"echo: {line.rstrip()}", flush=True)
