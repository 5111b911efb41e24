"""Test entry point: patch first (the only place tests patch), then shared fixtures.

Fixtures give real things: a ``Manager`` with real children, and ``server``, a
real gevent WSGI server with gafferd's handler on 127.0.0.1 (ephemeral port)
serving the API over that manager. An autouse check fails any test that
leaves a child process behind.
"""

from gevent import monkey

monkey.patch_all()

import contextlib  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402
import pytest  # noqa: E402
from flask import Flask  # noqa: E402

pytest.register_assert_rewrite("tests.helpers", "tests.gafferd")

from gaffer_gevent.api import create_app  # noqa: E402
from gaffer_gevent.api.logs import install_logfiles  # noqa: E402
from gaffer_gevent.config import Address, EndpointConfig  # noqa: E402
from gaffer_gevent.logfiles import LogFiles  # noqa: E402
from gaffer_gevent.manager import Manager  # noqa: E402
from gaffer_gevent.server import make_servers  # noqa: E402

from .gafferd import Gafferd  # noqa: E402
from .helpers import Receiver, wait_for  # noqa: E402

# A shell starts background jobs (`make test &`) with SIGINT ignored, and an ignored signal stays
# ignored across exec: the gafferd and CLI children the tests stop with SIGINT would never see it.
# A handler (unlike SIG_IGN) is reset to the default in every child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def private_runtime_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """gafferds started by tests keep their runtime dirs (lock, record) in the test session's
    temporary dir, not in /run/gaffer or /tmp/gaffer-<uid> (see gaffer_gevent/runtime.py)."""
    xdg = tmp_path_factory.mktemp("xdg-runtime")
    xdg.chmod(0o700)
    saved = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(xdg)
    yield
    if saved is None:
        os.environ.pop("XDG_RUNTIME_DIR", None)
    else:
        os.environ["XDG_RUNTIME_DIR"] = saved


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    """Every child a test starts must be gone (or at least dying) when it ends."""
    me = psutil.Process(os.getpid())
    before = {p.pid for p in me.children(recursive=True)}
    yield

    def leftovers() -> list[psutil.Process]:
        alive = []
        for p in me.children(recursive=True):
            try:
                if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        return alive

    try:
        wait_for(lambda: not leftovers(), timeout=15)
    except AssertionError:
        left = leftovers()
        for p in left:
            p.kill()
        pytest.fail(f"children left behind: {[(p.pid, p.cmdline()) for p in left]}")


@pytest.fixture(autouse=True)
def gafferds_cleaned_up(no_leftover_children: None) -> Iterator[None]:
    """Every ``Gafferd`` a test started is cleaned up (its group, then each child it was seen
    with), before ``no_leftover_children`` looks: a test that stopped it loses nothing."""
    yield
    for daemon in list(Gafferd.started):
        daemon.cleanup()


@pytest.fixture
def manager() -> Iterator[Manager]:
    yield from managed()


def managed(**settings: Any) -> Iterator[Manager]:
    """A fixture body: a ``Manager(**settings)``, every child stopped and the bus closed after."""
    mgr = Manager(**settings)
    yield mgr
    mgr.stop_all(timeout=10)
    mgr.bus.close()


@dataclass
class LiveServer:
    url: str
    host: str
    port: int
    manager: Manager
    app: object


@contextlib.contextmanager
def serving(app: Flask, manager: Manager) -> Iterator[LiveServer]:
    """``app`` (over ``manager``) on a real socket at ``http://127.0.0.1:<port>``."""
    endpoint = EndpointConfig("test", [Address("tcp", "127.0.0.1", 0, "")])
    ((wsgi, url),) = make_servers(app, [endpoint])
    wsgi.start()
    host, port = wsgi.socket.getsockname()[:2]
    try:
        yield LiveServer(url, host, port, manager, app)
    finally:
        manager.stop_all(timeout=10)
        wsgi.stop(timeout=2)


@pytest.fixture
def server(manager: Manager) -> Iterator[LiveServer]:
    """The whole API on a real socket: ``server.url`` is ``http://127.0.0.1:<port>``."""
    with serving(create_app(manager), manager) as live:
        yield live


@pytest.fixture
def logfiles(server: LiveServer, tmp_path: Path) -> Iterator[LogFiles]:
    """Log files under ``tmp_path`` on the live ``server`` (``_rotate``, ``_logs``)."""
    files = LogFiles(server.manager, str(tmp_path))
    install_logfiles(server.app, files)  # type: ignore[arg-type]
    yield files
    server.manager.stop_all(timeout=10)
    files.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 recording every POST."""
    r = Receiver()
    yield r
    r.server.stop(timeout=1)
