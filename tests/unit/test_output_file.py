"""`export -o` and `plot -o` write a user-named path through one writer: never into the study (a
symlink is judged by what it points to), only regular files (no device, FIFO or directory), the
symlink itself kept, `-o -` meaning standard output, and the default export private."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

import pytest
from space_toml import lr, space_toml

from tui_tuner import cli
from tui_tuner.core.space import parse_space
from tui_tuner.core.study import Study

SPACE = space_toml({"lr": lr()}, name="out")


@pytest.fixture
def study_dir(tmp_path):
    """A study with one done trial that reported a curve."""
    d = tmp_path / "study"
    with Study.open(d, parse_space(SPACE, str(tmp_path / "s.toml"))) as s:
        (t,) = s.enqueue([{"lr": 0.01}])
        s.mark_started(t.id, 0)
        run = s.run_dir(t.id)
        run.mkdir(parents=True)
        with open(run / "events.jsonl", "w") as f:
            for i in range(1, 6):
                f.write(json.dumps({"t": time.time(), "step": i, "metrics": {"val_loss": 1.0 / i}}) + "\n")
        s.finish(t.id, "done", objective=0.2)
    return d


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_refusal(capsys, needle: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("tui-tuner: ") and err.count("\n") == 1 and needle in err, err
    return err


@pytest.mark.parametrize("command", [["plot"], ["export"]])
@pytest.mark.parametrize("target", ["study.db", "space.toml", "runs/t0001/events.jsonl"])
def test_a_symlink_into_the_study_is_refused_and_the_study_survives(study_dir, tmp_path, capsys, command,
                                                                      target):
    link = tmp_path / "p.txt" if command == ["plot"] else tmp_path / "p.toml"
    link.symlink_to(study_dir / target)
    before = digest(study_dir / target)
    assert cli.main([*command, str(study_dir), "-o", str(link)]) == 2
    one_line_refusal(capsys, "is inside the study directory")
    assert digest(study_dir / target) == before and link.is_symlink()
    assert cli.main(["show", str(study_dir)]) == 0 and "done" in capsys.readouterr().out


def test_a_symlink_is_written_through_and_stays_a_symlink(study_dir, tmp_path, capsys):
    real = tmp_path / "real.toml"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    assert cli.main(["export", str(study_dir), "-o", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "lr = 0.01" in real.read_text() and stat.S_IMODE(real.stat().st_mode) == 0o640
    capsys.readouterr()
    plot_link = tmp_path / "plot.txt"
    plot_real = tmp_path / "plot-real.txt"
    plot_real.write_text("")
    plot_link.symlink_to(plot_real)
    assert cli.main(["plot", str(study_dir), "-o", str(plot_link)]) == 0
    assert plot_link.is_symlink() and "val_loss" in plot_real.read_text()


@pytest.mark.parametrize("command", [["plot"], ["export"]])
def test_a_fifo_is_refused_and_stays_a_fifo(study_dir, tmp_path, capsys, command):
    fifo = tmp_path / ("f.txt" if command == ["plot"] else "f.toml")
    os.mkfifo(fifo)
    assert cli.main([*command, str(study_dir), "-o", str(fifo)]) == 2
    one_line_refusal(capsys, "is not a regular file (a FIFO)")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("command", [["plot"], ["export"]])
def test_a_device_is_refused_and_stays_a_device(study_dir, tmp_path, capsys, command):
    # A device node of our own (/dev/null's numbers) in tmp: the real /dev is never put at risk.
    dev = tmp_path / ("null.txt" if command == ["plot"] else "null.toml")
    try:
        os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    assert cli.main([*command, str(study_dir), "-o", str(dev)]) == 2
    one_line_refusal(capsys, "is not a regular file (a character device)")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    # Through a symlink, the same.
    link = tmp_path / ("l.txt" if command == ["plot"] else "l.toml")
    link.symlink_to(dev)
    assert cli.main([*command, str(study_dir), "-o", str(link)]) == 2
    one_line_refusal(capsys, "is not a regular file")
    assert stat.S_ISCHR(os.lstat(dev).st_mode) and link.is_symlink()


def test_a_directory_is_refused_for_plot_too(study_dir, tmp_path, capsys):
    target = tmp_path / "d.txt"
    target.mkdir()
    assert cli.main(["plot", str(study_dir), "-o", str(target)]) == 2
    one_line_refusal(capsys, "is a directory")


def test_plot_dash_o_dash_is_standard_output(study_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["plot", str(study_dir), "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("out: val_loss") and "\x1b[" not in out
    assert not (tmp_path / "-").exists()


def test_the_default_export_is_private_whatever_the_umask(study_dir, capsys):
    old = os.umask(0)
    try:
        assert cli.main(["export", str(study_dir)]) == 0
    finally:
        os.umask(old)
    path = study_dir / "export-t0001.toml"
    assert capsys.readouterr().out.strip() == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_hard_link_to_the_database_is_replaced_not_written_through(study_dir, tmp_path, capsys):
    link = tmp_path / "h.toml"
    os.link(study_dir / "study.db", link)
    before = digest(study_dir / "study.db")
    assert cli.main(["export", str(study_dir), "-o", str(link)]) == 0
    assert digest(study_dir / "study.db") == before and "lr = 0.01" in link.read_text()
