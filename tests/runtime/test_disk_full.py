"""A run that failed on a full disk says so, whether its launch shim could still write exit.json
(it keeps a block for that) or not at all."""

from __future__ import annotations

import io
import subprocess

import pytest
from space_toml import lr, space_toml

from tui_tuner.core import verdict
from tui_tuner.core.space import load_space
from tui_tuner.core.study import Study
from tui_tuner.core.verdict import Facts, decide
from tui_tuner.runtime.headless import run_headless

# Fills the disk its run dir is on, as a checkpoint or a log that outgrew it would, then fails.
FILLER = """
import os, sys
path = os.path.join(os.environ["TUI_TUNER_RUN_DIR"], "filler")
try:
    with open(path, "wb") as f:
        while True:
            f.write(b"x" * 65536)
            f.flush()
except OSError as e:
    print(f"OSError: {e}", file=sys.stderr)
    sys.exit(1)
"""


@pytest.mark.parametrize("facts, reason", [
    (Facts(exit=None, disk_full=True), "ended without an exit status (the disk is full: its launch shim could "
                                       "not write exit.json)"),
    (Facts(exit=None), "ended without an exit status (its launch shim was killed)"),
    (Facts(exit={"returncode": 1, "disk_full": True}), "the disk is full (exit code 1)"),
    (Facts(exit={"returncode": 1}, output=("OSError: [Errno 28] No space left on device",)),
     "the disk is full (exit code 1): OSError: [Errno 28] No space left on device"),
])
def test_a_full_disk_is_named_in_the_reason(facts, reason):
    status, why = decide(facts, "loss")
    assert status == "failed" and why.startswith(reason), why


def test_disk_full_reads_the_file_system(tmp_path, monkeypatch):
    assert not verdict.disk_full(tmp_path)

    class Full:
        f_bavail, f_frsize, f_files, f_favail = 3, 4096, 100, 10

    monkeypatch.setattr(verdict.os, "statvfs", lambda path: Full())
    assert verdict.disk_full(tmp_path)


def test_a_trainer_that_fills_the_disk_fails_with_the_disk_named(tmp_path):
    (tmp_path / "fill.py").write_text(FILLER)
    text = space_toml({"lr": lr()}, name="full", command=["python", str(tmp_path / "fill.py")], objective="loss",
                      strategy="random", stage=1)
    (tmp_path / "space.toml").write_text(text)
    study = tmp_path / "study"
    with Study.open(study, load_space(tmp_path / "space.toml")):
        pass
    runs = study / "runs"
    runs.mkdir(exist_ok=True)
    # The runs on a small disk of their own, the database beside them on the real one.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(runs)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        out = io.StringIO()
        assert run_headless(tmp_path / "space.toml", study, trials=1, seed=1, out=out) == 0
        with Study.open(study, lock=False) as s:
            reason = s.trial(1).reason
    finally:
        subprocess.run(["umount", "-l", str(runs)], capture_output=True)
    assert reason.startswith("the disk is full (exit code 1)"), reason
    assert "the disk is full" in out.getvalue()
