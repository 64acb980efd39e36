"""The headless line of a failed trial: its whole setting (the parameter that broke it may be the
last one) and the first line of its reason, cut to a length."""

from __future__ import annotations

import io

from space_toml import lr, param, space_toml

from tui_tuner.runtime.headless import REASON_WIDTH, SETTING_WIDTH, run_headless

# Fails at once with a very long last line, as a stack trace of a long message would.
FAILING = "import sys\nprint('ValueError: ' + 'bad shape ' * 60, file=sys.stderr)\nsys.exit(3)\n"


def test_a_failure_line_has_the_whole_setting_and_a_capped_reason(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(FAILING)
    params = {"lr": lr(default=0.01)}
    for name in ("hidden_units_in_the_first_layer", "hidden_units_in_the_second_layer"):
        params[name] = param("int", low=1, high=512, default=256, tier=3)
    params["gradient_accumulation"] = param("choice", values=[1, 64], default=64, tier=4)
    text = space_toml(params, name="fails", command=["python", str(script)], objective="loss", stage=1,
                      strategy="random")
    space = tmp_path / "space.toml"
    space.write_text(text)
    out = io.StringIO()
    assert run_headless(space, tmp_path / "study", trials=1, seed=1, out=out) == 0
    (line,) = [ln for ln in out.getvalue().splitlines() if ln.startswith("trial") and "failed" in ln]
    setting, _, reason = line.partition("  (exit code 3: ")
    # The culprit, last of a setting longer than a done trial's line shows, is there.
    assert setting.endswith("gradient_accumulation=64")
    assert len(setting[setting.index("lr="):]) > SETTING_WIDTH
    assert reason.startswith("ValueError: bad shape") and reason.endswith("…)")
    assert len("exit code 3: " + reason) == REASON_WIDTH + 1   # the reason, and its closing parenthesis
