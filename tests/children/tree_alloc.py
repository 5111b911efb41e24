"""Start a grandchild that allocates (and touches) 50 MB and holds it, then sleep.

The grandchild prints ``allocated <pid>`` on our shared stdout once the memory
is resident: what the tree's resident memory must show, not this leader's.
"""

import subprocess
import sys
import time

GRANDCHILD = (
    "import os, sys, time\n"
    "held = b'x' * (50 * 1024 * 1024)\n"
    "print(f'allocated {os.getpid()}', flush=True)\n"
    "time.sleep(600)\n"
)

grandchild = subprocess.Popen([sys.executable, "-c", GRANDCHILD])
time.sleep(600)
