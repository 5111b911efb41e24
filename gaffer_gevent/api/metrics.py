"""GET /metrics: what an app counts between scrapes, and the route that renders it.

Between scrapes only plain counts are kept: the template counters (a bus
listener, ``counters.TemplateCounters``), the HTTP requests by URL rule
(never by raw path), method and status with their durations, and the
connections open by kind. Rendering them with prometheus_client
(``exposition``) is imported at the first scrape, so a gafferd nobody scrapes
does not load it. The manager's figures come from a
``metrics.ManagerCollector`` made for each scrape: it knows the caller (a
scoped token sees its templates only) and whether ``?per_pid=1`` asked for
per-pid series. Nothing runs between scrapes.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, request

from ..counters import TemplateCounters
from ..errors import BadValue
from .extension import GafferState, gaffer
from .guard import visible

if TYPE_CHECKING:
    from .exposition import Exposition

bp = Blueprint("metrics", __name__)

EXTRA_KEY = "metrics"
#: The route label of a request that matched no URL rule (never the raw path).
UNMATCHED = "<unmatched>"
#: Methods kept as they are in labels; any other (a client may send any token) is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
#: The environ key where the connection counter notes when a request arrived.
START_KEY = "gaffer.metrics.start"
PER_PID_VALUES = {"0": False, "false": False, "1": True, "true": True}


#: Upper bounds (seconds) of the request duration histogram's buckets (prometheus_client's).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class AppMetrics:
    """What one app counts between scrapes.

    The HTTP figures are plain dicts keyed by URL rule, method and status
    (bounded: the rules are the app's, methods and statuses few), turned into
    metric families at scrape time: no per-series objects, no ``_created``
    series, nothing in prometheus_client's global state.
    """

    def __init__(self, state: GafferState) -> None:
        self.state = state
        #: The app's own registry and collectors, made at the first scrape.
        self.exposition: Exposition | None = None
        self.counters = TemplateCounters(state.manager)
        #: Connections being served now, by kind.
        self.open: Counter[str] = Counter()
        self.requests: Counter[tuple[str, str, str]] = Counter()
        #: route -> (count per bucket, not cumulative; the last is +Inf), sum of seconds.
        self.durations: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, route: str, method: str, status: int, started: float | None) -> None:
        method = method if method in METHODS else "other"
        self.requests[(route, method, str(status))] += 1
        if started is None:
            return
        seconds = time.perf_counter() - started
        counts, total = self.durations.setdefault(route, ([0] * (len(BUCKETS) + 1), [0.0]))
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        total[0] += seconds


def install(app: Flask, state: GafferState, prefix: str) -> AppMetrics:
    """Count ``app``'s requests and connections under ``prefix`` for its ``/metrics``."""
    metrics = AppMetrics(state)
    state.extra[EXTRA_KEY] = metrics
    app.wsgi_app = ConnectionCounter(app.wsgi_app, metrics.open, prefix)  # type: ignore[method-assign]

    def count(response: Response) -> Response:
        if prefix and not (request.path == prefix or request.path.startswith(prefix + "/")):
            return response
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED
        metrics.observe(route, request.method, response.status_code,
                        request.environ.get(START_KEY))  # fmt: skip
        return response

    app.after_request(count)
    return metrics


def metrics_of(state: GafferState) -> AppMetrics:
    found: AppMetrics = state.extra[EXTRA_KEY]
    return found


@bp.route("/metrics", methods=["GET"])
def scrape() -> Response:
    per_pid = _per_pid()
    metrics = metrics_of(gaffer())
    if metrics.exposition is None:
        from .exposition import Exposition

        metrics.exposition = Exposition(metrics)
    body, content_type = metrics.exposition.render(
        request.headers.get("Accept", ""), visible=visible, per_pid=per_pid
    )
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def _per_pid() -> bool:
    values = request.args.getlist("per_pid")
    if not values:
        return False
    value = values[0]
    if len(values) > 1 or value not in PER_PID_VALUES:
        raise BadValue("per_pid must be given once, as 0, 1, false or true")
    return PER_PID_VALUES[value]


class ConnectionCounter:
    """WSGI middleware: how many requests of each kind are being served right now.

    A websocket is served for as long as its view runs; any other request
    until the server closes its body, which for a feed is when the client
    leaves. A response of type ``text/event-stream`` is an ``sse`` one. The
    body handed back is the app's own iterator (``__iter__`` returns it), so a
    busy feed pays nothing per chunk for being counted.
    """

    def __init__(self, wsgi_app: Callable[..., Any], open_: Counter[str], prefix: str) -> None:
        self.wsgi_app = wsgi_app
        self.open = open_
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if self.prefix and not (path == self.prefix or path.startswith(self.prefix + "/")):
            return self.wsgi_app(environ, start_response)
        environ[START_KEY] = time.perf_counter()
        if "wsgi.websocket" in environ:
            self.open["websocket"] += 1
            try:
                return self.wsgi_app(environ, start_response)
            finally:
                self.open["websocket"] -= 1
        kind = ["http"]
        self.open["http"] += 1

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            for name, value in headers:
                sse = name.lower() == "content-type" and value.startswith("text/event-stream")
                if sse and kind[0] == "http":
                    self.open[kind[0]] -= 1
                    kind[0] = "sse"
                    self.open["sse"] += 1
            return start_response(status, headers, *exc_info)

        def release() -> None:
            self.open[kind[0]] -= 1

        try:
            result = self.wsgi_app(environ, start)
        except BaseException:
            release()
            raise
        return _CountedBody(result, release)


class _CountedBody:
    """The app's body, with ``release`` run once when the server closes it."""

    def __init__(self, body: Iterable[bytes], release: Callable[[], None]) -> None:
        self.body = body
        self.release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            release, self.release = self.release, None
            if release is not None:
                release()
