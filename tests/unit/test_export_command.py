"""`export --format command` and a run changed live (issue 19, items 1 and 2): the args and command
formats warn on stderr that they give the values the run ended with, `--as-started` gives those it
began with, and a run that did not record how it started still gets a command, with a warning.

(A zero-code command rerun through a shell: tests/runtime/test_zero_code_ready.py.)
"""

from __future__ import annotations

import json
import shlex
import sys

import pytest
from space_toml import lr, param, space_toml

from tui_tuner import cli
from tui_tuner.core.space import load_space
from tui_tuner.core.study import Study

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STARTED = {"lr": 0.0199, "layers": 2}


@pytest.fixture
def babysat(tmp_path):
    """A trainer-API trial whose lr was changed while it ran (0.0199 -> 0.00996); no command.json."""
    (tmp_path / "space.toml").write_text(space_toml({"lr": lr(live=True), "layers": param("int", low=1, high=4)},
                                                    name="babysat", command=["python", "train.py"]))
    study = Study.open(tmp_path / "st", load_space(tmp_path / "space.toml"))
    t = study.enqueue_manual(STARTED)
    study.mark_started(t.id, 1)
    study.run_dir(t.id).mkdir(parents=True)
    (study.run_dir(t.id) / "params.json").write_text(json.dumps({"trial": t.id, "params": STARTED}))
    study.apply_live(t.id, {"lr": 0.00996})
    study.finish(t.id, "done", 0.25)
    study.close()
    return tmp_path / "st"


@pytest.mark.parametrize("fmt", ["args", "command"])
def test_a_run_changed_live_warns_and_as_started_gives_what_it_began_with(babysat, fmt, capsys):
    assert cli.main(["export", str(babysat), "--format", fmt]) == 0
    out, err = capsys.readouterr()
    assert "--lr=0.00996 --layers=2" in out
    assert ("tui-tuner: warning: trial 1 was changed while it ran (lr 0.0199 → 0.00996): these are the values "
            "it ended with; --as-started exports those it began with") in err
    assert cli.main(["export", str(babysat), "--format", fmt, "--as-started"]) == 0
    out, err = capsys.readouterr()
    assert "--lr=0.0199 --layers=2" in out and "was changed while it ran" not in err


def test_the_toml_says_it_in_its_tables_either_way(babysat, capsys):
    assert cli.main(["export", str(babysat), "-o", "-"]) == 0
    out, err = capsys.readouterr()
    doc = tomllib.loads(out)
    assert doc["lr"] == 0.00996 and doc["tuner"]["started_with"] == {"lr": 0.0199} and err == ""
    assert cli.main(["export", str(babysat), "-o", "-", "--as-started"]) == 0
    doc = tomllib.loads(capsys.readouterr().out)
    assert doc["lr"] == 0.0199 and doc["tuner"]["ended_with"] == {"lr": 0.00996}
    assert "started_with" not in doc["tuner"]


def test_a_run_without_its_record_gets_todays_command_and_a_warning(babysat, capsys):
    assert cli.main(["export", str(babysat), "--format", "command", "--as-started"]) == 0
    out, err = capsys.readouterr()
    # A trainer-API script reads --name=value standalone; python is the tuner's own interpreter.
    assert shlex.split(out) == [sys.executable, "train.py", "--lr=0.0199", "--layers=2"]
    assert "did not record how it was started (command.json)" in err


def test_the_command_written_to_a_file(babysat, tmp_path, capsys):
    target = tmp_path / "rerun.sh"
    assert cli.main(["export", str(babysat), "--format", "command", "-o", str(target)]) == 0
    assert capsys.readouterr().out == f"{target}\n"
    assert shlex.split(target.read_text())[-2:] == ["--lr=0.00996", "--layers=2"]
