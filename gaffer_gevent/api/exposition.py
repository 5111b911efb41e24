"""Rendering an app's metrics with prometheus_client: its own registry, one per app.

Each app owns its ``CollectorRegistry`` (never prometheus_client's global
one), so two apps in one process, in tests or embedded, do not clash. It
holds gafferd's own ``process_*`` collector and ``_AppCollector`` (the HTTP
figures, the build, the open connections and the webhooks); each scrape adds
a ``ManagerCollector`` for its caller and encodes the whole in the format the
``Accept`` header asks for (``choose_encoder``: OpenMetrics or text).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import __version__
from ..metrics import ManagerCollector
from .metrics import BUCKETS, AppMetrics

CONNECTION_KINDS = ("http", "sse", "websocket")
WEBHOOK_OUTCOMES = ("delivered", "failed", "dropped")


class Exposition:
    """One app's registry, and the rendering of a scrape."""

    def __init__(self, metrics: AppMetrics) -> None:
        self.metrics = metrics
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(_AppCollector(metrics))

    def render(
        self, accept: str, *, visible: Callable[[str], bool], per_pid: bool
    ) -> tuple[bytes, str]:
        """The body and its content type for a scraper that sent ``accept``."""
        manager = ManagerCollector(self.metrics.state.manager, self.metrics.counters,
                                   visible=visible, per_pid=per_pid)  # fmt: skip
        encoder, content_type = choose_encoder(accept)
        return encoder(_Scrape(self.registry, manager)), content_type


class _AppCollector:
    """HTTP requests, the build, open connections and webhook deliveries, read at scrape time."""

    def __init__(self, metrics: AppMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._http()
        build = GaugeMetricFamily("gaffer_build_info", "gaffer_gevent's version (always 1)",
                                  labels=["version"])  # fmt: skip
        build.add_metric([__version__], 1)
        yield build
        connections = GaugeMetricFamily(
            "gaffer_connections", "Requests being served now: http, sse feeds, websockets",
            labels=["kind"],
        )  # fmt: skip
        for kind in CONNECTION_KINDS:
            connections.add_metric([kind], self.metrics.open[kind])
        yield connections
        webhooks = self.metrics.state.extra.get("webhooks")
        deliveries = CounterMetricFamily(
            "gaffer_webhook_deliveries",
            "Webhook deliveries: delivered, failed (after retries), dropped (queue full or stop)",
            labels=["outcome"],
        )
        for outcome in WEBHOOK_OUTCOMES:
            deliveries.add_metric([outcome], getattr(webhooks, outcome, 0))
        yield deliveries

    def _http(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gaffer_http_requests", "HTTP requests answered, by URL rule, method and status",
            labels=["route", "method", "status"],
        )  # fmt: skip
        for labels, count in sorted(self.metrics.requests.items()):
            requests.add_metric(list(labels), count)
        yield requests
        durations = HistogramMetricFamily(
            "gaffer_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer (a feed: to its first bytes)",
            labels=["route"],
        )
        for route, (counts, total) in sorted(self.metrics.durations.items()):
            cumulative = list(itertools.accumulate(counts))
            bounds = [str(b) for b in BUCKETS] + ["+Inf"]
            durations.add_metric([route], list(zip(bounds, cumulative, strict=True)), total[0])
        yield durations


class _Scrape:
    """The app's registry plus this scrape's manager collector, as one collector."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()
