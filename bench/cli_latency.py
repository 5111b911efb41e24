"""CLI latency, side by side: `gafferctl processes` against `supervisorctl status`.

What a user feels when they type a control command: the whole run of a fresh interpreter,
imports, one request to a running daemon and the answer printed. Both daemons run at once,
on the same machine, and the two commands alternate, so both see the same load. Each is run
a few times unmeasured first (page cache, bytecode), then `--runs` times; the median counts.
The target (issue 14): gafferctl at most 0.6x supervisorctl.

supervisorctl comes from `.venv-bench` (where `make bench` installs the peers); when it is
missing, this installs supervisor alone there, with pip, as `peers_env` would. Both CLIs are
timed as users install them: this tree is installed (not editable, no dependencies: the
CLI's path needs none) into the same venv, so neither pays for a development checkout's
import hooks. The checkout's own `.venv/bin/gafferctl` (an editable install, whose finder
costs every run about 8 ms of `site`) is timed beside them for reference.

    .venv/bin/python bench/cli_latency.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import workdir
from gaffer import REPO, Gafferd
from peer_supervisord import Supervisord
from peers_env import BENCH_VENV

SUPERVISOR_PIN = "supervisor==4.3.0"
# BENCH_GAFFERCTL: another build of gafferctl, to compare before/after a change.
GAFFERCTL = Path(os.environ.get("BENCH_GAFFERCTL", REPO / ".venv" / "bin" / "gafferctl"))
WARMUP = 3


def supervisor_tools() -> tuple[str, str]:
    """supervisord and supervisorctl from `.venv-bench`, installing supervisor if missing."""
    bin_dir = BENCH_VENV / "bin"
    if not (bin_dir / "supervisorctl").exists():
        print(f"[bench] installing {SUPERVISOR_PIN} into {BENCH_VENV}", flush=True)
        if not (bin_dir / "python").exists():
            base = getattr(sys, "_base_executable", None) or sys.executable
            subprocess.run([base, "-m", "venv", str(BENCH_VENV)], check=True)
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", SUPERVISOR_PIN]
        subprocess.run(pip, check=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return str(bin_dir / "supervisord"), str(bin_dir / "supervisorctl")


def installed_gafferctl() -> str:
    """This tree's gafferctl, installed normally into `.venv-bench` (reinstalled each run)."""
    pip = [str(BENCH_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
           "--force-reinstall", str(REPO)]  # fmt: skip
    subprocess.run(pip, check=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return str(BENCH_VENV / "bin" / "gafferctl")


def timed(argv: list[str]) -> float:
    """Seconds for one run of ``argv`` to completion; its output is read and discarded."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, timeout=60)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 3):  # supervisorctl status: 3 when programs are stopped
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()[-300:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    supervisord, supervisorctl = supervisor_tools()
    installed = installed_gafferctl()
    with (
        workdir("cli-gaffer") as gtmp,
        workdir("cli-supervisord") as stmp,
        Gafferd(gtmp) as gafferd,
        Supervisord(supervisord, stmp) as peer,
    ):
        # As many programs on both sides, none running: supervisord's bench config has
        # one, flood and 100 sleepers; gafferd gets as many templates.
        for name in ("one", "flood", *(f"sleepers_{i:02d}" for i in range(100))):
            body = {"name": name, "cmd": "sleep 3600", "start": False}
            gafferd.call("POST", "/processes", body)
        url = f"http://127.0.0.1:{gafferd.port}"
        commands = {
            "gafferctl processes": [installed, "--connect", url, "processes"],
            "gafferctl processes (editable checkout)": [
                str(GAFFERCTL), "--connect", url, "processes",
            ],
            "supervisorctl status": [
                supervisorctl, "-s", f"http://127.0.0.1:{peer.port}", "status",
            ],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in commands}
        for run in range(WARMUP + args.runs):
            for name, argv in commands.items():
                elapsed = timed(argv)
                if run >= WARMUP:
                    times[name].append(elapsed)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["gafferctl processes"] / medians["supervisorctl status"]
    result = {
        "runs": args.runs,
        "median_s": {name: round(value, 4) for name, value in medians.items()},
        "min_s": {name: round(min(values), 4) for name, values in times.items()},
        "ratio": round(ratio, 3),
        "target": 0.6,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
