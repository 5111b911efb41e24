"""Speak systemd's notify protocol to $NOTIFY_SOCKET the way sd_notify(3) does.

notifier.py [DELAY] [PINGS]: ``STATUS=starting`` at once, ``READY=1`` with
``STATUS=serving`` after DELAY seconds (default 0.2), then ``WATCHDOG=1`` every
half $WATCHDOG_USEC (when set) PINGS times (default: forever), then silence.
"""

import os
import socket
import sys
import time


def notify(message: str) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.2
pings = int(sys.argv[2]) if len(sys.argv) > 2 else -1
notify("STATUS=starting")
time.sleep(delay)
notify("READY=1\nSTATUS=serving")
usec = os.environ.get("WATCHDOG_USEC")
while True:
    if usec and pings != 0:
        time.sleep(int(usec) / 2_000_000)
        notify("WATCHDOG=1")
        pings -= 1
    else:
        time.sleep(60)
