"""gafferd with depends_on in its config: start order, a cycle at start and on SIGHUP."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.gafferd import GAFFERD, Gafferd
from tests.helpers import wait_for, write_config

CHAIN = """
[process:web]
cmd = sleep 600
depends_on = migrate completed, db started

[process:migrate]
cmd = true
restart = never
depends_on = db started

[process:db]
cmd = sleep 600
"""


def test_config_chain_starts_in_dependency_order(tmp_path: Path) -> None:
    gafferd = Gafferd(write_config(tmp_path / "gaffer.ini", CHAIN))
    try:
        http = gafferd.http
        assert http.get("/processes").json() == ["db", "migrate", "web"]
        wait_for(lambda: http.get("/status/web").json()["running"] == 1)
        assert http.get("/status/migrate").json()["state"] == "completed"
        # a reload with a cycle is refused, naming it; everything keeps running
        cycle = CHAIN.replace("[process:db]\ncmd = sleep 600", "[process:db]\ncmd = sleep 600\n"
                              "depends_on = web started")  # fmt: skip
        write_config(gafferd.config, cycle)
        gafferd.proc.send_signal(signal.SIGHUP)
        line = gafferd.log_line("dependency cycle")
        assert "depends_on: dependency cycle: web -> migrate -> db -> web" in line
        assert http.get("/status/web").json()["running"] == 1
        assert http.get("/processes/db").json().get("depends_on") is None
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


def test_a_config_with_a_cycle_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "gaffer.ini",
        "[process:a]\ncmd = true\ndepends_on = b\n\n[process:b]\ncmd = true\ndepends_on = a\n",
    )
    result = subprocess.run([*GAFFERD, str(path)], capture_output=True, timeout=30)
    assert result.returncode == 2
    (line,) = result.stderr.decode().strip().splitlines()
    assert line.endswith("[process:a] depends_on: dependency cycle: a -> b -> a"), line
