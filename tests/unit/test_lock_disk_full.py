"""A full disk while taking a study's lock (writing the holder line into .lock) is one clear line."""

from __future__ import annotations

import errno
import os

import pytest
from space_toml import lr, space_toml

from tui_tuner.cli import main
from tui_tuner.errors import StudyError
from tui_tuner.study.lock import StudyLock

SPACE = space_toml({"lr": lr()}, name="full", objective="loss")


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def pwrite(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", pwrite)


def test_a_full_disk_while_taking_the_lock_is_a_study_error_and_frees_the_lock(tmp_path, monkeypatch):
    lock = StudyLock(tmp_path)
    with monkeypatch.context() as m:
        _disk_full(m)
        with pytest.raises(StudyError, match=r"\.lock: cannot record this tuner as the study's owner: "
                                              r"No space left on device \(the disk is full"):
            lock.acquire()
    assert not lock.held
    other = StudyLock(tmp_path)
    other.acquire()   # nothing was left locked
    other.release()


def test_a_full_disk_while_taking_the_lock_is_one_line_from_the_cli(tmp_path, monkeypatch, capsys):
    space = tmp_path / "s.toml"
    space.write_text(SPACE)
    _disk_full(monkeypatch)
    assert main(["run", str(space), "--headless", "--study", str(tmp_path / "study")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected error" not in err
    assert "No space left on device" in err and ".lock" in err
