"""Nothing a trainer prints reaches the user's terminal raw: the headless line, `show`, `plot` and
error lines show its escape sequences and control characters as text, never act on them; the
files on disk keep the raw text."""

from __future__ import annotations

import io
import json

import pytest
from space_toml import lr, param, space_toml

from tui_tuner import cli
from tui_tuner.core.printable import printable
from tui_tuner.core.space import parse_space
from tui_tuner.errors import SpaceError
from tui_tuner.runtime.headless import run_headless

# The probe's line: retitle the terminal (OSC 0), wipe the screen (CSI 2J), turn the text red.
HOSTILE = "Error: \x1b]0;PWNED-TITLE\x07\x1b[2J\x1b[31mRED"
# A zero-code trainer: one metric line whose name part carries escapes, then the hostile line, exit 3.
SCRIPT = (
    "import sys\n"
    "print('step 1 val_loss 0.5', flush=True)\n"
    f"print({HOSTILE!r}, file=sys.stderr, flush=True)\n"
    "sys.exit(3)\n"
)


def _dangerous(text: str) -> list[str]:
    """The characters in text a terminal would act on (ESC, BEL, C1, other C0 but newline)."""
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]


@pytest.mark.parametrize("raw, shown", [
    (HOSTILE, "Error: RED"),
    ("plain text", "plain text"),
    ("a\tb", "a b"),
    ("bell\x07", "bell\\x07"),
    ("cr\roverwrite", "cr\\roverwrite"),
    ("two\nlines", "two\\nlines"),
    ("del\x7f c1\x85", "del\\x7f c1\\x85"),
    ("8-bit CSI \x9b2J and OSC \x9d0;t\x9c!", "8-bit CSI  and OSC !"),
    ("reset \x1bc and charset \x1b(B.", "reset  and charset ."),
    ("DCS \x1bP1$r\x1b\\ APC \x1b_x\x1b\\.", "DCS  APC ."),
    ("unterminated \x1b]0;title", "unterminated \\x1b]0;title"),   # shown, not eating the rest
    ("lone \x1b[", "lone \\x1b["),
    ("bidi \u202eevil", "bidi \\u202eevil"),
    ("surrogate \udcff", "surrogate \\udcff"),
    (b"bytes \xff\xfe", "bytes \ufffd\ufffd"),
    (42, "42"),
])
def test_printable_removes_sequences_and_escapes_controls(raw, shown):
    assert printable(raw) == shown


def test_printable_keeps_line_breaks_where_asked():
    text = "Traceback\r\n  File x\rprogress\n\x1b[31mValueError\x1b[0m: bad\x07"
    assert printable(text, newlines=True) == "Traceback\n  File x\nprogress\nValueError: bad\\x07"


def test_an_osc_body_never_swallows_the_next_line():
    assert printable("a \x1b]0;half\nnext line", newlines=True) == "a \\x1b]0;half\nnext line"


def _zero_code_study(tmp_path, script: str, name: str = "hostile"):
    (tmp_path / "t.py").write_text(script)
    text = space_toml({"lr": lr()}, name=name, command=["python", str(tmp_path / "t.py")], objective="val_loss",
                      strategy="random", stage=1, metrics={"val_loss": r"val_loss\s+([-+0-9.eE]+)",
                                                           "step": r"^step\s+(\d+)"})
    (tmp_path / "space.toml").write_text(text)
    return tmp_path / "space.toml", tmp_path / "study"


def test_headless_show_and_output_view_show_a_hostile_failure_as_text(tmp_path, capsys):
    space, study = _zero_code_study(tmp_path, SCRIPT)
    out = io.StringIO()
    assert run_headless(space, study, trials=1, seed=1, out=out) == 0
    text = out.getvalue()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("trial") and "failed" in ln]
    assert "exit code 3: Error: RED" in line
    assert _dangerous(text) == [], text
    # The file on disk keeps the trainer's bytes exactly.
    assert HOSTILE in (study / "runs" / "t0001" / "output.log").read_text()

    assert cli.main(["show", str(study)]) == 0
    shown = capsys.readouterr().out
    assert "Error: RED" in shown and _dangerous(shown) == []
    # show --json keeps the reason whole, escaped the JSON way (\u001b): text, never an escape.
    assert cli.main(["show", str(study), "--json"]) == 0
    raw = capsys.readouterr().out
    assert _dangerous(raw) == [] and HOSTILE in json.loads(raw.splitlines()[0])["reason"]


def test_metric_names_a_trainer_wrote_reach_plot_as_text(tmp_path, capsys):
    # A trainer-API run names its metrics itself: one carries an escape sequence.
    script = ("import json, os, time\n"
              "d = os.environ['TUI_TUNER_RUN_DIR']\n"
              "with open(os.path.join(d, 'events.jsonl'), 'a') as f:\n"
              "    f.write(json.dumps({'t': time.time(), 'step': 1, 'metrics': {'val_loss': 0.5, "
              "'evil\\x1b]0;PWNED\\x07\\x1b[2J': 1.0}}) + '\\n')\n")
    (tmp_path / "t.py").write_text(script)
    text = space_toml({"lr": lr()}, name="names", command=["python", str(tmp_path / "t.py")],
                      objective="val_loss", strategy="random", stage=1)
    (tmp_path / "space.toml").write_text(text)
    assert run_headless(tmp_path / "space.toml", tmp_path / "study", trials=1, seed=1, out=io.StringIO()) == 0
    assert cli.main(["plot", str(tmp_path / "study"), "--metric", "nope"]) == 2
    err = capsys.readouterr().err
    assert "evil" in err and _dangerous(err) == [], err
    assert cli.main(["plot", str(tmp_path / "study"), "-o", "-", "--metric", "evil\x1b]0;PWNED\x07\x1b[2J"]) == 0
    picture = capsys.readouterr().out
    assert "evil" in picture and _dangerous(picture) == [], picture


@pytest.mark.parametrize("value", ["\x1b[2J", "bell\x07", "tab\there", "new\nline", "\x9b31m"])
def test_a_choice_value_with_control_characters_is_refused(value):
    text = space_toml({"opt": param("choice", values=["sgd", value])})
    with pytest.raises(SpaceError, match=r"params\.opt: choice values must be printable") as e:
        parse_space(text, "s.toml")
    assert _dangerous(e.value.message) == []
