"""`sample` stays a fast preview (issue 20): 2,000 default-strategy settings in at most 5x the time of
20,000 random ones, and a choice of 1,000 or 3,000 values costs about what a choice of 3 does.

Times are the CPU seconds of the real command (`tui-tuner sample` in a subprocess, counted with
RUSAGE_CHILDREN), compared as ratios on the same box, so a loaded machine slows both sides alike.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from space_toml import hidden, layers, lr, momentum, param, space_toml

from tui_tuner.search import optuna_space
from tui_tuner.search.param import Param
from tui_tuner.search.state import SearchState

pytest.importorskip("optuna")
SEARCH = {"lr": lr(), "momentum": momentum(), "hidden": hidden(), "layers": layers(),
          "drop": param("float", low=0.0, high=0.5, default=0.1, tier=1),
          "batch": param("int", scale="log", low=16, high=512, default=64, tier=1)}


def cpu_seconds(*args: str) -> float:
    """CPU seconds (user + system) the real `tui-tuner` command took with these arguments."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "tui_tuner", *args], capture_output=True, text=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def write_space(tmp_path: Path, params: dict, name: str = "space.toml") -> str:
    path = tmp_path / name
    path.write_text(space_toml(params, name="speed"))
    return str(path)


def test_two_thousand_default_settings_cost_at_most_five_times_twenty_thousand_random_ones(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    space = write_space(tmp_path, SEARCH)
    random = cpu_seconds("sample", space, "-n", "20000", "--seed", "1", "--strategy", "random")
    default = cpu_seconds("sample", space, "-n", "2000", "--seed", "1")   # the default strategy: gp
    assert default <= 5 * random, f"sample -n 2000 (gp) took {default:.1f} s of CPU, 20,000 random {random:.1f} s"


@pytest.mark.parametrize("size", [1000, 3000])
def test_a_choice_of_thousands_of_values_samples_as_fast_as_a_small_one(tmp_path, size):
    """It took 82 s (1,000 values) and over 300 s (3,000): the labels compared every pair of values,
    once per value. Now a preview of 2 settings costs what one with a 3-value choice does, give or take."""
    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    big = write_space(tmp_path, {**SEARCH, "width": param("choice", values=list(range(size)), default=0, tier=1)},
                      "big.toml")
    small = write_space(tmp_path, {**SEARCH, "width": param("choice", values=[0, 1, 2], default=0, tier=1)},
                        "small.toml")
    t_small = cpu_seconds("sample", small, "-n", "2", "--seed", "1")
    t_big = cpu_seconds("sample", big, "-n", "2", "--seed", "1")
    assert t_big <= 2 * t_small + 0.5, f"{size} values: {t_big:.2f} s of CPU against {t_small:.2f} s for 3"


class Counted:
    """A choice value that counts the comparisons made with it."""

    eq = 0

    def __init__(self, v: int) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        Counted.eq += 1
        return isinstance(other, Counted) and other.v == self.v

    def __hash__(self) -> int:
        return hash(self.v)


@pytest.mark.filterwarnings("ignore:Choices for a categorical distribution")
def test_a_choices_labels_are_linear_in_its_values():
    """The distribution and every value's way back from Optuna: a few comparisons per value, not n."""
    n = 1000
    p = Param(name="width", type="choice", values=tuple(Counted(i) for i in range(n)), default=None)
    Counted.eq = 0
    dist = optuna_space.distribution(p, SearchState(), _OneParamSpace(p))
    back = [optuna_space.from_optuna(p, c) for c in dist.choices]
    assert [b.v for b in back] == list(range(n))
    assert Counted.eq <= 5 * n, f"{Counted.eq} comparisons for {n} values"


class _OneParamSpace:
    """Just what `distribution` asks of a space for a choice: its allowed values."""

    def __init__(self, p: Param) -> None:
        self.params = {p.name: p}

    def __getitem__(self, name: str) -> Param:
        return self.params[name]
