"""`show` and `export` on a study the user cannot write (a colleague's study shared read-only, an
archived one): SQLite is opened read-only, and immutable when no -shm can be made beside it.

The tests run as root in CI, where permission bits stop nothing: the reader is then a forked child
that has become `nobody` (every module it needs is loaded before, since it cannot read root's
Python installation). As another user, permission bits already do the job.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from space_toml import lr, space_toml

from tui_tuner.cli import main
from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study

SPACE = space_toml({"lr": lr()}, name="shared", objective="loss")
NOBODY = 65534


def cli_as_reader(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI as a user who may read but not write the study: (exit code, stdout, stderr)."""
    if os.geteuid() != 0:
        return _cli(argv)
    _warm_up()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child reports through the pipe
        code = 70
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(w, json.dumps(_cli(argv)).encode())
            code = 0
        except BaseException as e:  # noqa: BLE001 - whatever broke goes back to the test
            with contextlib.suppress(OSError):
                os.write(w, json.dumps([99, "", f"child: {type(e).__name__}: {e}"]).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    rc, out, err = json.loads(data)
    if rc == 99 and "PermissionError" in err and "setuid" in err.lower():
        pytest.skip(f"cannot become another user here: {err}")
    return rc, out, err


_warm: list[bool] = []


def _warm_up() -> None:
    """Run show and export once on a scratch study, so every module they need is imported."""
    if _warm:
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_study(root).close()
        for argv in (["show", str(root / "study")], ["export", str(root / "study"), "-o", str(root / "x.toml")],
                     ["export", str(root / "nowhere")], ["show", str(root / "study"), "--json"]):
            _cli(argv)
    _warm.append(True)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        rc = main(argv)
    finally:
        sys.stdout, sys.stderr = old
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every user can reach (pytest's tmp_path is root's alone), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="tui-tuner-ro-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def make_study(root: Path) -> Study:
    """A study with one done and one failed trial, left open (the caller closes it)."""
    study = Study.open(root / "study", parse_space(SPACE, str(root / "s.toml")), seed=1)
    done, failed = study.enqueue([{"lr": 0.01}, {"lr": 0.5}])
    for t in (done, failed):
        study.mark_started(t.id, 0)
    study.finish(done.id, "done", objective=0.25)
    study.finish(failed.id, "failed", reason="exit code 1: RuntimeError: boom\nTraceback ...")
    return study


def share_read_only(d: Path) -> None:
    """What an owner does to let others read a study: directories r-x, files r--, for everyone."""
    for p in [d, *d.rglob("*")]:
        os.chmod(p, 0o555 if p.is_dir() else 0o444)


def writable_dir(root: Path) -> Path:
    """A folder the reader may write (for its export)."""
    out = root / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    return out


def test_show_and_export_work_on_a_study_the_user_cannot_write(shared):
    make_study(shared).close()
    d = shared / "study"
    share_read_only(d)
    before = sorted(p.name for p in d.iterdir())
    rc, out, err = cli_as_reader(["show", str(d)])
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["1", "done", "0.25"] and lines[2].split()[:2] == ["2", "failed"]
    rc, out, err = cli_as_reader(["export", str(d), "-o", str(writable_dir(shared) / "best.toml")])
    assert (rc, err) == (0, ""), err
    assert "lr = 0.01" in (shared / "out" / "best.toml").read_text()
    # The default export path is inside the study: one line saying why not, no traceback.
    rc, out, err = cli_as_reader(["export", str(d)])
    assert rc == 2 and err.count("\n") == 1 and "cannot write" in err and "unexpected" not in err
    assert sorted(p.name for p in d.iterdir()) == before   # the reader left nothing behind


def test_show_reads_what_a_running_tuner_has_not_yet_checkpointed(shared):
    study = make_study(shared)   # the owner's tuner keeps it open: its latest writes are in the WAL
    try:
        d = shared / "study"
        share_read_only(d)
        (t,) = study.enqueue([{"lr": 0.03}])
        study.mark_started(t.id, 0)
        study.finish(t.id, "done", objective=0.125)
        rc, out, err = cli_as_reader(["show", str(d)])
        assert (rc, err) == (0, "")
        assert out.splitlines()[1].split()[:3] == ["3", "done", "0.125"]
    finally:
        study.close()


def test_a_log_a_reader_cannot_merge_is_refused_in_one_line(shared):
    study = make_study(shared)
    try:
        # A copy taken while the tuner had unmerged writes, without its -shm: reading the database
        # file alone (immutable) would silently miss trial 2's failure.
        copy = shared / "copy"
        copy.mkdir()
        for name in ("study.db", "study.db-wal", "space.toml"):
            shutil.copy(shared / "study" / name, copy / name)
    finally:
        study.close()
    share_read_only(copy)
    rc, out, err = cli_as_reader(["show", str(copy)])
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "study.db-wal holds changes" in err and "unexpected" not in err


def test_a_study_the_user_cannot_read_is_one_line(shared):
    make_study(shared).close()
    if os.geteuid() != 0:
        pytest.skip("the test user owns the study, so may read it")
    d = shared / "study"   # private by default: 0700
    rc, out, err = cli_as_reader(["show", str(d)])
    assert rc == 2 and err.count("\n") == 1 and "unexpected" not in err
