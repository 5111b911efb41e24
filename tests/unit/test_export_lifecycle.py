"""gaffer export systemd with lifecycle settings: depends_on, restart and notify as unit lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gaffer_gevent.errors import BadValue
from gaffer_gevent.procfile import ProcessType, export_systemd
from tests.cli.conftest import run_script

TYPES = [
    ProcessType("db", "postgres", ()),
    ProcessType("migrate", "./migrate", ()),
    ProcessType("web", "./web", ()),
]
SETTINGS = {
    "db": {"readiness": {"notify": True}},
    "migrate": {"restart": "never", "depends_on": {"db": "ready"}},
    "web": {"restart": "on-failure", "depends_on": {"migrate": "completed", "shop:db": "ready"}},
}


def lines(unit: str) -> list[str]:
    return unit.splitlines()


def test_lifecycle_keys_map_to_systemd_lines() -> None:
    units = export_systemd(
        TYPES, app="shop", concurrency={"db": 2}, env={}, cwd="/s", settings=SETTINGS
    )
    db, migrate, web = (lines(units[f"shop-{t}@.service"]) for t in ("db", "migrate", "web"))
    assert "Type=notify" in db and "Restart=always" in db
    assert not any(line.startswith(("Requires=", "After=")) for line in db)
    # migrate runs once and stays "active" once done, so After= waits for it to finish
    assert "Type=oneshot" in migrate and "RemainAfterExit=yes" in migrate
    assert not any(line.startswith("Restart=") for line in migrate)
    assert "Requires=shop-db@1.service shop-db@2.service" in migrate
    assert "After=shop-db@1.service shop-db@2.service" in migrate
    assert "Type=simple" in web and "Restart=on-failure" in web
    needed = "shop-migrate@1.service shop-db@1.service shop-db@2.service"
    assert f"Requires={needed}" in web and f"After={needed}" in web


def test_never_is_restart_no_and_nothing_set_is_unchanged() -> None:
    plain = export_systemd(TYPES, app="shop", concurrency={}, env={}, cwd="/s")
    with_none = export_systemd(TYPES, app="shop", concurrency={}, env={}, cwd="/s", settings={})
    assert plain == with_none
    assert "Restart=always" in plain["shop-web@.service"]
    units = export_systemd(
        TYPES, app="shop", concurrency={}, env={}, cwd="/s", settings={"web": {"restart": "never"}}
    )
    assert "Restart=no" in lines(units["shop-web@.service"])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="names no process type"):
        export_systemd(TYPES, app="shop", concurrency={}, env={}, cwd="/s",
                       settings={"web": {"depends_on": {"cache": "ready"}}})  # fmt: skip
    with pytest.raises(BadValue):
        export_systemd(TYPES, app="shop", concurrency={}, env={}, cwd="/s",
                       settings={"web": {"restart": "sometimes"}})  # fmt: skip


def test_gaffer_export_systemd_reads_a_settings_file(tmp_path: Path) -> None:
    app = tmp_path / "shop"
    app.mkdir()
    (app / "Procfile").write_text("db: postgres\nmigrate: ./migrate\nweb: ./web\n")
    (app / "lifecycle.json").write_text(json.dumps(SETTINGS))
    out = tmp_path / "units"
    result = run_script("gaffer", "export", "systemd", str(out), "--settings", "lifecycle.json",
                        cwd=app)  # fmt: skip
    assert result.code == 0, result.err
    assert "Type=notify" in (out / "shop-db@.service").read_text()
    (app / "bad.json").write_text('{"web": {"depends_on": {"x": "ready"}}}')
    bad = run_script("gaffer", "export", "systemd", str(out), "--settings", "bad.json", cwd=app)
    assert bad.code == 2 and "names no process type" in bad.err
    assert sorted(os.listdir(out)) == ["shop-db@.service", "shop-migrate@.service",
                                       "shop-web@.service", "shop.target"]  # fmt: skip
