"""Echo stdin to stdout unbuffered, byte for byte."""

import os
import sys

while True:
    data = os.read(0, 65536)
    if not data:
        break
    os.write(1, data)
sys.exit(0)
