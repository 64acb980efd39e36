"""Rebuilding a lost study.db from the run directories, and refusing to create one over them.

The run directories here are written by hand, as a trainer, the launch shim and a tuner would have
left them, with pids of processes long gone: the live case is in tests/runtime/test_fault_windows.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from space_toml import lr, param, space_toml

from tui_tuner.cli import main
from tui_tuner.cli.recover import recover
from tui_tuner.errors import StudyError
from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study
from tui_tuner.trainer import protocol

DEAD = 999_999_999      # no process has this pid
TEXT = space_toml({"lr": lr(live=True), "layers": param("choice", values=[2, 3, 4], default=2, tier=3)},
                  name="rec", objective="loss")


def write_run(study_dir: Path, tid: int, *, params: dict | None = None, resume: str | None = None,
              events: list[dict] | None = None, exit_info: dict | None = None, control: list[dict] | None = None,
              output: str = "", launched: bool = True) -> Path:
    run = study_dir / "runs" / f"t{tid:04d}"
    run.mkdir(parents=True)
    protocol.write_json_atomic(run / protocol.PARAMS, {"trial": tid, "params": params or {"lr": 0.1, "layers": 2},
                                                       "resume": resume})
    if launched:
        protocol.write_json_atomic(run / protocol.LAUNCH, {"pid": DEAD, "started": 100.0 + tid})
    (run / protocol.EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events or []))
    (run / protocol.CONTROL).write_text("".join(json.dumps(c) + "\n" for c in control or []))
    (run / protocol.OUTPUT).write_text(output)
    if exit_info is not None:
        protocol.write_json_atomic(run / protocol.EXIT, {"signal": None, "ended": 150.0 + tid, **exit_info})
    return run


def steps(losses: list[float], t0: float = 110.0) -> list[dict]:
    return [{"t": t0 + i, "step": i + 1, "metrics": {"loss": v}} for i, v in enumerate(losses)]


@pytest.fixture
def lost(tmp_path) -> Path:
    """A study whose database is gone: runs of every kind, and some that cannot be recovered."""
    d = tmp_path / "study"
    d.mkdir()
    (d / "space.toml").write_text(TEXT)
    ckpt = {"t": 112.5, "event": "checkpoint", "seq": 1, "path": "ckpt/step-2.pt", "step": 2}
    write_run(d, 1, params={"lr": 0.1, "layers": 3},
              events=steps([0.9, 0.5])[:2] + [ckpt] + steps([0.9, 0.5, 0.7])[2:] + [{"t": 114, "event": "done"}],
              exit_info={"returncode": 0})
    # A fork of trial 1, made when the study lived elsewhere: params.json holds the old absolute path.
    write_run(d, 2, params={"lr": 0.3, "layers": 3}, resume="/old/home/study/runs/t0001/ckpt/step-2.pt",
              events=steps([0.4]), exit_info={"returncode": 1},
              output="Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'lr'\nwandb: bye\n")
    # Stopped: the trainer obeyed a stop it read after the tuner had died.
    write_run(d, 3, events=steps([0.8, 0.6]) + [{"t": 300.0, "event": "done"}],
              control=[{"seq": 1, "cmd": "stop", "t": 200.0}], exit_info={"returncode": 0})
    (write_run(d, 4) / protocol.PARAMS).write_text("[" * 100000)
    (d / "runs" / "t0005").write_text("a stray file")
    protocol.write_json_atomic(write_run(d, 6) / protocol.PARAMS, {"trial": 9, "params": {}, "resume": None})
    write_run(d, 7, launched=False)
    (d / "runs" / "t0009.attempt-1").mkdir()
    return d


def test_recover_rebuilds_trials_from_their_run_dirs(lost):
    (lost / "study.db").write_bytes(b"")
    result = recover(lost)
    assert result.statuses == {1: "done", 2: "failed", 3: "stopped"}
    with Study.open(lost) as s:
        one, two, three = s.trial(1), s.trial(2), s.trial(3)
        assert (one.params, one.objective, one.step, one.started, one.ended) == (
            {"lr": 0.1, "layers": 3}, 0.5, 3, 101.0, 151.0)
        assert (two.parent, two.fork_step, two.resume, two.source) == (1, 2, "runs/t0001/ckpt/step-2.pt", "fork")
        assert two.reason.splitlines()[0] == "exit code 1: x.py:1: KeyError: 'lr'"
        assert (three.reason, three.objective) == ("stopped", 0.6)
        assert s.best()[0].id == 1
        # New ids never reuse a name in runs/, skipped dirs and attempts set aside included.
        assert s.enqueue_manual({}).id == 10
    assert result.next_id == 10
    skipped = "\n".join(result.skipped)
    for why in ("runs/t0004/params.json is unreadable (not JSON)", "runs/t0005 is not a directory",
                "runs/t0006/params.json holds trial 9, not 6", "runs/t0007 never started (no launch.json)"):
        assert why in skipped
    assert any("the queue" in x for x in result.lost)
    # The emptied database was moved aside, not deleted.
    assert [p.read_bytes() for p in lost.glob("study.db.lost-*")] == [b""]


def test_recover_prints_what_it_did_and_what_is_lost(lost, capsys):
    assert main(["recover", str(lost)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"recovered 3 runs into {lost / 'study.db'}: 1 done, 1 failed, 1 stopped"
    assert out[1].startswith("skipped 4: ")
    assert any(line.startswith("not recoverable: the seed") for line in out)
    assert out[-1].startswith("new trials start at id 10")


def test_recover_refuses_a_study_that_still_has_its_trials(lost, capsys):
    recover(lost)
    assert main(["recover", str(lost)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"tui-tuner: {lost / 'study.db'}: holds 3 trials; recover rebuilds only a missing "
                           f"or empty study.db (move it aside first to rebuild it from runs/)")


def test_recover_needs_the_space_file_and_some_runs(tmp_path):
    d = tmp_path / "s"
    (d / "runs").mkdir(parents=True)
    with pytest.raises(StudyError, match=r"space\.toml: missing; recover needs the study's space file"):
        recover(d)
    (d / "space.toml").write_text(TEXT)
    with pytest.raises(StudyError, match="runs/ holds no runs, so there is nothing to recover"):
        recover(d)
    with pytest.raises(StudyError, match="no such study directory"):
        recover(tmp_path / "nowhere")


@pytest.mark.parametrize("db", [None, b""], ids=["missing", "empty"])
def test_opening_refuses_to_create_a_database_over_runs(lost, db):
    if db is not None:
        (lost / "study.db").write_bytes(db)
    space = parse_space(TEXT, str(lost / "space.toml"))
    line = (f"{lost}: runs/ holds 8 runs but study.db is missing or empty; "
            f"run `tui-tuner recover {lost}` to rebuild it")
    with pytest.raises(StudyError) as e:
        Study.open(lost, space)
    assert e.value.message == line
    with pytest.raises(StudyError) as e:
        Study.open(lost, lock=False)       # show, export
    assert e.value.message == line
    assert (lost / "study.db").exists() == (db is not None)
    assert (lost / "study.db").read_bytes() == db if db is not None else True


def test_a_new_study_with_an_empty_runs_dir_opens(tmp_path):
    (tmp_path / "s" / "runs").mkdir(parents=True)
    with Study.open(tmp_path / "s", parse_space(TEXT, "x.toml")) as s:
        assert s.trials() == []


def test_a_forks_step_is_read_from_a_checkpoint_event_past_the_first_read(tmp_path):
    """The parent's events are read to their end in bounded reads (the one tailer, JsonlTail.read_all):
    a checkpoint event beyond the first 8 MiB still gives the fork its step, which here only the
    event knows (the checkpoint's name holds none)."""
    d = tmp_path / "study"
    d.mkdir()
    (d / "space.toml").write_text(TEXT)
    parent = write_run(d, 1, events=steps([0.9, 0.8]), exit_info={"returncode": 0})
    with open(parent / protocol.EVENTS, "a") as f:
        f.write((" " * 1023 + "\n") * (9 << 10))   # 9 MiB of blank lines, skipped by the reader
        f.write(json.dumps({"t": 113.0, "event": "checkpoint", "seq": 1, "path": "ckpt/last", "step": 7}) + "\n")
        f.write(json.dumps({"t": 114.0, "event": "done"}) + "\n")
    write_run(d, 2, resume="runs/t0001/ckpt/last", events=steps([0.4]), exit_info={"returncode": 0})
    recover(d)
    with Study.open(d) as s:
        assert (s.trial(2).parent, s.trial(2).fork_step) == (1, 7)


@pytest.mark.parametrize("stray", ["t5", "t\u0665", "t00005", "t0005.attempt-x", "t٠٠٠٥"])
def test_a_stray_name_never_displaces_a_trial(tmp_path, capsys, stray):
    # A name that reads as trial 5 to int() (t5, an Arabic-Indic digit, a fifth digit) beside the real
    # runs/t0005: trial 5 comes back, the stray is reported and left as it is.
    d = tmp_path / "study"
    d.mkdir()
    (d / "space.toml").write_text(TEXT)
    write_run(d, 5, events=steps([0.4, 0.3]) + [{"t": 120, "event": "done"}], exit_info={"returncode": 0})
    (d / "runs" / stray).mkdir()
    assert main(["recover", str(d)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("recovered 1 run into") and "1 done" in out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("ignored 1 name")]
    assert line.endswith(": runs/" + stray) and (d / "runs" / stray).is_dir()
    with Study.open(d, lock=False) as s:
        assert s.trial(5).objective == 0.3


def test_a_huge_number_in_a_run_dir_is_no_crash(tmp_path, capsys):
    # A launch.json time and a checkpoint step no float or SQLite integer holds.
    d = tmp_path / "study"
    d.mkdir()
    (d / "space.toml").write_text(TEXT)
    ckpt = {"t": 10**400, "event": "checkpoint", "seq": 1, "path": "ckpt/step-1.pt", "step": 10**30}
    write_run(d, 1, events=steps([0.5]) + [ckpt], exit_info={"returncode": 0})
    protocol.write_json_atomic(d / "runs" / "t0001" / protocol.LAUNCH, {"pid": DEAD, "started": 10**400})
    write_run(d, 2, resume=str(d / "runs" / "t0001" / "ckpt" / f"step-{10**30}.pt"), events=steps([0.6]),
              exit_info={"returncode": 0})
    assert main(["recover", str(d)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("recovered 2 runs") and "the step of #1's checkpoint" in out


def test_a_slurm_job_still_in_the_queue_is_recovered_as_running(tmp_path, monkeypatch):
    # No launch.json yet: the job waits in Slurm's queue. Its job.json makes it a started trial, which
    # opening the study re-adopts by its job id (here no Slurm client is found: it cannot say, so running).
    monkeypatch.setenv("PATH", str(tmp_path))
    d = tmp_path / "study"
    d.mkdir()
    (d / "space.toml").write_text(TEXT)
    run = write_run(d, 1, launched=False)
    protocol.write_json_atomic(run / "job.json", {"job_id": "4711", "submitted": 120.0})
    result = recover(d)
    assert result.statuses == {1: "running"} and not result.skipped
    with Study.open(d) as s:
        assert (s.trial(1).started, s.trial(1).pid) == (120.0, 0)
