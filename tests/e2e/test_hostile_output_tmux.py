"""End to end: a zero-code trainer that prints `\\x1b]0;PWNED\\x07\\x1b[2J` (retitle the terminal, wipe
the screen) and fails does neither, in the app or headless, in a real terminal (tmux). The app's
output view and the headless line show the text that was printed, the escapes taken out."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from space_toml import lr, space_toml
from tmux_session import Tmux, terminal

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

TUI_TUNER = str(Path(sys.executable).with_name("tui-tuner"))
HOSTILE = "Error: \x1b]0;PWNED\x07\x1b[2J\x1b[31mRED"
SCRIPT = (
    "import sys, time\n"
    "print('step 1 val_loss 0.5', flush=True)\n"
    "time.sleep(1.0)\n"
    f"print({HOSTILE!r}, flush=True)\n"
    f"print({HOSTILE!r}, file=sys.stderr, flush=True)\n"
    "sys.exit(3)\n"
)


def write_space(tmp_path: Path) -> Path:
    (tmp_path / "hostile.py").write_text(SCRIPT)
    text = space_toml({"lr": lr()}, name="hostile-e2e", command=[sys.executable, str(tmp_path / "hostile.py")],
                      objective="val_loss", strategy="random", stage=1, budget=1, parallel=1,
                      metrics={"val_loss": r"val_loss\s+([-+0-9.eE]+)", "step": r"^step\s+(\d+)"})
    path = tmp_path / "hostile.toml"
    path.write_text(text)
    return path


def pane_title(tmux: Tmux) -> str:
    return subprocess.run([*tmux.base, "display-message", "-p", "-t", tmux.name, "#{pane_title}"],
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def tmux(tmp_path):
    with terminal(tmp_path, tmp_path / "study", "hostile") as t:
        yield t


def test_the_app_shows_a_hostile_failure_without_acting_on_it(tmp_path, tmux):
    space = write_space(tmp_path)
    tmux.start(f"{TUI_TUNER} {shlex.quote(str(space))} --study {shlex.quote(str(tmp_path / 'study'))}", tmp_path,
               width=120, height=32)
    tmux.wait(r"hostile-e2e", 30)
    title = pane_title(tmux)
    # The failure reaches the app (a toast with its reason), then the output view, `v`.
    tmux.wait(r"Error: RED", 60)
    tmux.keys("v")
    tmux.wait(r"Trial #1 output", 15)
    screen = tmux.wait(r"Error: RED", 15).string
    assert "PWNED" not in screen   # the sequence was taken out, not shown or run
    assert pane_title(tmux) == title != "PWNED"
    tmux.keys("Escape")
    tmux.wait_gone(r"Trial #1 output", 15)
    assert "hostile-e2e" in tmux.screen()   # never wiped
    assert pane_title(tmux) == title


def test_headless_in_a_terminal_keeps_its_title_and_its_screen(tmp_path, tmux):
    space = write_space(tmp_path)
    command = (f"{TUI_TUNER} run {shlex.quote(str(space))} --headless --study "
               f"{shlex.quote(str(tmp_path / 'study'))}; echo HEADLESS-END; sleep 60")
    tmux.start(f"sh -c {shlex.quote(command)}", tmp_path, width=160, height=40)
    tmux.wait(r"HEADLESS-END", 90)
    screen = tmux.screen()
    # The first line is still there (no clear screen), the failure line shows the text, the title stayed.
    assert "study " in screen and "objective val_loss" in screen, screen
    assert "exit code 3: Error: RED" in screen, screen
    assert pane_title(tmux) != "PWNED"
