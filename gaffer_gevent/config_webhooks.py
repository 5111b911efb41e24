"""The ``[webhooks]`` section: which events are POSTed where, and the secret that signs them."""

from __future__ import annotations

import os

from .ini_source import IniSource
from .signing import Secret, parse_hook


def parse_webhooks(src: IniSource) -> tuple[list[tuple[str, str]], dict[str, Secret]]:
    """``[webhooks]``: ``event = URL [secret_file=PATH | secret_env=NAME | secret=VALUE]``.

    Returns the (event, URL) pairs in file order and each signed URL's secret.
    One URL has one secret (or none) on every line naming it: it is one receiver.
    """
    hooks: list[tuple[str, str]] = []
    secrets: dict[str, Secret] = {}
    first: dict[str, tuple[str, Secret | None]] = {}
    for event, value in src.sections.get("webhooks", {}).items():
        origin = src.origins.get(("webhooks", event), src.path)
        base_dir = os.path.dirname(os.path.abspath(origin))
        try:
            url, secret = parse_hook(value, base_dir=base_dir, environ=os.environ)
        except ValueError as exc:
            raise src.error(str(exc), "webhooks", event) from None
        other, other_secret = first.setdefault(url, (event, secret))
        if other_secret != secret:
            message = f"the same URL as {other!r} needs the same secret (or none on both)"
            raise src.error(message, "webhooks", event)
        hooks.append((event, url))
        if secret is not None:
            secrets[url] = secret
    return hooks, secrets
