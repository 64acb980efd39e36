"""The command line, in-process through main() and as a real `python -m tui_tuner` subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from space_toml import hidden, layers, lr, momentum, space_toml, switch

from tui_tuner import cli
from tui_tuner.search.space import load_space, parse_space
from tui_tuner.study.study import Study

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PARAMS = {"lr": lr(), "momentum": momentum(), "hidden": hidden(), "layers": layers(), "bn": switch()}


def cli_space(study: dict | None = None, **params: dict) -> str:
    """The CLI tests' space, with some [study] keys (None drops one) and parameters replaced."""
    return space_toml({**PARAMS, **params}, **{"name": "clitest", **(study or {})})


SPACE = cli_space()


def cli_run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real console entry point in a fresh interpreter."""
    e = {k: v for k, v in os.environ.items() if k != cli.DEBUG_ENV}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "tui_tuner", *args], capture_output=True, text=True,
                          env=e, timeout=60)


@pytest.fixture
def space_file(tmp_path):
    p = tmp_path / "space.toml"
    p.write_text(SPACE)
    return p


@pytest.fixture
def study_dir(tmp_path, space_file):
    """A study with done, failed, running, forked and queued trials."""
    d = tmp_path / "study"
    with Study.open(d, load_space(space_file)) as s:
        ts = s.enqueue([{"lr": x, "hidden": 60 + i, "bn": i % 2 == 0}
                        for i, x in enumerate((0.1, 0.01, 0.001, 0.3, 0.02))])
        for t, obj in zip(ts[:3], (0.5, 0.2, 0.9), strict=True):
            s.mark_started(t.id, 1)
            s.update_progress(t.id, 100, obj)
            s.finish(t.id, "done")
        s.mark_started(ts[3].id, 2)
        s.finish(ts[3].id, "failed", reason="exit code 1")
        s.mark_started(ts[4].id, 3)
        s.update_progress(ts[4].id, 7, 0.4)
        s.add_fork(ts[1].id, {"lr": 0.005}, 50, "runs/t0002/ckpt/step-50.pt")
    return d


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tui-tuner: ") and "Traceback" not in err
    return lines[0]


# -- sample ---------------------------------------------------------------------------------------


def test_sample_same_seed_same_output_in_process_and_subprocess(space_file, capsys):
    assert cli.main(["sample", str(space_file), "-n", "6", "--seed", "11"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["sample", str(space_file), "-n", "6", "--seed", "11"]) == 0
    assert capsys.readouterr().out == first
    assert cli.main(["sample", str(space_file), "-n", "6", "--seed", "12"]) == 0
    assert capsys.readouterr().out != first
    space = load_space(space_file)
    rows = [json.loads(line) for line in first.splitlines()]
    assert len(rows) == 6
    for row in rows:
        assert list(row) == list(space.params)
        assert space.check_setting(row) == row
        assert type(row["hidden"]) is int and type(row["bn"]) is bool
    # The real command, twice: byte for byte the same as in-process.
    a = cli_run("sample", str(space_file), "-n", "6", "--seed", "11")
    b = cli_run("sample", str(space_file), "-n", "6", "--seed", "11")
    # stderr: at most the note on which settings are exact (the default tpe depends on results later)
    assert a.returncode == b.returncode == 0 and a.stderr == b.stderr and "Traceback" not in a.stderr
    assert a.stdout == b.stdout == first


def test_sample_zero_and_default_count(space_file, capsys):
    assert cli.main(["sample", str(space_file), "-n", "0", "--seed", "1"]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main(["sample", str(space_file), "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 10


BAD_SPACES = {
    "syntax": ("[study\ncommand = 1", r"TOML syntax error"),
    "log_low_zero": (cli_space(lr=lr(low=0.0)), r"params\.lr: log scale needs low > 0"),
    "unknown_key": (cli_space(lr=lr(live=True, warmup=3)), r"params\.lr: unknown key 'warmup'"),
    "missing_command": (cli_space({"command": None}), r"study\.command: missing"),
    "shell_command": (cli_space({"command": "python train.py"}), r"not a shell string"),
    "low_gt_high": (cli_space(hidden=hidden(low=100, high=50)), r"low <= high"),
    "one_minus_log": (cli_space(momentum=momentum(high=1.0)), r"one_minus_log scale needs"),
    "default_outside": (cli_space(momentum=momentum(default=0.5)), r"default must lie in"),
    "empty_choice": (cli_space(layers=layers(values=[])), r"at least one value"),
    "tier": (cli_space(bn=switch(tier=5)), r"tier must be 1, 2, 3 or 4"),
    "not_utf8": (b"\xff\xfe[study]", r"cannot read"),
}


@pytest.mark.parametrize("name", list(BAD_SPACES))
def test_refused_space_is_one_line_exit_2(tmp_path, capsys, name):
    text, pattern = BAD_SPACES[name]
    path = tmp_path / f"{name}.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert cli.main(["sample", str(path)]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert str(path) in line
    assert re.search(pattern, line), line
    assert captured.out == ""


@pytest.mark.parametrize("name", ["syntax", "log_low_zero", "missing_command"])
def test_refused_space_in_a_real_process(tmp_path, name):
    text, pattern = BAD_SPACES[name]
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    res = cli_run("sample", str(path), "-n", "2")
    assert res.returncode == 2 and res.stdout == ""
    line = one_error_line(res.stderr)
    assert re.search(pattern, line), line


def test_missing_space_file(tmp_path, capsys):
    assert cli.main(["sample", str(tmp_path / "nope.toml")]) == 2
    assert one_error_line(capsys.readouterr().err).endswith("nope.toml: no such file")


# -- show -----------------------------------------------------------------------------------------


def test_show_prints_best_first_aligned(study_dir, capsys):
    assert cli.main(["show", str(study_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header == ["id", "status", "objective", "step", "fork", "reason", "params"]
    at = lines[0].index("params")
    rows = [[c.strip() for c in line[:at].split(None, 5)] + [line[at:]] for line in lines[1:]]
    assert [r[0] for r in rows] == ["2", "1", "3", "5", "4", "6"]  # done best first, running, failed, queue
    assert rows[0][:6] == ["2", "done", "0.2", "100", "-", "-"]
    assert rows[3][:5] == ["5", "running", "0.4", "7", "-"]
    assert rows[4][:4] == ["4", "failed", "-", "-"] and rows[4][5] == "exit code 1"
    assert rows[5][:5] == ["6", "queued", "-", "-", "2@50"]
    assert rows[0][6].startswith("lr=0.01 momentum=0.9 hidden=61 layers=2 bn=false")
    # Aligned: every column starts at the header's offset.
    for name in ("status", "objective", "step", "fork", "reason", "params"):
        col = lines[0].index(name)
        assert all(line[col - 2:col] == "  " and line[col] != " " for line in lines[1:])


def test_show_json_and_while_the_study_is_owned(study_dir, capsys):
    with Study.open(study_dir):  # a tuner owns it: show still reads
        assert cli.main(["show", str(study_dir), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [2, 1, 3, 5, 4, 6]
    assert rows[4]["reason"] == "exit code 1" and rows[5]["parent"] == 2 and rows[5]["fork_step"] == 50


def test_show_empty_study_and_not_a_study(tmp_path, space_file, capsys):
    Study.open(tmp_path / "empty", load_space(space_file)).close()
    assert cli.main(["show", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out.split() == ["id", "status", "objective", "step", "fork", "reason", "params"]
    assert cli.main(["show", str(tmp_path / "nothing")]) == 2
    assert "no study here" in one_error_line(capsys.readouterr().err)


def test_show_in_a_real_process(study_dir):
    res = cli_run("show", str(study_dir))
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.splitlines()[1].split()[:3] == ["2", "done", "0.2"]


# -- export ---------------------------------------------------------------------------------------


def test_export_best_by_default_prints_the_path(study_dir, capsys):
    assert cli.main(["export", str(study_dir)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(study_dir / "export-t0002.toml")
    data = tomllib.loads((study_dir / "export-t0002.toml").read_text())
    assert data["lr"] == 0.01 and data["hidden"] == 61 and data["bn"] is False
    assert data["tuner"]["trial"] == 2 and data["tuner"]["objective_value"] == 0.2


def test_export_trial_and_output(study_dir, tmp_path, capsys):
    target = tmp_path / "chosen.toml"
    assert cli.main(["export", str(study_dir), "--trial", "t0003", "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert tomllib.loads(target.read_text())["tuner"]["trial"] == 3
    assert cli.main(["export", str(study_dir), "--best", "-o", str(target)]) == 0
    assert tomllib.loads(target.read_text())["tuner"]["trial"] == 2


@pytest.mark.parametrize("args, pattern", [
    (["--trial", "99"], r"no trial 99"),
    (["--trial", "x1"], r"argument --trial: must be a trial id"),
    (["--trial", "1", "--best"], r"not allowed with argument"),
])
def test_export_refusals(study_dir, capsys, args, pattern):
    assert cli.main(["export", str(study_dir), *args]) == 2
    assert re.search(pattern, one_error_line(capsys.readouterr().err))


def test_export_without_a_finished_trial_in_a_real_process(tmp_path, space_file):
    Study.open(tmp_path / "s", load_space(space_file)).close()
    res = cli_run("export", str(tmp_path / "s"))
    assert res.returncode == 2
    assert "no finished trial" in one_error_line(res.stderr)
    ok = cli_run("export", str(tmp_path / "s"), "--trial", "1")
    assert ok.returncode == 2 and "no trial 1" in one_error_line(ok.stderr)


# -- routing, hooks and errors --------------------------------------------------------------------


def test_bare_space_routes_to_tune(monkeypatch, space_file):
    seen = {}

    def fake_tune(args):
        seen.update(vars(args))
        return 0

    monkeypatch.setattr(cli, "cmd_tune", fake_tune)
    assert cli.main([str(space_file), "--study", "/tmp/x"]) == 0
    assert seen["space"] == str(space_file) and seen["study"] == "/tmp/x"
    seen.clear()
    assert cli.main(["--study", "/tmp/y"]) == 0
    assert seen["space"] is None and seen["study"] == "/tmp/y"


def test_run_hook_gets_the_contract_options(monkeypatch, space_file):
    seen = {}
    monkeypatch.setattr(cli, "cmd_run", lambda args: seen.update(vars(args)) or 0)
    argv = ["run", str(space_file), "--headless", "--trials", "8", "--parallel", "2",
            "--strategy", "random", "--seed", "3", "--study", "d"]
    assert cli.main(argv) == 0
    assert (seen["headless"], seen["trials"], seen["parallel"], seen["strategy"], seen["seed"],
            seen["study"]) == (True, 8, 2, "random", 3, "d")


def test_study_dir_default_and_given(space_file):
    space = load_space(space_file)
    assert str(cli.study_dir(space, None)) == os.path.join("studies", "clitest")
    assert str(cli.study_dir(space, "mine")) == "mine"


def test_usage_errors_are_one_line(capsys):
    assert cli.main(["smaple", "x"]) == 2
    assert "invalid choice: 'smaple'" in one_error_line(capsys.readouterr().err)
    assert cli.main(["sample"]) == 2
    assert "required: space" in one_error_line(capsys.readouterr().err)
    assert cli.main(["run", "x.toml", "--parallel", "0"]) == 2
    assert "must be a whole number >= 1 or auto, got 0" in one_error_line(capsys.readouterr().err)


def test_help_version_and_nothing(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("tui-tuner ")
    assert cli.main(["--help"]) == 0
    assert "sample" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert "usage: tui-tuner" in capsys.readouterr().out


def test_unexpected_error_is_one_line_with_a_hint(monkeypatch, study_dir, capsys):
    def boom(args):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(cli, "cmd_show", boom)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main(["show", str(study_dir)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "RuntimeError: disk on fire second line" in line and "TUI_TUNER_DEBUG=1" in line
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert cli.main(["show", str(study_dir)]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_space_parse_of_the_fixture_matches_the_file(space_file):
    # Guard for the fixtures above: the CLI and the API read the same space.
    assert load_space(space_file).signature() == parse_space(SPACE, "x").signature()
