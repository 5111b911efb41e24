"""Start a grandchild that sleeps (and keeps our stdout open), then sleep too."""

import subprocess
import sys
import time

grandchild = subprocess.Popen(["sleep", "600"])
print(f"grandchild {grandchild.pid}", flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "exit":
    sys.exit(0)
time.sleep(600)
