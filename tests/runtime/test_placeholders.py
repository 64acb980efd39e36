"""{run_dir} and {trial} reach a real run's argv, each run its own (issue 7, item 13)."""

from __future__ import annotations

import sys

from runtime_helpers import make_runner, wait_for
from space_toml import lr, space_toml

from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study

SCRIPT = ("import sys, pathlib; out = pathlib.Path(sys.argv[1]); out.write_text(sys.argv[2]); "
          "print('step 1 loss 0.5', flush=True)")


def test_each_run_gets_its_own_run_dir_and_trial_in_its_argv(tmp_path):
    text = space_toml({"lr": lr(low=1e-3, high=0.5, default=0.05, flag="--lr")}, name="ph",
                      command=[sys.executable, "-c", SCRIPT, "{run_dir}/out.txt", "trial-{trial}"],
                      objective="loss", metrics={"step": r"step (\d+)", "loss": r"loss ([0-9.eE+-]+)"})
    path = tmp_path / "space.toml"
    path.write_text(text)
    study = Study.open(tmp_path / "study", parse_space(text, str(path)), seed=1)
    runner = make_runner(study)
    try:
        trials = study.enqueue([{"lr": 0.01}, {"lr": 0.02}], "manual")
        for t in trials:
            runner.start(t)
        wait_for(runner, lambda: all(study.trial(t.id).finished for t in trials), 20, "both runs ended")
        for t in trials:
            out = study.run_dir(t.id) / "out.txt"
            assert out.read_text() == f"trial-{t.id}", "each run wrote into its own run dir"
            assert study.trial(t.id).status == "done"
    finally:
        runner.commands.stop_all(timeout=5)
        study.close()
