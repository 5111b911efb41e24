"""In-process cost of authentication: the token lookup alone, and a whole request through the app.

Run by `auth_overhead.py` as a subprocess with the project's `.venv` python: mounting the API
needs a gevent-patched process, and the bench driver stays unpatched, so this entry point
patches first (like `sse_clients.py`). Nothing listens on a socket and no child is spawned.

    lookup:  `Credentials.authenticate` with 1 and 1,000 `[token:NAME]` entries configured, for
             a known and an unknown token (timeit; microseconds per call).
    request: `GET /ping` and `GET /processes` through Flask's test client on apps without
             tokens and with a read token (see `requests`), in rotating batches so drift hits
             each alike. The differences are what the guard adds to a request with auth on,
             without the network's and the HTTP client's noise.

Prints one JSON object on stdout.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402
from typing import Any  # noqa: E402

from flask.testing import FlaskClient  # noqa: E402

from gaffer_gevent.api import create_app  # noqa: E402
from gaffer_gevent.auth import (  # noqa: E402
    Credentials,
    Role,
    TokenSpec,
    hash_token,
    mint_token,
    parse_hash,
)


def credentials(count: int) -> tuple[Credentials, str]:
    """A store of `count` read tokens and one of those tokens (the last one added)."""
    tokens = [mint_token() for _ in range(count)]
    specs = [
        TokenSpec(f"t{index}", Role.READ, parse_hash(hash_token(token)))
        for index, token in enumerate(tokens)
    ]
    return Credentials(specs), tokens[-1]


def per_call_us(func: Any, number: int, repeat: int) -> dict[str, float]:
    """Microseconds per call: best and median of `repeat` timings of `number` calls."""
    runs = [t / number * 1e6 for t in timeit.repeat(func, number=number, repeat=repeat)]
    return {"best_us": min(runs), "median_us": statistics.median(runs)}


def lookups(number: int, repeat: int) -> list[dict[str, Any]]:
    """`authenticate` for a known and an unknown token, with 1 and 1,000 tokens configured."""
    results = []
    for count in (1, 1000):
        store, token = credentials(count)
        unknown = mint_token()
        if store.authenticate(token) is None or store.authenticate(unknown) is not None:
            raise RuntimeError("the credential store does not behave as expected")
        results.append(
            {
                "tokens": count,
                "known": per_call_us(lambda s=store, t=token: s.authenticate(t), number, repeat),
                "unknown": per_call_us(
                    lambda s=store, t=unknown: s.authenticate(t), number, repeat
                ),
            }
        )
    return results


def request_us(client: FlaskClient, path: str, headers: dict[str, str], count: int) -> float:
    """Mean microseconds of `count` test-client requests for `path` (each must answer 200)."""
    start = time.perf_counter()
    for _ in range(count):
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
    return (time.perf_counter() - start) / count * 1e6


def requests(batches: int, batch: int) -> dict[str, Any]:
    """Whole requests through the app in three set-ups, in rotating batches.

    `off`: no tokens. `cors`: no tokens but `cors_origins = *`, which is what auth on implies
    by default, so that `on - cors` is the token check alone and `cors - off` the four CORS
    headers. `on`: one read token. Every request carries the same `Authorization` header
    (ignored without tokens), so the test client's own work is the same in each set-up.
    """
    store, token = credentials(1)
    headers = {"Authorization": f"Bearer {token}"}
    clients = {
        "off": create_app().test_client(),
        "cors": create_app(cors_origins=["*"]).test_client(),
        "on": create_app(credentials=store).test_client(),
    }
    results: dict[str, Any] = {}
    for path in ("/ping", "/processes"):
        samples: dict[str, list[float]] = {mode: [] for mode in clients}
        for client in clients.values():
            request_us(client, path, headers, batch)  # warm-up
        modes = list(clients)
        for index in range(batches):
            for mode in modes[index % 3 :] + modes[: index % 3]:  # rotate who goes first
                samples[mode].append(request_us(clients[mode], path, headers, batch))
        token_check = [on - cors for cors, on in zip(samples["cors"], samples["on"], strict=True)]
        total = [on - off for off, on in zip(samples["off"], samples["on"], strict=True)]
        results[path] = {
            **{f"{mode}_us": statistics.median(values) for mode, values in samples.items()},
            "on_minus_off_us": statistics.median(total),
            "on_minus_cors_us": statistics.median(token_check),
            "on_minus_cors_range_us": [min(token_check), max(token_check)],
            "batches": batches,
            "batch": batch,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=100_000, help="calls per timeit run")
    parser.add_argument("--repeat", type=int, default=7, help="timeit runs")
    parser.add_argument("--batches", type=int, default=20, help="request batches per mode")
    parser.add_argument("--batch", type=int, default=500, help="requests per batch")
    args = parser.parse_args()
    result = {
        "lookup": lookups(args.number, args.repeat),
        "request": requests(args.batches, args.batch),
        "python": sys.version.split()[0],
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
