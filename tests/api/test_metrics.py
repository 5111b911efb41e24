"""GET /metrics against real children: every name, type and label set; counters that move.

Scrapes are parsed with prometheus_client's own parsers (text and OpenMetrics),
so what is checked is what Prometheus would read.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import websocket
import yaml
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from gaffer_gevent.api import create_app
from gaffer_gevent.manager import Manager
from gaffer_gevent.process import ProcessState
from gaffer_gevent.webhooks import WebhookDispatcher
from tests.api.support import ECHO, SLEEPER, create, create_one, error
from tests.conftest import LiveServer, managed, serving
from tests.gafferd import Gafferd
from tests.helpers import PYTHON, Receiver, child, free_port, wait_for, write_config

EXAMPLES = Path(__file__).parents[2] / "examples"
MB = 1024 * 1024

#: family name -> (type, label names) of every family /metrics yields with a template around.
EXPECTED = {
    "gaffer_build_info": ("gauge", {"version"}),
    "gaffer_processes": ("gauge", {"template", "state"}),
    "gaffer_process_restarts": ("counter", {"template", "reason"}),
    "gaffer_process_exits": ("counter", {"template", "outcome"}),
    "gaffer_process_cpu_seconds": ("counter", {"template"}),
    "gaffer_process_resident_memory_bytes": ("gauge", {"template"}),
    "gaffer_process_open_fds": ("gauge", {"template"}),
    "gaffer_stream_bytes": ("counter", {"template", "label"}),
    "gaffer_stream_dropped_bytes": ("counter", {"template", "label"}),
    "gaffer_stream_subscribers": ("gauge", {"template", "label"}),
    "gaffer_http_requests": ("counter", {"route", "method", "status"}),
    "gaffer_http_request_duration_seconds": ("histogram", {"route"}),
    "gaffer_connections": ("gauge", {"kind"}),
    "gaffer_webhook_deliveries": ("counter", {"outcome"}),
    "process_cpu_seconds": ("counter", set()),
    "process_resident_memory_bytes": ("gauge", set()),
    "process_open_fds": ("gauge", set()),
    "process_start_time_seconds": ("gauge", set()),
}
PID_FAMILIES = {"gaffer_pid_cpu_seconds", "gaffer_pid_resident_memory_bytes", "gaffer_pid_open_fds"}
TREE = {**child("tree_alloc"), "redirect_output": ["out"]}


class Scrape:
    """One parsed scrape: family name -> (type, samples as (name, labels, value))."""

    def __init__(self, text: str, parse: object = text_string_to_metric_families) -> None:
        self.text = text
        self.families = {f.name: f for f in parse(text)}  # type: ignore[operator]

    def value(self, sample: str, **labels: str) -> float:
        """The one sample called ``sample`` whose labels include ``labels`` (0 if none)."""
        found = [
            s.value
            for f in self.families.values()
            for s in f.samples
            if s.name == sample and labels.items() <= s.labels.items()
        ]
        assert len(found) <= 1, (sample, labels, found)
        return found[0] if found else 0.0

    def series(self) -> int:
        return sum(len(f.samples) for f in self.families.values())

    def sample_names(self) -> set[str]:
        return {s.name for f in self.families.values() for s in f.samples}


def scrape(client: httpx.Client, **params: str) -> Scrape:
    r = client.get("/metrics", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(r.text)


def test_every_name_type_and_label_set_with_real_children(
    client: httpx.Client, server: LiveServer
) -> None:
    create_one(client, "tree", TREE)
    create_one(client, "echo", ECHO)
    s = scrape(client)
    for name, (kind, labels) in EXPECTED.items():
        family = s.families.get(name)
        assert family is not None, f"{name} missing"
        assert family.type == kind, name
        assert family.samples, name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample)
    ours = {n for n in s.families if n.startswith("gaffer_")}
    assert ours == {n for n in EXPECTED if n.startswith("gaffer_")}  # no per-pid by default
    states = {sample.labels["state"] for sample in s.families["gaffer_processes"].samples}
    assert states == {state.value for state in ProcessState}
    assert s.value("gaffer_processes", template="tree", state="running") == 1
    assert s.value("gaffer_stream_bytes_total", template="echo", label="out") == 0
    assert s.value("gaffer_build_info", version=__import__("gaffer_gevent").__version__) == 1
    assert s.value("process_resident_memory_bytes") > 0


def test_a_grandchilds_memory_counts_for_its_template(
    client: httpx.Client, server: LiveServer
) -> None:
    """The leader is a small Python; its grandchild holds 50 MB: the template pays for both."""
    pid = create_one(client, "tree", TREE)
    leader = psutil.Process(server.manager.get_process(pid).os_pid)

    def whole_tree() -> float:
        rss = scrape(client).value("gaffer_process_resident_memory_bytes", template="tree")
        return rss if rss >= leader.memory_info().rss + 50 * MB else 0

    wait_for(whole_tree, timeout=20)
    (grandchild,) = leader.children(recursive=True)
    s = scrape(client, per_pid="1")
    per_pid = s.value("gaffer_pid_resident_memory_bytes", template="tree", pid=str(pid))
    assert per_pid >= grandchild.memory_info().rss + leader.memory_info().rss - 5 * MB
    assert s.value("gaffer_process_open_fds", template="tree") >= 6  # 3 each, at least
    assert s.value("gaffer_process_cpu_seconds_total", template="tree") > 0


def test_a_sigkill_moves_the_exit_and_restart_counters(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "web", SLEEPER)
    os_pid = server.manager.get_process(pid).os_pid
    os.kill(os_pid, signal.SIGKILL)

    def moved() -> Scrape | None:
        s = scrape(client)
        return (
            s if s.value("gaffer_process_restarts_total", template="web", reason="exit") else None
        )

    s = wait_for(moved)
    assert s.value("gaffer_process_restarts_total", template="web", reason="exit") == 1
    assert s.value("gaffer_process_exits_total", template="web", outcome="signal") == 1
    assert s.value("gaffer_process_exits_total", template="web", outcome="failure") == 0
    assert s.value("gaffer_process_restarts_total", template="web", reason="api") == 0
    assert s.value("gaffer_processes", template="web", state="running") == 1


def test_a_liveness_restart_is_counted_as_liveness_not_as_exit(client: httpx.Client) -> None:
    """A pid its liveness check declared unhealthy is stopped by gaffer, then respawned."""
    liveness = {"tcp": f"127.0.0.1:{free_port()}", "period": 0.05, "failure_threshold": 1}
    create(client, "dead", cmd="sleep", args=["30"], liveness=liveness)

    def moved() -> Scrape | None:
        s = scrape(client)
        return s if s.value("gaffer_process_restarts_total", reason="liveness") else None

    s = wait_for(moved)
    assert s.value("gaffer_process_restarts_total", template="dead", reason="liveness") >= 1
    assert s.value("gaffer_process_restarts_total", template="dead", reason="exit") == 0


def test_an_api_restart_is_counted_as_api_not_as_exit(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "web")
    assert client.post("/processes/web/_restart").status_code == 200

    def moved() -> Scrape | None:
        s = scrape(client)
        done = s.value("gaffer_process_exits_total", template="web", outcome="signal")
        return s if done and s.value("gaffer_process_restarts_total", reason="api") else None

    s = wait_for(moved)
    assert s.value("gaffer_process_restarts_total", template="web", reason="api") == 1
    assert s.value("gaffer_process_restarts_total", template="web", reason="exit") == 0


def test_a_group_restart_counts_for_each_template_of_the_group(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "site:web")
    create(client, "site:worker")
    create(client, "alone")
    assert client.post("/groups/site/_restart").status_code == 200
    s = wait_for(lambda: (s := scrape(client)).value(
        "gaffer_process_restarts_total", template="site:worker", reason="api") and s)  # fmt: skip
    assert s.value("gaffer_process_restarts_total", template="site:web", reason="api") == 1
    assert s.value("gaffer_process_restarts_total", template="site:worker", reason="api") == 1
    assert s.value("gaffer_process_restarts_total", template="alone", reason="api") == 0


def test_flapping_restarts_are_counted_as_flapping(
    client: httpx.Client, server: LiveServer
) -> None:
    """A child that exits at once trips the flapping policy, which retries after its pause."""
    flapping = {"attempts": 2, "window": 5, "retry_in": 0.2, "max_retry": 2}
    body = {"name": "flap", "cmd": "false", "flapping": flapping}
    assert client.post("/processes", json=body).status_code == 200

    def flapped() -> Scrape | None:
        s = scrape(client)
        return s if s.value("gaffer_process_restarts_total", reason="flapping") else None

    s = wait_for(flapped, timeout=20)
    assert s.value("gaffer_process_exits_total", template="flap", outcome="failure") >= 2


def test_the_http_histogram_moves_and_routes_are_url_rules(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "web")
    before = scrape(client)
    for _ in range(5):
        assert client.get("/processes/web").status_code == 200
    assert client.get("/no/such/path/secret-token-here").status_code == 404
    assert client.request("BREW", "/processes").status_code == 405
    after = scrape(client)
    rule = "/processes/<segment>"
    count = "gaffer_http_request_duration_seconds_count"
    assert after.value(count, route=rule) == before.value(count, route=rule) + 5
    assert after.value("gaffer_http_requests_total", route=rule, method="GET", status="200") == 5
    assert after.value("gaffer_http_request_duration_seconds_bucket", route=rule, le="+Inf") == 5
    assert after.value("gaffer_http_requests_total", route="<unmatched>", status="404") == 1
    assert after.value("gaffer_http_requests_total", method="other", status="405") == 1
    assert "secret-token-here" not in after.text and "BREW" not in after.text
    assert after.value("gaffer_http_request_duration_seconds_sum", route=rule) > 0


def test_openmetrics_when_the_scraper_asks_for_it(client: httpx.Client, server: LiveServer) -> None:
    create(client, "web")
    accept = "application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4; q=0.5"
    r = client.get("/metrics", headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert r.text.endswith("# EOF\n")
    s = Scrape(r.text, openmetrics_families)
    assert s.families["gaffer_process_restarts"].type == "counter"
    assert s.value("gaffer_processes", template="web", state="running") == 1
    plain = client.get("/metrics", headers={"Accept": "text/html"})
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# EOF" not in plain.text


@pytest.mark.parametrize(
    "query",
    ["per_pid=NaN", "per_pid=2", "per_pid=", "per_pid=1&per_pid=0", "per_pid=%0a1",
     "per_pid=TRUE", f"per_pid={'9' * 5000}", "per_pid=..%2F..%2Fetc"],
)  # fmt: skip
def test_hostile_query_parameters_get_a_json_400(client: httpx.Client, query: str) -> None:
    error(client.get(f"/metrics?{query}"), 400, "bad_value")


def test_per_pid_series_only_when_asked(client: httpx.Client, server: LiveServer) -> None:
    create(client, "web", numprocesses=2)
    pids = {str(p) for p in server.manager.pids("web")}
    assert not PID_FAMILIES & set(scrape(client).families)
    assert not PID_FAMILIES & set(scrape(client, per_pid="0").families)
    s = scrape(client, per_pid="true")
    for name in PID_FAMILIES:
        assert {sample.labels["pid"] for sample in s.families[name].samples} == pids
    assert not any("pid" in sample.labels for sample in s.families["gaffer_processes"].samples)


def test_series_stay_bounded_over_a_thousand_pids_and_go_with_their_template(
    client: httpx.Client, server: LiveServer
) -> None:
    """Ten restarts of 100 pids: 1,000 pids come and go, the series count does not move."""
    body = {"name": "many", "cmd": "sleep", "args": ["600"], "numprocesses": 100,
            "redirect_output": ["out", "err"]}  # fmt: skip
    assert client.post("/processes", json=body).status_code == 200
    assert client.post("/processes", json={"name": "other", **SLEEPER}).status_code == 200
    manager = server.manager

    def replaced(old: set[int]) -> bool:
        pids = set(manager.pids("many"))
        return len(pids) == 100 and not manager.stopping and not old & pids

    wait_for(lambda: replaced(set()), timeout=30)
    first = scrape(client)
    seen: set[int] = set(manager.pids("many"))
    for _ in range(9):
        old = set(manager.pids("many"))
        assert client.post("/processes/many/_restart").status_code == 200
        wait_for(lambda: replaced(old), timeout=30)  # noqa: B023
        seen |= set(manager.pids("many"))
    assert len(seen) == 1000
    wait_for(
        lambda: scrape(client).value("gaffer_process_exits_total", template="many",
                                     outcome="signal") == 900, timeout=30,
    )  # fmt: skip
    last = scrape(client)
    assert last.value("gaffer_process_restarts_total", template="many", reason="api") == 9
    http = "gaffer_http_re"  # more routes were called meanwhile: compare the rest
    assert _series(last, but=http) == _series(first, but=http)
    assert not re.search(r'pid="', last.text)

    assert client.delete("/processes/many").status_code == 200
    wait_for(lambda: "many" not in manager.states and not manager.stopping, timeout=30)
    gone = scrape(client)
    assert 'template="many"' not in gone.text
    assert 'template="other"' in gone.text
    assert client.post("/processes", json={**body, "numprocesses": 1}).status_code == 200
    again = scrape(client)
    assert again.value("gaffer_process_exits_total", template="many", outcome="signal") == 0
    assert again.value("gaffer_process_restarts_total", template="many", reason="api") == 0


def _series(s: Scrape, but: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for f in s.families.values()
        for sample in f.samples
        if not sample.name.startswith(but)
    }


def test_stream_bytes_outlive_their_pid_and_feeds_are_counted(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "echo", ECHO)
    with client.stream("GET", f"/streams/{pid}/out", params={"feed": "eventsource"}) as feed:
        assert client.post(f"/streams/{pid}/stdin", content=b"hello\n").status_code == 200
        lines = feed.iter_lines()
        wait_for(lambda: any("hello" in line for line in lines), timeout=10)
        s = scrape(client)
        assert s.value("gaffer_stream_bytes_total", template="echo", label="out") == 6
        assert s.value("gaffer_stream_subscribers", template="echo", label="out") == 1
        assert s.value("gaffer_connections", kind="sse") == 1
        assert s.value("gaffer_connections", kind="http") == 1  # this scrape
    wait_for(lambda: scrape(client).value("gaffer_connections", kind="sse") == 0)
    os.kill(server.manager.get_process(pid).os_pid, signal.SIGKILL)
    wait_for(lambda: scrape(client).value("gaffer_process_restarts_total", reason="exit") == 1)
    s = scrape(client)
    assert s.value("gaffer_stream_bytes_total", template="echo", label="out") == 6
    assert s.value("gaffer_stream_subscribers", template="echo", label="out") == 0


def test_webhook_deliveries_are_counted(
    client: httpx.Client, server: LiveServer, receiver: Receiver
) -> None:
    dispatcher = WebhookDispatcher(server.manager.bus, [("create", receiver.url)])
    dispatcher.start()
    server.app.extensions["gaffer"].extra["webhooks"] = dispatcher  # type: ignore[attr-defined]
    try:
        create(client, "web")
        wait_for(lambda: scrape(client).value("gaffer_webhook_deliveries_total",
                                              outcome="delivered") == 1)  # fmt: skip
        assert scrape(client).value("gaffer_webhook_deliveries_total", outcome="failed") == 0
    finally:
        dispatcher.stop(1.0)


@pytest.fixture
def second() -> Iterator[LiveServer]:
    for manager in managed():
        with serving(create_app(manager), manager) as live:
            yield live


def test_two_apps_in_one_process_keep_their_own_figures(
    client: httpx.Client, server: LiveServer, second: LiveServer
) -> None:
    with httpx.Client(base_url=second.url, timeout=10) as other:
        create(client, "mine")
        for _ in range(3):
            other.get("/processes")
        one, two = scrape(client), scrape(other)
    assert 'template="mine"' in one.text and 'template="mine"' not in two.text
    rule = {"route": "/processes", "method": "GET", "status": "200"}
    assert two.value("gaffer_http_requests_total", **rule) == 3
    assert one.value("gaffer_http_requests_total", **rule) == 0
    assert not any(n.startswith("gaffer_") for n in REGISTRY._names_to_collectors)


def test_a_scoped_token_sees_only_its_templates() -> None:
    from tests.api.secure import secure_server

    manager = Manager()
    try:
        with secure_server(manager) as s:
            inside, outside = s.template(True), s.template(False)
            with s.client(s.tokens["scoped"]) as scoped:
                text = scope_text = scoped.get("/metrics").text
            assert f'template="{inside}"' in scope_text and f'template="{outside}"' not in text
    finally:
        manager.stop_all(timeout=10)
        manager.bus.close()


def test_every_query_of_the_grafana_dashboard_names_an_exported_metric(
    client: httpx.Client, server: LiveServer
) -> None:
    create_one(client, "echo", ECHO)
    client.get("/processes")
    exported = scrape(client, per_pid="1").sample_names()
    dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    exprs = [
        target["expr"]
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(exprs) >= 10
    for expr in exprs:
        names = set(re.findall(r"\b((?:gaffer|process)_[a-z_]+)\b", expr))
        assert names, expr
        assert names <= exported, (expr, names - exported)
    templating = json.dumps(dashboard.get("templating", {}))
    assert set(re.findall(r"\b(gaffer_[a-z_]+)\b", templating)) <= exported


def _panels(dashboard: dict[str, object]) -> Iterator[dict[str, object]]:
    for panel in dashboard.get("panels", []):  # type: ignore[attr-defined]
        yield panel
        yield from panel.get("panels", [])


def test_gafferd_counts_its_configured_webhooks(tmp_path: Path, receiver: Receiver) -> None:
    """The daemon's own wiring: a ``[webhooks]`` section's deliveries reach /metrics."""
    ini = write_config(tmp_path / "gaffer.ini", f"[webhooks]\ncreate = {receiver.url}/hook\n")
    gafferd = Gafferd(ini)
    try:
        r = gafferd.http.post("/processes", json={"name": "web", **SLEEPER})
        assert r.status_code == 200, r.text

        def delivered() -> float:
            s = Scrape(gafferd.http.get("/metrics").text)
            return s.value("gaffer_webhook_deliveries_total", outcome="delivered")

        assert wait_for(delivered) == 1
        assert receiver.events("/hook") == ["create"]
    finally:
        gafferd.stop()
        gafferd.cleanup()


def test_the_prometheus_example_scrapes_the_example_gafferd_with_a_token_file() -> None:
    config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "gaffer"  # the dashboard's gafferd panels select it
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"]
    bind = re.search(r"^bind = (\S+)$", (EXAMPLES / "gaffer.ini").read_text(), re.M)
    assert bind is not None
    assert job["static_configs"][0]["targets"] == [bind.group(1)]


BURNER = {
    "cmd": PYTHON,
    "args": [
        "-c",
        "import time\nend = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\ntime.sleep(600)",
    ],
}


def test_cpu_seconds_never_go_down_when_a_pid_exits(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "burn", BURNER)
    cpu = "gaffer_process_cpu_seconds_total"

    def burned() -> float | None:
        seconds = scrape(client).value(cpu, template="burn")
        return seconds if seconds >= 0.3 else None

    before = wait_for(burned)
    os.kill(server.manager.get_process(pid).os_pid, signal.SIGKILL)
    wait_for(lambda: scrape(client).value("gaffer_process_restarts_total", reason="exit") == 1)
    assert scrape(client).value(cpu, template="burn") >= before >= 0.3


def test_an_open_websocket_is_counted(client: httpx.Client, server: LiveServer) -> None:
    pid = create_one(client, "echo", ECHO)
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/wstreams/{pid}", timeout=10)
    try:
        ws.send("hi\n")
        assert ws.recv() == "hi\n"
        assert scrape(client).value("gaffer_connections", kind="websocket") == 1
    finally:
        ws.close(timeout=1)
    wait_for(lambda: scrape(client).value("gaffer_connections", kind="websocket") == 0)


def test_embedded_under_a_prefix_only_the_apis_requests_count(manager: Manager) -> None:
    from flask import Flask

    from gaffer_gevent.api import Gaffer

    host = Flask("host")
    host.add_url_rule("/hello", "hello", lambda: "hi")
    Gaffer(manager, host, url_prefix="/gaffer")
    with serving(host, manager) as live, httpx.Client(base_url=live.url, timeout=10) as c:
        assert c.get("/hello").text == "hi"
        assert c.get("/gaffer/processes").status_code == 200
        s = Scrape(c.get("/gaffer/metrics").text)
    assert s.value("gaffer_http_requests_total", route="/gaffer/processes", status="200") == 1
    assert "/hello" not in s.text
