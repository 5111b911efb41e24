"""``python -m gaffer_gevent`` runs gafferd."""

import sys

from .daemon import main

sys.exit(main())
