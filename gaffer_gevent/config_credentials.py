"""The ``[token:NAME]`` and ``[client:SUBJECT]`` sections: who may call gafferd, as what.

Only a token's hash is ever in a file (``gafferd token NAME`` prints it); a
client certificate's subject is matched after TLS verified it. ``[DEFAULT]``
never applies here: a role must be written where it is granted.
"""

from __future__ import annotations

from .auth import ClientSpec, Role, TokenSpec, parse_hash, parse_scope
from .ini_source import IniSource

TOKEN_KEYS = frozenset({"role", "hash", "scope"})
CLIENT_KEYS = frozenset({"role", "scope"})


def parse_credentials(src: IniSource) -> tuple[list[TokenSpec], list[ClientSpec]]:
    """The ``[token:NAME]`` and ``[client:SUBJECT]`` sections."""
    tokens: list[TokenSpec] = []
    clients: list[ClientSpec] = []
    seen_hashes: dict[bytes, str] = {}
    for section in src.sections:
        kind, _, name = section.partition(":")
        if kind not in ("token", "client"):
            continue
        own = src.sections[section]
        for key in own:  # [DEFAULT] never applies to credentials
            if key not in (TOKEN_KEYS if kind == "token" else CLIENT_KEYS):
                raise src.error("unknown key", section, key)
        if "role" not in own:
            raise src.error("needs a role (read, stdin, operate or admin)", section, "role")
        role = src.convert(section, own, "role", Role.parse, Role.READ)
        scope = parse_scope(own.get("scope", ""))
        if kind == "client":
            clients.append(ClientSpec(name, role, scope))
            continue
        if "hash" not in own:
            raise src.error("needs hash = sha256:<hex> (gafferd token NAME prints it)", section)
        digest = src.convert(section, own, "hash", parse_hash, b"")
        if digest in seen_hashes:
            raise src.error(f"same hash as [{seen_hashes[digest]}]", section, "hash")
        seen_hashes[digest] = section
        tokens.append(TokenSpec(name, role, digest, scope))
    return tokens, clients
