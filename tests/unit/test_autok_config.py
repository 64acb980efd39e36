"""parallel = "auto" in the space file and `--parallel auto` on the command line; bad values are one line."""

from __future__ import annotations

import pytest
from space_toml import HEAD

from tui_tuner import cli
from tui_tuner.errors import SpaceError, StudyError
from tui_tuner.search.space import parse_space

PARAMS = '[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\n'


def test_parallel_auto_starts_at_one():
    cfg = parse_space(HEAD + 'parallel = "auto"\n' + PARAMS, "x.toml").config
    assert cfg.auto_k and cfg.parallel == 1
    cfg = parse_space(HEAD + "parallel = 3\n" + PARAMS, "x.toml").config
    assert not cfg.auto_k and cfg.parallel == 3


@pytest.mark.parametrize("value,shown", [('"many"', "'many'"), ("0", "0"), ("-1", "-1"), ("true", "true"),
                                         ("2.5", "2.5"), ('"AUTO"', "'AUTO'")])
def test_bad_parallel_is_one_line_naming_file_field_and_rule(value, shown):
    with pytest.raises(SpaceError) as e:
        parse_space(HEAD + f"parallel = {value}\n" + PARAMS, "spaces/x.toml")
    assert str(e.value.message) == f'spaces/x.toml: study.parallel: must be an integer >= 1 or "auto", got {shown}'


def test_cli_takes_parallel_auto_and_refuses_many(tmp_path, monkeypatch, capsys):
    space = tmp_path / "x.toml"
    space.write_text(HEAD + PARAMS)
    seen = {}

    def fake(space, study, trials, parallel, *a, **kw):
        seen["parallel"] = parallel
        return 0
    monkeypatch.setattr("tui_tuner.runtime.headless.run_headless", fake)
    assert cli.main(["run", str(space), "--headless", "--parallel", "auto"]) == 0
    assert seen["parallel"] == "auto"
    for bad in ("many", "0", "-3"):
        assert cli.main(["run", str(space), "--headless", "--parallel", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--parallel" in err[0] and "whole number >= 1 or auto" in err[0], err
    assert cli.main(["sample", str(space), "-n", "2", "--seed", "1", "--parallel", "auto"]) == 0


def test_scheduler_takes_auto_and_refuses_other_text(tmp_path):
    from tui_tuner.runtime.runner import Runner
    from tui_tuner.runtime.scheduler import Scheduler
    from tui_tuner.study.study import Study

    space = parse_space(HEAD + "parallel = 4\n" + PARAMS, str(tmp_path / "x.toml"))
    study = Study.open(tmp_path / "study", space, seed=1)
    try:
        runner = Runner(study)
        sched = Scheduler(study, runner, parallel="auto")
        assert sched.auto_k and sched.parallel == 1
        assert not Scheduler(study, runner).auto_k and Scheduler(study, runner).parallel == 4
        with pytest.raises(StudyError, match='parallel must be a whole number >= 1 or "auto"'):
            Scheduler(study, runner, parallel="many")
    finally:
        study.close()
