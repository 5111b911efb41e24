"""The calls on templates, their processes and groups (spec 4): create, act, scale, inspect."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from ..errors import BadValue
from ..signals import parse_signal
from .bodies import Status
from .session import Session, segment


def signal_number(sig: int | str) -> int:
    """``15``, ``"15"``, ``"term"``, ``"SIGTERM"`` -> 15; an unknown name is a ValueError.

    The API wants numbers (spec 12, ``kill``): names are converted here, on the client, by
    the parser the manager uses. A number is sent as given: the server judges it.
    """
    if isinstance(sig, int):
        return sig
    try:
        return parse_signal(sig)
    except BadValue as exc:
        raise ValueError(exc.message) from None


class ProcessCalls(Session):
    """``/processes``, ``/status`` and ``/groups``: one method per call, as ``Client`` has them."""

    def processes(self) -> list[str]:
        """Template names in creation order."""
        return cast(list[str], self._json("GET", "/processes"))

    def running(self) -> list[int]:
        """Internal pids of every running OS process, in spawn order."""
        return cast(list[int], self._json("GET", "/processes", params={"running": "true"}))

    def get_process(self, name: str) -> dict[str, Any]:
        """The template as stored: name, cmd and exactly the keys it was created with."""
        return cast(dict[str, Any], self._json("GET", f"/processes/{segment(name)}"))

    def get_process_by_pid(self, pid: int) -> dict[str, Any]:
        """The template that owns running internal ``pid``."""
        return cast(dict[str, Any], self._json("GET", f"/processes/{int(pid)}"))

    def is_process(self, name_or_pid: str | int) -> bool:
        """HEAD: does the template exist (name), or is the process running (pid)?"""
        path = f"/processes/{segment(name_or_pid)}"
        return self.request("HEAD", path, ok_statuses=(404,)).status_code == 200

    def create_process(self, body: dict[str, Any]) -> None:
        """``POST /processes`` with a full template body (``start`` defaults to true)."""
        self.request("POST", "/processes", body=body)

    def add_process(self, name: str, cmd: str, *, start: bool = True, **settings: Any) -> None:
        """Create template ``name``; raises ``Conflict`` if it exists."""
        self.create_process({"name": name, "cmd": cmd, "start": start, **settings})

    def update_process(self, name: str, cmd: str, *, create: bool = False, **settings: Any) -> None:
        """``PUT /processes/<name>``: replace the template and restart it (spec 4.5 [R]).

        With ``create=True`` a missing template is created instead, like the
        original client's update.
        """
        if create and not self.is_process(name):
            self.add_process(name, cmd, **settings)
            return
        body = {"cmd": cmd, **settings}
        self.request("PUT", f"/processes/{segment(name)}", body=body)

    def remove_process(self, name: str) -> None:
        """Stop and remove a template."""
        self.request("DELETE", f"/processes/{segment(name)}")

    def _action(self, name: str, action: str, arg: str | int | None = None, query: str = "") -> Any:
        path = f"/processes/{segment(name)}/{action}"
        if arg is not None:
            path += f"/{segment(arg)}"
        return self._json("POST", path + (f"?{query}" if query else ""))

    def start_process(self, name: str) -> None:
        self._action(name, "_start")

    def stop_process(self, name: str) -> None:
        self._action(name, "_stop")

    def restart_process(
        self,
        name: str,
        *,
        rolling: bool = False,
        max_unavailable: int | None = None,
        ready_timeout: float | None = None,
    ) -> None:
        """Restart a template; ``rolling``: replace its pids a few at a time, each old one
        stopped once its replacement is ready (``max_unavailable`` at once, default 1; a
        replacement not ready in ``ready_timeout`` seconds, default 30, aborts the roll)."""
        query = {"rolling": "1"} if rolling else {}
        if rolling and max_unavailable is not None:
            query["max_unavailable"] = str(int(max_unavailable))
        if rolling and ready_timeout is not None:
            query["ready_timeout"] = repr(float(ready_timeout))
        self._action(name, "_restart", query=urlencode(query))

    def add(self, name: str, n: int = 1) -> int:
        """numprocesses += n; returns the new numprocesses."""
        return int(self._action(name, "_add", int(n))["numprocesses"])

    def sub(self, name: str, n: int = 1) -> int:
        """numprocesses -= n (the server clamps at 0); returns the new numprocesses."""
        return int(self._action(name, "_sub", int(n))["numprocesses"])

    def send_signal(self, name_or_pid: str | int, sig: int | str) -> None:
        """Signal every process of a template, or one process by internal pid."""
        self._action(str(name_or_pid), "_signal", signal_number(sig))

    def pids(self, name: str) -> list[int]:
        """Internal pids of the template's running processes, oldest first."""
        body = self._json("GET", f"/processes/{segment(name)}/_pids")
        return cast(list[int], body["pids"])

    def status(self, name: str) -> Status:
        return cast(Status, self._json("GET", f"/status/{segment(name)}"))

    def stop_pid(self, pid: int) -> None:
        """Stop one OS process; the template respawns a replacement (spec 4.6)."""
        self._json("POST", f"/processes/{int(pid)}/_stop")

    def rotate_logs(self, name: str) -> dict[str, Any]:
        """Reopen the template's log files (our extension: ``_rotate``)."""
        return cast(dict[str, Any], self._action(name, "_rotate"))

    def logs(self, name: str, label: str = "stdout", tail: int | None = None) -> bytes:
        """The end of a template's log file (our extension: ``GET .../_logs``)."""
        params: dict[str, str | int] = {"label": label}
        if tail is not None:
            params["tail"] = tail
        return self.request("GET", f"/processes/{segment(name)}/_logs", params=params).content

    # -- groups --------------------------------------------------------------

    def groups(self) -> list[str]:
        return cast(list[str], self._json("GET", "/groups"))

    def get_group(self, group: str) -> list[str]:
        """Template names in the group, in insertion order."""
        return cast(list[str], self._json("GET", f"/groups/{segment(group)}"))

    def start_group(self, group: str) -> None:
        self._json("POST", f"/groups/{segment(group)}/_start")

    def stop_group(self, group: str) -> None:
        self._json("POST", f"/groups/{segment(group)}/_stop")

    def restart_group(self, group: str) -> None:
        self._json("POST", f"/groups/{segment(group)}/_restart")

    def remove_group(self, group: str) -> None:
        self._json("DELETE", f"/groups/{segment(group)}")
