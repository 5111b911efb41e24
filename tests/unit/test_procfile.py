"""Procfile and .env parsing and the exports built from them: pure text in, text out."""

import configparser
import json
import shlex

import pytest

from gaffer_gevent.procfile import (
    ProcessType,
    ProcfileError,
    ScaleOp,
    app_name,
    export_ini,
    export_json,
    export_systemd,
    merge_env,
    parse_concurrency,
    parse_env,
    parse_procfile,
    parse_scale_op,
    template_body,
)


def test_procfile_entries_in_file_order_with_shell_lexed_args():
    text = (
        "web: python -u app.py --port $PORT\n"
        "worker:python worker.py 'two words'\n"
        "# a comment: ignored\n"
        "\n"
        "bad-name: ignored because of the dash\n"
        "  indented: ignored too\n"
        "clock_2:   ./clock\n"
    )
    assert parse_procfile(text) == [
        ProcessType("web", "python", ("-u", "app.py", "--port", "$PORT")),
        ProcessType("worker", "python", ("worker.py", "two words")),
        ProcessType("clock_2", "./clock", ()),
    ]


def test_procfile_crlf_and_command_line():
    (entry,) = parse_procfile("web: echo 'a b' c\r\n")
    assert entry.args == ("a b", "c")
    assert entry.command_line == "echo 'a b' c"


def test_procfile_errors_name_the_line():
    with pytest.raises(ProcfileError, match="line 2: web: No closing quotation"):
        parse_procfile("ok: true\nweb: echo 'unbalanced\n")
    with pytest.raises(ProcfileError, match="line 2: duplicate process type 'web'"):
        parse_procfile("web: a\nweb: b\n")


def test_procfile_empty_text():
    assert parse_procfile("") == []


def test_env_split_at_first_equal_quotes_deleted_key_verbatim():
    text = 'A=1\nB="two words"\nC=x=y\nno equals sign\nD=\n E = spaced\nF=say "hi"\n'
    assert parse_env(text) == {
        "A": "1",
        "B": "two words",
        "C": "x=y",
        "D": "",
        " E ": " spaced",
        "F": "say hi",
    }


def test_env_has_no_comment_handling_and_later_lines_win():
    assert parse_env("#X=1\nA=1\nA=2\r\n") == {"#X": "1", "A": "2"}


def test_merge_env_later_layers_override():
    assert merge_env({"A": "1", "B": "1"}, {"B": "2"}, {}) == {"A": "1", "B": "2"}


def test_concurrency_skips_malformed_items():
    assert parse_concurrency(["web=2,worker=3", "bad, x=, =4, y=z, clock = 5"]) == {
        "web": 2,
        "worker": 3,
        "clock": 5,
    }
    assert parse_concurrency(["a=\u00b2,b=\u0661,c=1_0,d=-1,e=" + "9" * 5000, "f=3"]) == {"f": 3}
    assert parse_concurrency([]) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web=3", ScaleOp("web", "=", 3)),
        ("web+1", ScaleOp("web", "+", 1)),
        ("worker_2-10", ScaleOp("worker_2", "-", 10)),
        ("myapp", None),
        ("web=", None),
        ("web=-1", None),
        ("web=\u0661", None),  # digits are ASCII digits
        ("web=" + "9" * 5000, None),
    ],
)
def test_scale_ops(text, expected):
    assert parse_scale_op(text) == expected


def test_app_name_is_a_safe_basename():
    assert app_name("/srv/shop") == "shop"
    assert app_name("/srv/my.app v2/") == "my_app_v2"


PROCFILE = [
    ProcessType("web", "python", ("app.py", "--port", "$PORT")),
    ProcessType("worker", "./work", ("a b",)),
]


def test_template_body_for_post_processes():
    body = template_body(PROCFILE[0], name="shop:web", env={"A": "1"}, numprocesses=2, cwd="/s")
    assert body == {
        "name": "shop:web",
        "cmd": "python",
        "args": ["app.py", "--port", "$PORT"],
        "env": {"A": "1"},
        "numprocesses": 2,
        "redirect_output": ["out", "err"],
        "cwd": "/s",
    }


def test_export_json_keeps_key_order_and_one_space_indent():
    text = export_json(PROCFILE[1], env={}, numprocesses=1, cwd="/s")
    assert list(json.loads(text)) == [
        "name", "cmd", "args", "env", "numprocesses", "redirect_output", "cwd",
    ]  # fmt: skip
    assert text.startswith('{\n "name": "worker",')


def test_export_ini_reads_back_with_configparser():
    text = export_ini(
        PROCFILE, group="shop", concurrency={"worker": 3}, env={"PORT": "80"}, cwd="/s"
    )
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    assert parser.sections() == [
        "process:shop:web", "env:shop:web", "process:shop:worker", "env:shop:worker",
    ]  # fmt: skip
    web, worker = parser["process:shop:web"], parser["process:shop:worker"]
    assert (web["cmd"], web["priority"], web["numprocesses"]) == ("python", "0", "1")
    # gafferd shell-lexes args, so quoting must survive the round trip.
    assert shlex.split(web["args"]) == ["app.py", "--port", "$PORT"]
    assert shlex.split(worker["args"]) == ["a b"]
    assert (worker["priority"], worker["numprocesses"]) == ("1", "3")
    assert worker["cwd"] == "/s"
    assert parser["env:shop:web"]["port"] == "80"


def test_export_systemd_one_template_unit_per_type_and_a_target():
    units = export_systemd(
        PROCFILE, app="shop", concurrency={"web": 2}, env={"A": "50%", "B": 'x "y"'}, cwd="/s"
    )
    assert sorted(units) == ["shop-web@.service", "shop-worker@.service", "shop.target"]
    web = units["shop-web@.service"]
    assert "ExecStart=/usr/bin/env python app.py --port $PORT\n" in web
    assert "WorkingDirectory=/s\n" in web
    assert "Environment=A=50%%\n" in web
    assert 'Environment="B=x \\"y\\""\n' in web
    assert "PartOf=shop.target" in web and "WantedBy=shop.target" in web
    assert 'ExecStart=/usr/bin/env ./work "a b"\n' in units["shop-worker@.service"]
    assert (
        "Wants=shop-web@1.service shop-web@2.service shop-worker@1.service\n"
        in units["shop.target"]
    )


def test_export_ini_is_a_config_gafferd_accepts():
    from gaffer_gevent.config import parse_config

    text = export_ini(
        PROCFILE, group="shop", concurrency={"worker": 3}, env={"PORT": "80"}, cwd="/s"
    )
    config = parse_config(text)
    web, worker = config.processes
    assert web.name == "shop:web" and worker.name == "shop:worker"
    assert web.body["env"] == {"PORT": "80"}
    assert worker.body["numprocesses"] == 3
    assert worker.body["redirect_output"] == ["out", "err"]
