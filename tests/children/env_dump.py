"""Write some of its environment as JSON, then sleep (for tests of what a child inherits).

env_dump.py OUT NAME...: ``{NAME: value or null}`` into OUT (renamed into place, so a
reader sees all or nothing), then sleeps until killed.
"""

import json
import os
import sys
import time

out, names = sys.argv[1], sys.argv[2:]
with open(out + ".tmp", "w") as f:
    json.dump({name: os.environ.get(name) for name in names}, f)
os.replace(out + ".tmp", out)
time.sleep(3600)
