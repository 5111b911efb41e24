"""Webhooks: POST matching events as JSON to configured URLs (spec section 10).

The dispatcher is one bus listener that only appends to queues, so the bus and
the API never wait for a receiver. Each receiver URL gets its own bounded queue
and its own sender greenlet: a receiver that hangs or is down delays only its
own deliveries, never another receiver's. A full queue drops its oldest event
(counted and logged); a delivery that keeps failing is retried a few times
with exponential backoff and then dropped with a log line.

A URL given a secret gets signed POSTs (see ``signing``): the body gains
``webhook_timestamp`` (unix seconds of this attempt) and ``webhook_id`` (one id
per event and URL, kept across retries), and the ``X-Gaffer-Signature`` and
``X-Gaffer-Timestamp`` headers are added. Each retry is stamped and signed
again, so a late retry is not refused as stale. Unsigned URLs get exactly the
event payload, as before. Secrets are only ever held in ``Secret`` objects.

Sends use httpx's sync client, which is cooperative because the daemon (and
the test suite) monkey-patches gevent before anything else runs.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gevent
import httpx
from gevent.event import Event
from gevent.pool import Group

from .events import EventBus
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, Secret

log = logging.getLogger(__name__)

#: Key that subscribes a URL to every event.
ALL_EVENTS = "."


class _Receiver:
    """One URL: a bounded FIFO of event payloads and the greenlet that sends them."""

    def __init__(self, dispatcher: WebhookDispatcher, url: str) -> None:
        self.dispatcher = dispatcher
        self.url = url
        self.queue: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self.in_flight: dict[str, Any] | None = None
        self.wakeup = Event()
        self.greenlet = dispatcher._senders.spawn(self.run)

    def put(self, payload: dict[str, Any]) -> None:
        if len(self.queue) >= self.dispatcher.queue_size:
            self.queue.popleft()
            self.dropped += 1
            self.dispatcher.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning(
                    "webhook %s: queue full (%d), dropped the oldest event (%d so far)",
                    self.url,
                    self.dispatcher.queue_size,
                    self.dropped,
                )
        self.queue.append(payload)
        self.wakeup.set()

    def run(self) -> None:
        """Send queued events in order; after ``stop`` is asked, return once empty."""
        while True:
            if not self.queue:
                if self.dispatcher.stopping:
                    return
                self.wakeup.clear()
                self.wakeup.wait()
                continue
            self.in_flight = self.queue.popleft()
            try:
                self.dispatcher.deliver(self.url, self.in_flight)
            except Exception:  # a sender that dies would silently stop this URL's hooks
                log.exception("webhook %s: unexpected error", self.url)
            self.in_flight = None


class WebhookDispatcher:
    """Subscribes to every event and POSTs the ones hooked (by exact name or ``.``).

    ``queue_size`` bounds each URL's queue; ``timeout`` bounds each HTTP
    attempt; ``retries`` more attempts follow a failed one after ``backoff``,
    ``2 * backoff``, ... seconds. ``delivered``, ``failed`` (given up after
    retries) and ``dropped`` (queue overflow, or left unsent at stop) count
    what happened to each (event, URL) delivery; ``dropped`` includes a send
    cut short by ``stop``. ``secrets`` maps a URL to the secret signing every
    POST to it; ``clock`` (unix seconds) stamps signed deliveries.
    """

    def __init__(
        self,
        bus: EventBus,
        hooks: Iterable[tuple[str, str]],
        *,
        queue_size: int = 1000,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        secrets: Mapping[str, Secret] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.queue_size = max(1, queue_size)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.clock = clock
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.stopping = False
        self._hooks: dict[str, list[str]] = {}
        self._secrets: dict[str, Secret] = dict(secrets or {})
        self._receivers: dict[str, _Receiver] = {}
        self._senders = Group()
        self._http: httpx.Client | None = None
        self._started = False
        for event, url in hooks:
            self.register(event, url)

    # -- hooks ---------------------------------------------------------------

    def __repr__(self) -> str:  # counts only: never a secret
        hooks = sum(len(urls) for urls in self._hooks.values())
        return (
            f"<WebhookDispatcher hooks={hooks} signed_urls={len(self._secrets)} "
            f"delivered={self.delivered} failed={self.failed} dropped={self.dropped}>"
        )

    def register(self, event: str, url: str, secret: Secret | None = None) -> None:
        """Hook ``url`` to the exact event name ``event`` (``.`` for every event).

        A ``secret`` signs every later POST to ``url``, whatever event it carries.
        """
        urls = self._hooks.setdefault(event, [])
        if url not in urls:
            urls.append(url)
        if secret is not None:
            self._secrets[url] = secret

    def unregister(self, event: str, url: str) -> None:
        urls = self._hooks.get(event, [])
        if url in urls:
            urls.remove(url)
        if not urls:
            self._hooks.pop(event, None)
        if not any(url in hooked for hooked in self._hooks.values()):
            self._secrets.pop(url, None)  # held no longer than needed

    def urls_for(self, event: str) -> list[str]:
        """The URLs hooked to this exact event name or to ``.``, each once, in order."""
        urls = self._hooks.get(event, []) + self._hooks.get(ALL_EVENTS, [])
        return list(dict.fromkeys(urls))

    @property
    def pending(self) -> int:
        """Events queued and not yet handed to a send attempt."""
        return sum(len(r.queue) for r in self._receivers.values())

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started, self.stopping = True, False
        self._http = httpx.Client(timeout=httpx.Timeout(self.timeout))
        self.bus.subscribe(ALL_EVENTS, self.on_event)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, send what can be sent within ``timeout``, drop the rest."""
        if not self._started:
            return
        self._started = False
        self.bus.unsubscribe(ALL_EVENTS, self.on_event)
        self.stopping = True
        for receiver in self._receivers.values():
            receiver.wakeup.set()
        self._senders.join(timeout=timeout)
        self._senders.kill(block=True, timeout=1.0)
        left = self.pending + sum(r.in_flight is not None for r in self._receivers.values())
        if left:
            self.dropped += left
            log.warning("webhooks: %d event(s) not sent before shutdown", left)
        self._receivers.clear()
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- delivery ------------------------------------------------------------

    def on_event(self, event: str, payload: dict[str, Any]) -> None:
        """Bus listener: queue the event for each hooked URL; never blocks."""
        if self.stopping:
            return
        for url in self.urls_for(event):
            receiver = self._receivers.get(url)
            if receiver is None:
                receiver = self._receivers[url] = _Receiver(self, url)
            receiver.put(payload)

    def deliver(self, url: str, payload: dict[str, Any]) -> bool:
        """POST one event, retrying transient failures; True if the receiver took it.

        Connection errors, timeouts, 5xx, 408 and 429 are retried; any other
        4xx means the receiver refuses this event, so it is not retried.
        """
        if self._http is None:
            return False
        secret = self._secrets.get(url)
        delivery_id = uuid.uuid4().hex if secret is not None else ""
        body = json.dumps(payload, default=str).encode()
        headers = {"Content-Type": "application/json"}
        reason = ""
        attempts = 0
        for attempt in range(self.retries + 1):
            attempts += 1
            if secret is not None:
                body, headers = self.signed(payload, secret, delivery_id)
            try:
                response = self._http.post(url, content=body, headers=headers)
            except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                reason = str(exc) or type(exc).__name__
            else:
                if response.is_success:
                    self.delivered += 1
                    return True
                reason = f"HTTP {response.status_code}"
                if response.is_client_error and response.status_code not in (408, 429):
                    break
            if attempt < self.retries:
                gevent.sleep(self.backoff * 2**attempt)
        self.failed += 1
        log.warning(
            "webhook %s: dropped %s event after %d attempt(s): %s",
            url,
            payload.get("event", "?"),
            attempts,
            reason,
        )
        return False

    def signed(
        self, payload: dict[str, Any], secret: Secret, delivery_id: str
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one signed attempt, stamped with ``clock`` now."""
        timestamp = int(self.clock())
        stamped = {**payload, "webhook_timestamp": timestamp, "webhook_id": delivery_id}
        body = json.dumps(stamped, default=str).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: secret.sign(body),
            TIMESTAMP_HEADER: str(timestamp),
        }
        return body, headers
