"""``--wait``: a command returns once gafferd did what it asked, told by the ``/watch`` feed.

gafferd answers a stop, restart or scale at once and does the work after
(graceful stops take up to the template's ``graceful_timeout``). A command
that should return only when that work is done opens the event feed *before*
it asks (so no event can be missed), then counts the events that mean "done":
the exits of the pids it stopped, or the spawns it asked for. A daemon
thread reads the feed; the command waits on a ``threading.Event`` with a bound,
so gafferd going silent never hangs the CLI.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import GafferError
from . import CommandFailed

if TYPE_CHECKING:
    from ..client import Client

#: Seconds added to a template's graceful timeout before a wait gives up.
MARGIN = 10.0
#: A feed heartbeat short enough that the reading thread notices a closed feed soon.
HEARTBEAT = 1


class Expect:
    """What "done" means: these pids gone (exit), and this many spawns of a template; or,
    with ``rollout``, the end of a rolling restart (``rollout_aborted`` is a failure)."""

    def __init__(
        self, name: str, exits: Iterable[int] = (), spawns: int = 0, *, rollout: bool = False
    ) -> None:
        self.name = name
        self.exits = set(exits)
        self.spawns = spawns
        self.rollout = rollout
        self.failed: str | None = None

    def seen(self, event: str, payload: dict[str, Any]) -> bool:
        """Count one event; True once everything expected happened (or cannot any more)."""
        if payload.get("name") != self.name or "." in event:
            return self.done
        if event == "rollout_done":
            self.rollout = False
        elif event == "rollout_aborted" and self.rollout:
            self.failed = f"{self.name}: rolling restart aborted: {payload.get('reason', '')}"
        elif event == "exit":
            self.exits.discard(payload.get("pid", -1))
        elif event == "spawn":
            self.spawns -= 1
        elif event in ("failed", "spawn_error", "delete"):
            why = payload.get("reason") or payload.get("error") or ""
            self.failed = f"{self.name}: {event} {why}".rstrip()
        return self.done

    @property
    def done(self) -> bool:
        return self.failed is not None or (not self.exits and self.spawns <= 0 and not self.rollout)

    def describe(self) -> str:
        parts = []
        if self.exits:
            parts.append(f"{len(self.exits)} to exit")
        if self.spawns > 0:
            parts.append(f"{self.spawns} to start")
        if self.rollout:
            parts.append("the rolling restart to end")
        return ", ".join(parts) or "done"


@contextlib.contextmanager
def watching(client: Client) -> Iterator[Callable[[list[Expect], float], None]]:
    """Open the event feed now; yield ``wait(expectations, timeout)`` for after the request.

    ``wait`` returns when every expectation is met; it raises ``CommandFailed``
    when the time is up or a template failed meanwhile.
    """
    feed = client.watch(".", heartbeat=HEARTBEAT)
    events: list[tuple[str, dict[str, Any]]] = []
    arrived = threading.Condition()
    ended: list[BaseException | None] = []

    def read() -> None:
        try:
            for item in feed:
                with arrived:
                    events.append(item)
                    arrived.notify_all()
        except BaseException as exc:  # reported by wait(), never as a thread traceback
            ended.append(exc)
        else:
            ended.append(None)
        with arrived:
            arrived.notify_all()

    threading.Thread(target=read, name="wait-events", daemon=True).start()

    def wait(expectations: list[Expect], timeout: float) -> None:
        import time

        deadline = time.monotonic() + timeout
        seen = 0
        with arrived:
            while True:
                for event, payload in events[seen:]:
                    for expect in expectations:
                        expect.seen(event, payload)
                seen = len(events)
                failed = [e.failed for e in expectations if e.failed]
                if failed:
                    raise CommandFailed("; ".join(failed))
                if all(e.done for e in expectations):
                    return
                left = deadline - time.monotonic()
                if ended or left <= 0:
                    break
                arrived.wait(left)
        pending = "; ".join(f"{e.name}: {e.describe()}" for e in expectations if not e.done)
        if ended and isinstance(ended[0], GafferError):
            raise ended[0]
        raise CommandFailed(f"still waiting after {timeout:.0f} s ({pending})")

    try:
        yield wait
    finally:
        feed.close()


def graceful_timeout(client: Client, name: str) -> float:
    """The template's graceful timeout (gafferd's default, 10 s, when it has none)."""
    value = client.get_process(name).get("graceful_timeout", 10.0)
    return float(value) if isinstance(value, int | float) else 10.0


# -- the waiting commands ----------------------------------------------------


def stop_and_wait(client: Client, name: str, *, spinner: bool) -> None:
    """Stop a template and return once each of its processes has exited."""
    from .progress import waiting

    grace = graceful_timeout(client, name)
    with watching(client) as wait:
        pids = client.pids(name)
        client.stop_process(name)
        what = f"stopping {name}: {len(pids)} to exit (graceful {grace:g} s)"
        with waiting(what, enabled=spinner and bool(pids)):
            wait([Expect(name, exits=pids)], grace + MARGIN)


def restart_and_wait(client: Client, name: str, *, spinner: bool) -> None:
    """Restart a template and return once fresh processes run and the old ones exited."""
    from .progress import waiting

    grace = graceful_timeout(client, name)
    with watching(client) as wait:
        pids = client.pids(name)
        wanted = client.status(name)["max_processes"]
        client.restart_process(name)
        what = f"restarting {name}: {wanted} to start, {len(pids)} to exit (graceful {grace:g} s)"
        with waiting(what, enabled=spinner):
            wait([Expect(name, exits=pids, spawns=wanted)], grace + MARGIN)


def roll_and_wait(
    client: Client,
    name: str,
    *,
    max_unavailable: int | None,
    ready_timeout: float | None,
    spinner: bool,
) -> None:
    """A rolling restart; returns once every pid was replaced, fails if the roll aborted."""
    import math

    from .progress import waiting

    grace = graceful_timeout(client, name)
    with watching(client) as wait:
        wanted = client.status(name)["max_processes"]
        client.restart_process(
            name, rolling=True, max_unavailable=max_unavailable, ready_timeout=ready_timeout
        )
        batch = max_unavailable or 1
        rounds = max(1, math.ceil(wanted / batch))
        per_round = (ready_timeout if ready_timeout is not None else 30.0) + grace
        what = f"rolling restart of {name}: {wanted} pids, {batch} at a time"
        with waiting(what, enabled=spinner):
            wait([Expect(name, rollout=True)], rounds * per_round + MARGIN)


def scale_and_wait(client: Client, name: str, delta: int, *, spinner: bool) -> int:
    """numprocesses += ``delta``; return the new value once the processes started or exited."""
    from .progress import waiting

    if delta == 0:
        return client.status(name)["max_processes"]
    grace = graceful_timeout(client, name) if delta < 0 else 0.0
    with watching(client) as wait:
        pids = client.pids(name)
        if delta > 0:
            value = client.add(name, delta)
            status = client.status(name)
            state = status.get("state") or ("running" if status["active"] else "stopped")
            expect = Expect(name, spawns=0 if state in ("stopped", "failed") else delta)
            what = f"scaling {name} to {value}: {delta} to start"
        else:
            value = client.sub(name, -delta)
            expect = Expect(name, exits=pids[: max(0, len(pids) - value)])
            what = f"scaling {name} to {value}: {len(expect.exits)} to exit (graceful {grace:g} s)"
        with waiting(what, enabled=spinner and not expect.done):
            wait([expect], grace + MARGIN)
    return value


def load_and_wait(client: Client, bodies: dict[str, dict[str, Any]], *, spinner: bool) -> None:
    """Create and start each template of ``bodies`` (name -> body), then wait for its processes."""
    from .progress import waiting

    with watching(client) as wait, waiting("loading", enabled=spinner) as status:
        for index, (name, body) in enumerate(bodies.items(), 1):
            status.update(f"creating {name} ({index}/{len(bodies)})")
            client.create_process({**body, "start": True})
        counts = {name: int(body.get("numprocesses", 1)) for name, body in bodies.items()}
        status.update(f"starting {sum(counts.values())} processes of {len(counts)} templates")
        wait([Expect(name, spawns=count) for name, count in counts.items()], MARGIN)
