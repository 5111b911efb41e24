"""Write as fast as the pipe takes it, forever (64 KiB blocks)."""

import os

block = b"x" * 65535 + b"\n"
while True:
    os.write(1, block)
