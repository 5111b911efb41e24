"""The ``Client`` class: every call of gafferd's HTTP API as a typed method.

The calls are grouped by what they act on (``processes``: templates, processes
and groups; ``streams``: feeds, stdin and stats) over one ``Session`` (the
connection); this class adds the server's own calls and the auth calls.
"""

from __future__ import annotations

from typing import Any, cast

from .bodies import FeedName, Status, Ticket, WhoAmI
from .processes import ProcessCalls, signal_number
from .streams import StreamCalls

__all__ = ["Client", "FeedName", "Status", "Ticket", "WhoAmI", "signal_number"]


class Client(ProcessCalls, StreamCalls):
    """gafferd over ``http://``, ``https://`` or ``unix:/path/to.sock``.

    ``token`` is sent as ``Authorization: Bearer <token>`` on every request,
    feed and websocket (never in a URL: ``?ticket=`` is for browsers, which
    cannot set headers). ``certfile``/``keyfile`` are a client certificate
    (mTLS); ``cacert`` is the CA that signed the server's certificate, for a
    private CA (``cafile`` is its older name; ``verify=False`` skips the check).
    Proxy environment variables are ignored: a control connection to a daemon
    must go where it was told to, and so must its token. Redirects are not
    followed, for the same reason.
    """

    # -- server --------------------------------------------------------------

    def version(self) -> str:
        """The server's version string (``GET /``)."""
        return str(self._json("GET", "/")["version"])

    def ping(self) -> bool:
        """True when ``GET /ping`` answers ``OK``."""
        return self.request("GET", "/ping").text.strip() == "OK"

    def health(self) -> dict[str, Any]:
        """``GET /health`` (answered without a token, for load balancers), as a dict.

        A body that is not a JSON object (a bare ``OK``) becomes ``{"status": <text>}``;
        an unhealthy answer (4xx/5xx) raises its ``GafferError`` like any other call.
        """
        response = self.request("GET", "/health")
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        return {"status": response.text.strip() or "ok"}

    # -- auth ----------------------------------------------------------------

    def whoami(self) -> WhoAmI:
        """``GET /auth/whoami``: the name, role and scope of this client's token."""
        return cast(WhoAmI, self._json("GET", "/auth/whoami"))

    def ticket(self) -> Ticket:
        """``POST /auth/ticket``: a single-use ticket for a browser's EventSource or websocket.

        This client never needs one (it sends its token in a header); it is
        here for programs that hand a feed URL to a browser.
        """
        return cast(Ticket, self._json("POST", "/auth/ticket"))
