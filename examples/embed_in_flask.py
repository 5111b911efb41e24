"""An existing Flask app that mounts gaffer's whole API under ``/gaffer``.

Try it::

    .venv/bin/python examples/embed_in_flask.py --port 5000
    curl localhost:5000/                         # the host app's own route
    curl localhost:5000/gaffer/processes         # ["clock"]
    curl 'localhost:5000/gaffer/streams/1/stdout?feed=continuous'
    curl -XPOST localhost:5000/gaffer/processes/clock/_add

The host app keeps its routes; ``Gaffer(manager, url_prefix="/gaffer").init_app(app)``
adds gaffer's blueprints (websocket included: ``ws://HOST:PORT/gaffer/wstreams/<pid>``)
under the prefix. ``--port 0`` picks a free port; the URL is printed on stderr.
SIGTERM or Ctrl-C stops every child, then the server, and exits 0.

**The host must run on gevent**, patched before anything else is imported: the
manager spawns children with ``gevent.subprocess``, whose exits are noticed by
gevent's child watcher, which only runs on gevent's default loop in the main
thread. A threaded or sync server (``flask run``, werkzeug, gunicorn's sync or
gthread workers) fails with "child watchers are only available on the default
loop" or never reaps. So this script patches first, in its ``__main__`` block,
and serves with ``gevent.pywsgi.WSGIServer`` and gafferd's ``GafferHandler``
(gevent-websocket's handler, needed for the websocket route).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from gaffer_gevent.manager import Manager

#: A demo process: prints ``tick N`` every second.
CLOCK = (
    "import itertools, time\n"
    "for n in itertools.count(1):\n"
    "    print(f'tick {n}')\n"
    "    time.sleep(1)\n"
)
DEMO_TEMPLATE = {
    "name": "clock",
    "cmd": sys.executable,
    "args": ["-u", "-c", CLOCK],
    "redirect_output": ["stdout"],
}
STOP_TIMEOUT = 10.0


def create_host_app(manager: Manager) -> Flask:
    """The "existing" app: its own routes, plus gaffer's API mounted under ``/gaffer``."""
    from flask import Flask, Response, jsonify

    from gaffer_gevent.api import Gaffer

    app = Flask(__name__)

    @app.route("/")
    def index() -> str:
        return "hello from the host app\n"

    @app.route("/about")
    def about() -> Response:
        return jsonify(app="host", gaffer="/gaffer")

    Gaffer(manager, url_prefix="/gaffer").init_app(app)
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=5000, help="port (0: any free port)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve the host app until SIGTERM/SIGINT, then stop the children and the server."""
    import gevent
    from gevent.event import Event
    from gevent.pywsgi import WSGIServer

    from gaffer_gevent.config import parse_address
    from gaffer_gevent.manager import Manager
    from gaffer_gevent.server import GafferHandler, describe, listen
    from gaffer_gevent.template import ProcessTemplate

    args = parse_args(argv)
    manager = Manager()
    app = create_host_app(manager)
    sock = listen(parse_address(f"{args.host}:{args.port}"))  # TCP_NODELAY set
    server = WSGIServer(sock, app, handler_class=GafferHandler, log=None)
    stop = Event()
    # Handlers only wake the main greenlet; keep the handles or they stop working.
    handles = [gevent.signal_handler(sig, stop.set) for sig in (signal.SIGTERM, signal.SIGINT)]
    server.start()
    print(f"embed_in_flask: listening on {describe(sock, tls=False)}", file=sys.stderr, flush=True)
    manager.add_template(ProcessTemplate.from_json(DEMO_TEMPLATE))
    try:
        stop.wait()
    finally:
        # Children first: their streams end, so the server has nothing left to wait for.
        manager.stop_all(STOP_TIMEOUT)
        server.stop(timeout=1)
        manager.bus.close()
        for handle in handles:
            handle.cancel()
    print("embed_in_flask: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()  # first, before Flask or gaffer_gevent are imported
    sys.exit(main())
