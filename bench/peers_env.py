"""The bench's own virtualenv: the peers (supervisor, circus) and matplotlib, kept apart.

supervisor and circus pull in their own dependency trees (pyzmq, tornado, ...) and matplotlib is
large; none of them belongs in the project's `.venv`, whose pins are the tested set. So the bench
creates `.venv-bench/` at the repository root, once, and reuses it on later runs (a marker file
records which pins were installed, so changing a pin reinstalls).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_VENV = REPO / ".venv-bench"
PINS = ("supervisor==4.3.0", "circus==0.19.0", "matplotlib")
MARKER = BENCH_VENV / ".bench-installed"


@dataclass(frozen=True)
class PeerTools:
    """Absolute paths of the peers' executables and of the python that has matplotlib."""

    python: str
    supervisord: str
    supervisorctl: str
    circusd: str
    circusctl: str


def _base_python() -> str:
    """A python to create the venv from: the base interpreter behind the running one.

    `sys.executable` is usually the project's `.venv` python; `venv` resolves its base itself,
    but `sys._base_executable` avoids nesting a venv's site-packages by accident.
    """
    return getattr(sys, "_base_executable", None) or sys.executable


def _tools() -> PeerTools:
    bin_dir = BENCH_VENV / "bin"
    return PeerTools(
        python=str(bin_dir / "python"),
        supervisord=str(bin_dir / "supervisord"),
        supervisorctl=str(bin_dir / "supervisorctl"),
        circusd=str(bin_dir / "circusd"),
        circusctl=str(bin_dir / "circusctl"),
    )


def _installed() -> bool:
    tools = _tools()
    if not MARKER.exists():
        return False
    if MARKER.read_text().strip() != "\n".join(PINS):
        return False
    return all(Path(path).exists() for path in asdict(tools).values())


def ensure(log: bool = True) -> PeerTools:
    """Create `.venv-bench` with the peers if it is missing or stale; return the tool paths.

    Idempotent: a complete venv with the same pins is left untouched (a second `make bench`
    costs nothing here). pip runs quietly; its failure raises `CalledProcessError`.
    """
    if _installed():
        return _tools()
    if log:
        print(f"[bench] creating {BENCH_VENV} with {', '.join(PINS)}", flush=True)
    if BENCH_VENV.exists():
        shutil.rmtree(BENCH_VENV)
    subprocess.run([_base_python(), "-m", "venv", str(BENCH_VENV)], check=True)
    pip = [str(BENCH_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([*pip, "--upgrade", "pip"], check=True, env=env)
    subprocess.run([*pip, *PINS], check=True, env=env)
    MARKER.write_text("\n".join(PINS) + "\n")
    return _tools()


def peer_versions(tools: PeerTools) -> dict[str, str]:
    """Installed versions of the peers and matplotlib, read from the bench venv's metadata."""
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({n: m.version(n) for n in ('supervisor', 'circus', 'matplotlib',"
        " 'pyzmq', 'tornado')}))"
    )
    out = subprocess.run([tools.python, "-c", code], check=True, capture_output=True, text=True)
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def main() -> None:
    """`python bench/peers_env.py`: build the venv and print the tool paths as JSON."""
    argparse.ArgumentParser(description=__doc__).parse_args()
    tools = ensure()
    print(json.dumps({**asdict(tools), "versions": peer_versions(tools)}, indent=2))


if __name__ == "__main__":
    main()
