"""Bearer tokens: where a client's token comes from, and the check before it goes on the wire.

gafferd mints URL-safe tokens; whatever a user pastes, the client sends only
visible ASCII, so a token can never split a header or smuggle a second one.
The token itself is never part of a message, an exception or a repr: errors
here name the option or the file, not the value.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import TokenError

#: The environment variable both CLIs (and the websocket example) read a token from.
TOKEN_ENV = "GAFFER_TOKEN"
#: Far above any token gafferd mints (43 characters for 256 bits); a header, not a file.
MAX_TOKEN_LENGTH = 4096


def check_token(token: str, source: str = "the token") -> str:
    """``token`` if it can be sent as ``Authorization: Bearer <token>``; else a TokenError.

    ``source`` names where it came from (``--token``, a file, ``GAFFER_TOKEN``)
    for the message, which never quotes the token.
    """
    if not token:
        raise TokenError(f"{source} is empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError(f"{source} is longer than {MAX_TOKEN_LENGTH} characters")
    if not all("\x21" <= char <= "\x7e" for char in token):
        raise TokenError(f"{source} must be printable ASCII without spaces or line breaks")
    return token


def read_token_file(path: str) -> str:
    """The token in the first line of ``path``, stripped of surrounding whitespace."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline(MAX_TOKEN_LENGTH + 2)
    except UnicodeDecodeError:
        raise TokenError(f"token file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise TokenError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    return check_token(first.strip(), f"token file {path}")


def resolve_token(
    token: str | None, token_file: str | None, environ: Mapping[str, str]
) -> str | None:
    """The token to send: ``--token``, else ``--token-file``, else ``GAFFER_TOKEN``, else None.

    An empty ``GAFFER_TOKEN`` counts as unset (``GAFFER_TOKEN= gafferctl ...``
    is how a shell unsets it for one command); an empty ``--token`` is an error.
    """
    if token is not None:
        return check_token(token, "--token")
    if token_file is not None:
        return read_token_file(token_file)
    from_env = environ.get(TOKEN_ENV, "")
    return check_token(from_env, TOKEN_ENV) if from_env else None
