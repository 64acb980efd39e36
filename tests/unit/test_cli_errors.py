"""Each way a name, a number or a file can be absurd is one readable line, never the last line of a
traceback: a study name of 5,000 characters, a --study of 300, a trial id past any integer, a
params.json nested 100,000 deep. Hints to run a command are shell-quoted."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys

from space_toml import lr, space_toml
from study_runs import TOY

from tui_tuner import cli
from tui_tuner.core.space import parse_space
from tui_tuner.core.study import Study
from tui_tuner.runtime.headless import run_headless


def one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("tui-tuner: ") and err.count("\n") == 1, err
    assert "unexpected error" not in err and "Error:" not in err, err
    assert len(err) < 400, err   # a long name is cut, not printed whole
    for n in needles:
        assert n in err, err
    return err


def test_a_study_name_of_5000_characters_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(space_toml({"lr": lr()}, name="x" * 5000))
    assert cli.main(["run", "s.toml", "--headless", "--trials", "1"]) == 2
    one_line(capsys, "s.toml: study.name: must be at most 255 bytes", "5000 characters")


def test_a_study_path_of_300_characters_is_one_line(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(space_toml({"lr": lr()}, name="ok"))
    long = tmp_path / ("y" * 300)
    assert cli.main(["run", str(tmp_path / "s.toml"), "--headless", "--trials", "1", "--study", str(long)]) == 2
    one_line(capsys, "File name too long", "characters)")
    assert cli.main(["show", str(long)]) == 2
    one_line(capsys)


def _study(tmp_path):
    d = tmp_path / "st"
    with Study.open(d, parse_space(space_toml({"lr": lr()}, name="st"), str(tmp_path / "s.toml"))) as s:
        (t,) = s.enqueue([{"lr": 0.01}])
        s.mark_started(t.id, 0)
        s.finish(t.id, "done", objective=0.5)
    return d


def test_a_trial_id_past_any_integer_is_one_line(tmp_path, capsys):
    d = _study(tmp_path)
    for bad in ("99999999999999999999999", "t" + "9" * 40, "t\u0665", "-3", "0"):
        assert cli.main(["export", str(d), "--trial", bad]) == 2
        one_line(capsys, "--trial: must be a trial id like 3 or t0003")
    assert cli.main(["export", str(d), "--trial", "t0001", "-o", "-"]) == 0


def test_a_params_json_nested_deeply_is_no_crash(tmp_path, capsys):
    d = _study(tmp_path)
    run = d / "runs" / "t0001"
    run.mkdir(parents=True)
    (run / "params.json").write_text('{"trial": 1, "params": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert cli.main(["export", str(d), "--trial", "1", "-o", "-"]) == 0
    assert "lr = 0.01" in capsys.readouterr().out
    (run / "control.jsonl").write_text("[" * 100_000 + "\n")
    (d / ".lock").write_text("[" * 4000)
    assert cli.main(["show", str(d)]) == 0


def test_the_export_hint_is_shell_quoted(tmp_path):
    (tmp_path / "t.py").write_text("from tui_tuner import trainer\ntrainer.report(1, loss=0.5)\n")
    text = space_toml({"lr": lr()}, name="q", command=["python", str(tmp_path / "t.py")], objective="loss",
                      strategy="random", stage=1)
    (tmp_path / "s.toml").write_text(text)
    study = tmp_path / "my study; rm -rf x"
    out = io.StringIO()
    assert run_headless(tmp_path / "s.toml", study, trials=1, seed=1, out=out) == 0
    (hint,) = [ln for ln in out.getvalue().splitlines() if ln.startswith("export it: ")]
    command = hint.removeprefix("export it: ")
    assert shlex.split(command)[:3] == ["tui-tuner", "export", str(study)]
    # Run as the hint says (through a shell), it exports.
    done = subprocess.run(command.replace("tui-tuner", f"{shlex.quote(sys.executable)} -m tui_tuner", 1),
                          shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.dumps(0.5) in (tmp_path / "best.toml").read_text()


def test_the_recover_hint_is_shell_quoted(tmp_path, capsys):
    study = tmp_path / "a study"
    (study / "runs" / "t0001").mkdir(parents=True)
    (tmp_path / "s.toml").write_text(space_toml({"lr": lr()}, name="r", command=["python", str(TOY)]))
    assert cli.main(["run", str(tmp_path / "s.toml"), "--headless", "--study", str(study)]) == 2
    err = one_line(capsys, "run `tui-tuner recover ")
    assert f"recover {shlex.quote(str(study))}`" in err
