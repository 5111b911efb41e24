"""In-process cost of authentication: the token lookup alone, and a whole request through the app.

Run by `auth_overhead.py` as a subprocess with the project's `.venv` python: mounting the API
needs a gevent-patched process, and the bench driver stays unpatched, so this entry point
patches first (like `sse_clients.py`). Nothing listens on a socket and no child is spawned.

    lookup:  `Credentials.authenticate` with 1 and 1,000 `[token:NAME]` entries configured, for
             a known and an unknown token (timeit; CPU microseconds per call).
    request: `GET /ping` and `GET /processes` through Flask's test client on apps without
             tokens and with a read token (see `requests`), in rotating batches so drift hits
             each alike. The differences are what the guard adds to a request with auth on,
             without the network's and the HTTP client's noise.

Prints one JSON object on stdout.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import ipaddress  # noqa: E402
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
    timings = timeit.repeat(func, timer=time.process_time, number=number, repeat=repeat)
    runs = [t / number * 1e6 for t in timings]
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
    """Mean CPU microseconds of `count` test-client requests for `path` (each must answer 200).

    CPU time of this process, not wall time: on a machine shared with other work, time the
    scheduler gives to others would otherwise land in whichever set-up was running.
    """
    start = time.process_time()
    for _ in range(count):
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
    return (time.process_time() - start) / count * 1e6


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
        # The best batch of each set-up is the one least disturbed by other work on the
        # machine (timeit's reasoning); the median of the paired differences is the check.
        best = {mode: min(values) for mode, values in samples.items()}
        paired = {
            "on_minus_off": [a - b for a, b in zip(samples["on"], samples["off"], strict=True)],
            "on_minus_cors": [a - b for a, b in zip(samples["on"], samples["cors"], strict=True)],
        }
        results[path] = {
            **{f"{mode}_best_us": value for mode, value in best.items()},
            **{f"{mode}_median_us": statistics.median(v) for mode, v in samples.items()},
            "on_minus_off_best_us": best["on"] - best["off"],
            "on_minus_cors_best_us": best["on"] - best["cors"],
            **{f"{key}_paired_median_us": statistics.median(v) for key, v in paired.items()},
            "batches": batches,
            "batch": batch,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=100_000, help="calls per timeit run")
    parser.add_argument("--repeat", type=int, default=7, help="timeit runs")
    parser.add_argument("--batches", type=int, default=50, help="request batches per mode")
    parser.add_argument("--batch", type=int, default=200, help="requests per batch")
    args = parser.parse_args()
    result = {
        "lookup": lookups(args.number, args.repeat),
        # What the guard does instead when no token is configured: is the client on loopback?
        "loopback_check": per_call_us(
            lambda: ipaddress.ip_address("127.0.0.1").is_loopback, args.number, args.repeat
        ),
        "request": requests(args.batches, args.batch),
        "python": sys.version.split()[0],
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
