"""The strategy registry: one module registers a strategy, and everything that lists strategies asks it."""

from __future__ import annotations

import json
import subprocess
import sys

from space_toml import lr, space_toml

from tui_tuner.search import strategies
from tui_tuner.search.space import parse_space


def test_every_list_of_strategies_comes_from_the_registry():
    from tui_tuner.cli import build_parser
    from tui_tuner.study.store import sources

    assert strategies.names() == ("random", "grid", "coarse_to_fine", "tpe", "gp", "cmaes")
    assert strategies.model_names() == ("tpe", "gp", "cmaes")
    assert sources()[:6] == ("random", "grid", "zoom", "tpe", "gp", "cmaes")
    choices = [a.choices for a in build_parser()._subparsers._group_actions[0].choices["run"]._actions
               if a.dest == "strategy"][0]
    assert tuple(choices) == strategies.names()


def test_a_new_strategy_is_one_module_and_the_whole_tool_knows_it(tmp_path):
    # A module dropped into the strategies package registers itself: the space file accepts it, the
    # scheduler runs it, `sample` previews it, and its trials get its source. Nothing else changes.
    import tui_tuner.search.strategies as pkg

    module = tmp_path / "pkg" / "corner.py"
    module.parent.mkdir()
    module.write_text('''"""corner: always the low end of every range (a test strategy)."""
from tui_tuner.search.strategies import Strategy, register


def _low(space):
    return {p.name: p.from_unit(0.0) for p in space.params.values()}


def refill(host, room):
    host.study.enqueue([_low(host.study.space)] * min(room, host.parallel), "corner")
    return True


def preview(space, n, seed, *, budget, parallel):
    return [_low(space)] * n


register(Strategy("corner", "always the low end", refill, preview, order=50))
''')
    code = f'''
import json, sys
import tui_tuner.search.strategies as pkg
pkg.__path__.append({str(module.parent)!r})
from tui_tuner.search import strategies
from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.runtime.runner import Runner
space = parse_space({space_toml({"lr": lr()}, name="corner", strategy="corner")!r}, "x.toml")
study = Study.open({str(tmp_path / "study")!r}, space, seed=1)
sched = Scheduler(study, Runner(study))
sched.refill()
print(json.dumps([strategies.names(), [t.source for t in study.queue()], [t.params for t in study.queue()],
                  strategies.get("corner").preview(space, 2, 0, budget=5, parallel=1)]))
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names, queued, params, preview = json.loads(out.stdout)
    assert names[-1] == "corner" and queued == ["corner"] and params == [{"lr": 1e-4}] == preview[:1]
    del pkg


def test_an_unknown_strategy_is_refused_naming_the_registered_ones():
    import pytest

    from tui_tuner.errors import SpaceError

    with pytest.raises(SpaceError, match="study.strategy: must be one of random, grid, coarse_to_fine"):
        parse_space(space_toml({"lr": lr()}, strategy="bayes"), "x.toml")
