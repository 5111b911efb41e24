"""Where gafferd listens and its clients connect when nobody says: defined once.

gafferd, ``gafferctl``, ``gaffer`` and the client library all import these, so
the daemon's default endpoint and the URL its tools try first cannot drift apart.
Kept free of imports so the client side can use it without gevent or Flask.
"""

from __future__ import annotations

#: gafferd's endpoint when neither ``--bind`` nor the config names one (spec 2.1).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_BIND = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
#: The URL ``gafferctl --connect``, ``gaffer --endpoint`` and ``Client()`` use by default.
DEFAULT_URL = f"http://{DEFAULT_BIND}"
#: The port of a config ``bind`` that names a host only (``bind = 127.0.0.1``): gaffer 0.4
#: read it as port 8000 (spec 2.1), and configs written for it keep meaning the same.
BARE_HOST_PORT = 8000
