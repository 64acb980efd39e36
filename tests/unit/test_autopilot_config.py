"""[study] autopilot keys and --autopilot: defaults, what they set, and one line for each bad value."""

from __future__ import annotations

import pytest
from space_toml import lr, space_toml
from test_cli import one_error_line

from tui_tuner import cli
from tui_tuner.errors import SpaceError
from tui_tuner.search.pbt import PbtConfig
from tui_tuner.search.space import parse_space


def study(**keys):
    return parse_space(space_toml({"lr": lr(live=True)}, **keys), "spaces/x.toml").config


def test_defaults_keep_the_autopilot_off():
    assert study().autopilot == PbtConfig("none", 100, 0.25, 0.25)
    assert not study().autopilot.active


def test_the_keys_make_the_autopilot_config():
    cfg = study(autopilot="pbt", autopilot_interval=300, autopilot_fraction=0.5, autopilot_resample=0.1).autopilot
    assert (cfg.rule, cfg.interval, cfg.fraction, cfg.resample) == ("pbt", 300, 0.5, 0.1)
    assert cfg.active


@pytest.mark.parametrize("keys, line", [
    ({"autopilot": "babysit"}, "spaces/x.toml: study.autopilot: must be one of pbt, none, got 'babysit'"),
    ({"autopilot": "pbt", "autopilot_interval": 0},
     "spaces/x.toml: study.autopilot_interval: must be an integer >= 1 (steps between two judgements of a run), "
     "got 0"),
    ({"autopilot_interval": -5}, "spaces/x.toml: study.autopilot_interval: must be an integer >= 1"),
    ({"autopilot_interval": 1.5}, "spaces/x.toml: study.autopilot_interval: must be an integer >= 1"),
    ({"autopilot_interval": True}, "spaces/x.toml: study.autopilot_interval: must be an integer >= 1"),
    ({"autopilot_fraction": 0}, "spaces/x.toml: study.autopilot_fraction: must be a number in (0, 0.5]"),
    ({"autopilot_fraction": 0.75}, "spaces/x.toml: study.autopilot_fraction: must be a number in (0, 0.5] "
                                   "(the share of live runs that is bottom, and top), got 0.75"),
    ({"autopilot_fraction": -0.25}, "spaces/x.toml: study.autopilot_fraction: must be a number in (0, 0.5]"),
    ({"autopilot_fraction": "0.25"}, "spaces/x.toml: study.autopilot_fraction: must be a number in (0, 0.5]"),
    ({"autopilot_resample": 2}, "spaces/x.toml: study.autopilot_resample: must be a probability in [0, 1]"),
    ({"autopilots": "pbt"}, "spaces/x.toml: study: unknown key 'autopilots'"),
])
def test_bad_keys_are_one_line_naming_file_key_and_rule(keys, line):
    with pytest.raises(SpaceError) as e:
        study(**keys)
    assert e.value.message.startswith(line)
    assert "\n" not in e.value.message


def test_the_cli_prints_a_bad_key_as_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(space_toml({"lr": lr(live=True)}, autopilot="pbt", autopilot_fraction=0.6))
    assert cli.main(["run", str(bad), "--headless", "--study", str(tmp_path / "s")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "bad.toml: study.autopilot_fraction: must be a number in (0, 0.5]" in line
    good = tmp_path / "good.toml"
    good.write_text(space_toml({"lr": lr(live=True)}))
    assert cli.main(["run", str(good), "--headless", "--autopilot", "ppo"]) == 2
    assert "argument --autopilot: invalid choice: 'ppo'" in one_error_line(capsys.readouterr().err)


def test_autopilot_reaches_headless_and_the_app(monkeypatch, tmp_path):
    import tui_tuner.runtime.headless as headless
    import tui_tuner.ui.app as app

    space = tmp_path / "s.toml"
    space.write_text(space_toml({"lr": lr(live=True)}, name="ap"))
    seen: dict = {}
    monkeypatch.setattr(headless, "run_headless", lambda *a, **kw: seen.update(kw) or 0)
    assert cli.main(["run", str(space), "--headless", "--autopilot", "pbt"]) == 0
    assert seen["autopilot"] == "pbt"

    def fake_app(study, overrides=None, **kw):
        seen.update(app={k: v for k, v in overrides.items() if v is not None})
        study.close()
        return 0

    monkeypatch.setattr(app, "run_app", fake_app)
    assert cli.main([str(space), "--study", str(tmp_path / "st"), "--autopilot", "none"]) == 0
    assert seen["app"] == {"autopilot": "none"}
