"""`sample --seed S` previews exactly what `run --seed S` queues first (issue 7, item 17)."""

from __future__ import annotations

import io
import json

import pytest
from space_toml import hidden, layers, lr, momentum, param, space_toml

from tui_tuner import cli
from tui_tuner.runtime.headless import run_headless
from tui_tuner.search.sampling import first_round_size
from tui_tuner.study.study import Study

# A trial that ends at once: only the settings the run queues matter here.
COMMAND = ["python", "-c", "print('val_loss 1.0')"]
METRICS = {"val_loss": r"val_loss ([0-9.]+)"}
SEARCH = {"lr": lr(), "momentum": momentum(), "hidden": hidden(), "layers": layers()}
GRID = {"x": param("float", low=0.0, high=1.0, step=0.25), "layers": layers(tier=1),
        "hidden": param("int", low=1, high=3, tier=1)}


def first_queued(tmp_path, params: dict, seed: int, *args: str) -> tuple[list[dict], list[dict]]:
    """The settings `sample` prints and those a headless run queued, for the same options."""
    space = tmp_path / "space.toml"
    space.write_text(space_toml(params, name="preview", command=COMMAND, metrics=METRICS))
    opts = dict(zip(args[::2], args[1::2], strict=True))
    out = io.StringIO()
    rc = run_headless(space, tmp_path / "st", trials=int(opts["--trials"]), parallel=int(opts["--parallel"]),
                      strategy=opts["--strategy"], seed=seed, out=out, interval=0.01)
    assert rc == 0, out.getvalue()
    with Study.open(tmp_path / "st", lock=False) as study:
        queued = [t.params for t in study.trials("id")]
    printed = io.StringIO()
    args_ns = cli.build_parser().parse_args(["sample", str(space), "-n", str(len(queued)), "--seed", str(seed),
                                            *args])
    assert cli.cmd_sample(args_ns, printed) == 0
    return [json.loads(line) for line in printed.getvalue().splitlines()], queued


@pytest.mark.parametrize(("params", "strategy", "trials", "parallel"), [
    (SEARCH, "coarse_to_fine", 6, 2),   # all six in the first (stratified) round
    (SEARCH, "random", 5, 2),           # refills of 2, 2 and 1
    (GRID, "grid", 8, 3),
])
def test_sample_equals_the_first_trials_a_headless_run_queues(tmp_path, params, strategy, trials, parallel):
    printed, queued = first_queued(tmp_path, params, 7, "--strategy", strategy, "--trials", str(trials),
                                   "--parallel", str(parallel))
    # The grid is queued whole (5 x 3 x 3 settings); the others no more than the budget.
    assert len(queued) == (45 if strategy == "grid" else trials)
    assert printed == queued


def test_coarse_to_fine_says_where_the_exact_preview_ends(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text(space_toml(SEARCH, name="preview", budget=20))
    assert first_round_size(20) == 8
    c2f = ["--strategy", "coarse_to_fine"]
    assert cli.main(["sample", str(space), "-n", "8", "--seed", "1", *c2f]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(["sample", str(space), "-n", "12", "--seed", "1", *c2f]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 12
    assert captured.err.strip() == ("tui-tuner: note: settings after the first 8 (the first coarse-to-fine round) "
                                    "are drawn without the zooms a run makes from its results")
