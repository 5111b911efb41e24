"""Webhook signing: the secret a ``[webhooks]`` line names, and the signature of a body.

A receiver must be able to tell gafferd's POSTs from anyone else's, and a fresh
POST from a recorded one. So a signed hook's body carries the delivery time
(``webhook_timestamp``) and a delivery id (``webhook_id``), and the whole body is
signed with HMAC-SHA256: checking the signature also authenticates the time.

The line syntax is ``event = URL [secret_file=PATH | secret_env=NAME | secret=VALUE]``,
so every existing ``event = URL`` line keeps its meaning. The secret is read
here, once, at config load; it lives only inside a ``Secret``, whose repr and
str hide it, so a ``DaemonConfig``, a dispatcher or an error can be printed
without leaking it. Error messages never quote text from the line beyond the
option names, since a misplaced secret would otherwise end up on stderr.

Pure apart from reading the named file or environment variable; imports neither
gevent nor httpx, so ``config`` can use it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Mapping

#: Header carrying ``sha256=<hex HMAC-SHA256 of the exact body bytes>``.
SIGNATURE_HEADER = "X-Gaffer-Signature"
#: Header repeating the body's ``webhook_timestamp`` (unix seconds), for logs and routing.
TIMESTAMP_HEADER = "X-Gaffer-Timestamp"
#: A secret file longer than this is a mistake (a wrong path), not a key.
MAX_SECRET_BYTES = 4096
#: Where a line may take its secret from; at most one per line.
SOURCES = ("secret_file", "secret_env", "secret")
_EXPECTED = "secret_file=PATH, secret_env=NAME or secret=VALUE"


class Secret:
    """An HMAC key that signs bodies and never shows itself in a repr, str or log."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the secret is empty")
        self._key = key

    def sign(self, body: bytes) -> str:
        """The ``X-Gaffer-Signature`` value for ``body``: ``sha256=<hex digest>``."""
        return "sha256=" + hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    __hash__ = None  # type: ignore[assignment]  # equal by value, so not hashable

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__


def read_secret_file(path: str) -> bytes:
    """The bytes of a regular file of at most ``MAX_SECRET_BYTES``; ValueError otherwise.

    Opened non-blocking and checked to be a regular file, so that a FIFO or a
    device named by mistake fails at once instead of hanging or reading forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(f"secret_file {path!r} cannot be read: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"secret_file {path!r} is not a regular file")
        data = b""
        while len(data) <= MAX_SECRET_BYTES:
            chunk = os.read(fd, MAX_SECRET_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise ValueError(f"secret_file {path!r} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise ValueError(f"secret_file {path!r} is longer than {MAX_SECRET_BYTES} bytes")
    return data


def parse_hook(
    value: str, *, base_dir: str, environ: Mapping[str, str]
) -> tuple[str, Secret | None]:
    """The URL and the secret (or None) of one ``[webhooks]`` value; ValueError if wrong.

    A relative ``secret_file`` is taken from ``base_dir`` (the directory of the
    file holding the line). Whitespace around a secret, such as a file's final
    newline, is ignored; nothing left is refused.
    """
    tokens = value.split()
    if not tokens or tokens[0].partition("=")[0] in SOURCES:
        raise ValueError(f"needs a URL (then optionally one of {_EXPECTED})")
    url, options = tokens[0], tokens[1:]
    if not options:
        return url, None
    if len(options) > 1:
        raise ValueError(f"takes at most one of {_EXPECTED} after the URL")
    source, eq, arg = options[0].partition("=")
    if not eq or source not in SOURCES:  # not quoted back: it may be a secret
        raise ValueError(f"after the URL, expected one of {_EXPECTED}")
    if not arg:
        raise ValueError(f"{source}= is empty")
    if source == "secret_file":
        path = os.path.join(base_dir, arg)
        key, what = read_secret_file(path), f"secret_file {path!r}"
    elif source == "secret_env":
        if arg not in environ:
            raise ValueError(f"secret_env: the environment variable {arg!r} is not set")
        # os.environ keeps undecodable bytes as surrogates: give them back as they were
        key, what = environ[arg].encode("utf-8", "surrogateescape"), f"secret_env {arg!r}"
    else:
        key, what = arg.encode(), "secret="
    if not key.strip():
        raise ValueError(f"{what} is empty: a webhook secret must not be")
    return url, Secret(key.strip())
