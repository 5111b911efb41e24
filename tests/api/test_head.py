"""HEAD is a GET without a body: it never changes anything, and it sends the GET's headers.

Flask answers HEAD on every GET route. ``/processes/<name>/<action>`` serves GET
(``_pids``, ``_logs``) and POST (``_start``, ``_stop``...) in one view, and HEAD
used to fall through to the POST branch: a read-only token stopped, scaled and
started templates, and stopped single processes.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gaffer_gevent.manager import Manager
from tests.api.secure import SecureServer, secure_server
from tests.api.support import create


@pytest.fixture
def secure(manager: Manager) -> Iterator[SecureServer]:
    with secure_server(manager) as s:
        yield s


@pytest.mark.parametrize("action", ["_stop", "_restart", "_add", "_add/3", "_sub", "_start",
                                    "_signal/STOP", "_rotate"])  # fmt: skip
def test_head_on_a_template_action_changes_nothing(secure: SecureServer, action: str) -> None:
    with secure.admin() as admin, secure.client(secure.tokens["read"]) as reader:
        create(admin, "web")
        before = admin.get("/processes/web/_pids").json()["pids"]
        r = reader.head(f"/processes/web/{action}")
        assert r.status_code == 404  # resource_not_found: as GET, which has no such read
        status = admin.get("/status/web").json()
        assert (status["active"], status["running"], status["max_processes"]) == (True, 1, 1)
        assert (status["state"], status["restarts"]) == ("running", 0)
        assert admin.get("/processes/web/_pids").json()["pids"] == before
        assert secure.manager.get_process(before[0]).alive


@pytest.mark.parametrize("action", ["_stop", "_signal/KILL"])
def test_head_on_a_pid_action_changes_nothing(secure: SecureServer, action: str) -> None:
    with secure.admin() as admin, secure.client(secure.tokens["read"]) as reader:
        create(admin, "web")
        (pid,) = admin.get("/processes/web/_pids").json()["pids"]
        r = reader.head(f"/processes/{pid}/{action}")
        assert r.status_code == 405  # as GET: a pid has no reads
        assert admin.get("/processes/web/_pids").json()["pids"] == [pid]
        assert secure.manager.get_process(pid).alive


def test_head_reads_still_answer_as_get(client: httpx.Client) -> None:
    create(client, "web")
    assert client.head("/processes/web/_pids").status_code == 200
    assert client.head("/processes/nope/_pids").status_code == 404


@pytest.mark.parametrize("segment", ["web", "nope", "1", "999"])
def test_head_of_a_template_or_pid_has_the_get_content_type_and_no_body(
    client: httpx.Client, segment: str
) -> None:
    create(client, "web")
    r = client.head(f"/processes/{segment}")
    assert r.status_code == (200 if segment in ("web", "1") else 404)
    assert r.headers["content-type"] == "application/json"  # as the GET's, not text/html
    assert r.content == b""
