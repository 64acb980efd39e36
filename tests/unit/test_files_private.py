"""Files a study writes: one atomic writer that follows no planted symlink and keeps a replaced file's
mode, and private modes whatever the umask."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from space_toml import lr, space_toml

from tui_tuner.search.space import parse_space
from tui_tuner.study.store import write_atomic
from tui_tuner.study.study import Study
from tui_tuner.trainer import protocol

SPACE = space_toml({"lr": lr()}, name="private", objective="loss")


def mode_of(path: Path) -> int:
    """Permission bits of a file or directory, not following a symlink."""
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set this process's umask for the test (the trainers it starts inherit it); restored after."""
    old = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


# -- the writers: store.write_atomic (space.toml, exports), protocol.write_json_atomic (run files),
# trainer_torch.save_state (checkpoints) all go through protocol.atomic_file ---------------------------


def _torch_writer(path: Path, content: bytes) -> None:
    torch = pytest.importorskip("torch")
    from tui_tuner.integrations import torch as trainer_torch

    model = torch.nn.Linear(1, 1)
    trainer_torch.save_state(path, model, step=len(content))


WRITERS: dict[str, Callable[[Path, bytes], None]] = {
    "write_atomic": lambda path, content: write_atomic(path, content),
    "write_json_atomic": lambda path, content: protocol.write_json_atomic(path, {"c": content.decode()}),
    "save_state": _torch_writer,
}


def _written(name: str, path: Path, content: bytes) -> bool:
    """True when `path` holds what WRITERS[name] wrote for `content`."""
    if name == "write_atomic":
        return path.read_bytes() == content
    if name == "write_json_atomic":
        return json.loads(path.read_text()) == {"c": content.decode()}
    import torch

    return torch.load(path, weights_only=True)["step"] == len(content)


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_planted_symlink_at_the_temp_name_is_never_followed(tmp_path, name):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    study = tmp_path / "study"
    study.mkdir()
    target = study / "file"
    # Where the old writers put their temp file (a predictable name): another user planting a
    # link there made the tuner write through it.
    planted = [study / f".file.{os.getpid()}.tmp", study / f"file.{os.getpid()}.tmp"]
    for link in planted:
        link.symlink_to(victim)
    WRITERS[name](target, b"new content")
    assert victim.read_bytes() == b"precious"
    assert not target.is_symlink() and _written(name, target, b"new content")
    assert sorted(p.name for p in study.iterdir()) == sorted(["file", *(p.name for p in planted)])


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_replaced_file_keeps_its_mode(tmp_path, umask, name):
    umask(0o022)
    target = tmp_path / "file"
    WRITERS[name](target, b"old")
    os.chmod(target, 0o640)
    WRITERS[name](target, b"newer")
    assert _written(name, target, b"newer")
    assert mode_of(target) == 0o640


@pytest.mark.parametrize(("name", "mask", "expected"), [
    ("write_json_atomic", 0o000, 0o600), ("write_json_atomic", 0o022, 0o600),
    ("save_state", 0o000, 0o600), ("save_state", 0o022, 0o600),
    # An export is the user's file: the umask decides, as for any file they write.
    ("write_atomic", 0o022, 0o644), ("write_atomic", 0o077, 0o600),
])
def test_a_new_file_gets_its_mode_whatever_the_umask(tmp_path, umask, name, mask, expected):
    umask(mask)
    target = tmp_path / "file"
    WRITERS[name](target, b"x")
    assert mode_of(target) == expected


def test_an_explicit_mode_is_narrowed_by_the_umask_never_widened(tmp_path, umask):
    umask(0o277)
    write_atomic(tmp_path / "f", b"x", mode=0o600)
    assert mode_of(tmp_path / "f") == 0o400


def test_a_failed_checkpoint_leaves_the_old_one_and_no_temp_file(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from tui_tuner.integrations import torch as trainer_torch

    target = tmp_path / "step-1.pt"
    _torch_writer(target, b"old")

    def full_disk(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        trainer_torch.save_state(target, torch.nn.Linear(1, 1), step=9)
    assert [p.name for p in tmp_path.iterdir()] == ["step-1.pt"]
    assert _written("save_state", target, b"old")


def test_temp_names_are_not_predictable(tmp_path, monkeypatch):
    seen: list[str] = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    for _ in range(3):
        protocol.write_json_atomic(tmp_path / "exit.json", {"returncode": 0})
    assert len(set(seen)) == 3 and all(str(os.getpid()) not in s for s in seen)


# -- the study's own files are private --------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022])
def test_a_new_study_is_private_whatever_the_umask(tmp_path, umask, mask):
    umask(mask)
    d = tmp_path / "studies" / "s"
    with Study.open(d, parse_space(SPACE, str(tmp_path / "s.toml"))) as study:
        study.enqueue([{"lr": 0.01}])   # a write, so the WAL files exist
        files = {p.name: mode_of(p) for p in d.iterdir()}
        assert files["study.db-wal"] == 0o600 and files["study.db-shm"] == 0o600
    assert mode_of(d) == 0o700 and mode_of(d / "runs") == 0o700
    for name in ("study.db", "space.toml", ".lock"):
        assert mode_of(d / name) == 0o600, name
    # A deleted space.toml is written back from the database, private too.
    (d / "space.toml").unlink()
    Study.open(d).close()
    assert mode_of(d / "space.toml") == 0o600


def test_control_lines_are_private(tmp_path, umask):
    umask(0o000)
    protocol.append_line(tmp_path / "control.jsonl", {"seq": 1, "cmd": "pause"})
    assert mode_of(tmp_path / "control.jsonl") == 0o600
