"""Study: the ordered queue, lifecycle, lineage, reopening, refusals, and the one-owner lock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from space_toml import hidden, layers, lr, param, space_toml, switch

from tui_tuner.errors import SpaceError, StudyError
from tui_tuner.search.sampling import Sampler
from tui_tuner.search.space import parse_space
from tui_tuner.search.state import SearchState, ZoomLevel
from tui_tuner.study.study import STATUSES, Study, default_dir

PARAMS = {"lr": lr(live=True), "hidden": hidden(default=64), "layers": layers(), "adam": switch()}


def make_space(direction: str = "minimize", params: dict | None = None, path: str = "unit.toml", **study):
    """The study tests' space (seed 7); `params` replace or add parameters, `study` [study] keys (None drops one)."""
    text = space_toml({**PARAMS, **(params or {})}, **{"name": "unit", "direction": direction, "seed": 7, **study})
    return parse_space(text, path)


@pytest.fixture
def study(tmp_path):
    s = Study.open(tmp_path / "st", make_space())
    yield s
    s.close()


def setting(lr=0.01, hidden=64, layers=2, adam=True):
    return {"lr": lr, "hidden": hidden, "layers": layers, "adam": adam}


def run_trial(study, tid, objective, status="done", step=10):
    study.mark_started(tid, pid=4242)
    study.update_progress(tid, step, None)
    return study.finish(tid, status, objective)


# -- creation and the directory contract ---------------------------------------------------------


def test_new_study_lays_out_the_directory(tmp_path):
    space = make_space()
    with Study.open(tmp_path / "a" / "b", space) as s:
        assert s.dir == tmp_path / "a" / "b"
        assert (s.dir / "study.db").is_file() and (s.dir / "runs").is_dir()
        assert (s.dir / "space.toml").read_text() == space.text
        assert s.config.objective == "val_loss" and s.name == "unit"
        assert s.seed == 7  # the space's seed is recorded
        assert s.run_dir(3) == s.dir / "runs" / "t0003"
        assert s.meta("schema_version") == 1
        assert s.counts() == dict.fromkeys(STATUSES, 0)


def test_default_dir_is_studies_slash_name():
    assert default_dir(make_space()) == Path("studies") / "unit"


def test_seed_argument_wins_at_creation_and_is_kept_on_reopen(tmp_path):
    with Study.open(tmp_path / "s", make_space(), seed=123) as s:
        assert s.seed == 123
    with Study.open(tmp_path / "s", make_space(), seed=999) as s:
        assert s.seed == 123


def test_random_seed_recorded_when_none_given(tmp_path):
    space = make_space(seed=None, path="x.toml")
    with Study.open(tmp_path / "s", space) as s:
        seed = s.seed
        assert isinstance(seed, int)
    with Study.open(tmp_path / "s") as s:
        assert s.seed == seed


def test_missing_study_needs_a_space(tmp_path):
    with pytest.raises(StudyError, match="pass a space file"):
        Study.open(tmp_path / "nothing")
    with pytest.raises(StudyError, match="no study here"):
        Study.open(tmp_path / "nothing", lock=False)
    assert not (tmp_path / "nothing").exists()


def test_a_file_is_not_a_study(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StudyError, match="not a directory"):
        Study.open(tmp_path / "f", make_space())


# -- queue ---------------------------------------------------------------------------------------


def test_enqueue_keeps_order_and_fills_defaults(study):
    ts = study.enqueue([setting(lr=0.1), {"lr": 0.2}, setting(lr=0.3)])
    assert [t.id for t in study.queue()] == [t.id for t in ts] == [1, 2, 3]
    assert ts[1].params == {"lr": 0.2, "hidden": 64, "layers": 2, "adam": True}
    assert all(t.status == "queued" and t.source == "random" for t in ts)
    assert study.pop_next().id == 1
    assert study.pop_next().status == "queued"  # pop_next only looks


def test_enqueue_front_and_manual(study):
    study.enqueue([setting(lr=0.1), setting(lr=0.2)])
    front = study.enqueue([setting(lr=0.3), setting(lr=0.4)], "grid", front=True)
    manual = study.enqueue_manual({"lr": 0.5, "layers": 4})
    assert [t.params["lr"] for t in study.queue()] == [0.3, 0.4, 0.1, 0.2, 0.5]
    assert front[0].source == "grid" and manual.source == "manual"
    assert manual.params["layers"] == 4 and manual.params["hidden"] == 64


def test_enqueue_is_all_or_nothing(study):
    with pytest.raises(SpaceError, match=r"params\.lr: .*outside"):
        study.enqueue([setting(lr=0.1), setting(lr=5.0)])
    assert study.queue() == []
    with pytest.raises(StudyError, match="unknown trial source"):
        study.enqueue([setting()], "magic")


def test_move_drop_and_ids_never_reused(study):
    a, b, c, d = study.enqueue([setting(lr=x) for x in (0.1, 0.2, 0.3, 0.4)])
    study.move(d.id, -2)
    assert [t.id for t in study.queue()] == [a.id, d.id, b.id, c.id]
    study.move(a.id, 10)  # clamped at the end
    assert [t.id for t in study.queue()] == [d.id, b.id, c.id, a.id]
    study.move(b.id, -99)
    assert [t.id for t in study.queue()] == [b.id, d.id, c.id, a.id]
    study.drop(c.id)
    assert [t.id for t in study.queue()] == [b.id, d.id, a.id]
    (e,) = study.enqueue([setting()])
    assert e.id == 5 and study.queue()[-1].id == e.id
    with pytest.raises(StudyError, match="no trial 3"):
        study.trial(c.id)


def test_queue_ops_refuse_started_trials(study):
    (t,) = study.enqueue([setting()])
    study.mark_started(t.id, 1)
    for op in (lambda: study.drop(t.id), lambda: study.move(t.id, 1), lambda: study.edit(t.id, {"lr": 0.1})):
        with pytest.raises(StudyError, match="running, not queued"):
            op()


@pytest.mark.parametrize("changes, rule", [
    ({"lr": 2.0}, r"params\.lr: 2 is outside \[0\.0001, 1\]"),
    ({"hidden": 60.5}, r"params\.hidden: must be an integer"),
    ({"layers": 5}, r"params\.layers: 5 is not among the values"),
    ({"nope": 1}, r"params\.nope: no such parameter"),
    ({"lr": "fast"}, r"params\.lr: must be a number"),
])
def test_bad_edit_names_parameter_and_rule_and_changes_nothing(study, changes, rule):
    (t,) = study.enqueue([setting(lr=0.01, hidden=70)])
    with pytest.raises(SpaceError, match=rule):
        study.edit(t.id, {"hidden": 80, **changes})
    assert study.trial(t.id).params == t.params


def test_edit_coerces_and_keeps_types(study):
    (t,) = study.enqueue([setting()])
    t2 = study.edit(t.id, {"hidden": 80.0, "lr": 1, "adam": False})
    assert t2.params == {"lr": 1.0, "hidden": 80, "layers": 2, "adam": False}
    assert type(t2.params["hidden"]) is int and type(t2.params["lr"]) is float
    assert list(t2.params) == ["lr", "hidden", "layers", "adam"]


# -- lifecycle -----------------------------------------------------------------------------------


def test_lifecycle_records_times_step_pid_and_reason(study):
    (t,) = study.enqueue([setting()])
    r = study.mark_started(t.id, pid=777)
    assert r.status == "running" and r.pid == 777 and r.started and r.queue_pos is None
    assert study.active() == [r] and study.queue() == []
    assert study.set_status(t.id, "paused").status == "paused"
    assert study.set_status(t.id, "running").status == "running"
    study.update_progress(t.id, 50, 0.7)
    study.update_progress(t.id, 60, None)  # None keeps the objective so far
    assert (study.trial(t.id).step, study.trial(t.id).objective) == (60, 0.7)
    f = study.finish(t.id, "failed", reason="exit code 1")
    assert (f.status, f.reason, f.pid, f.objective) == ("failed", "exit code 1", None, 0.7)
    assert f.ended >= f.started and f.finished and not f.active
    with pytest.raises(StudyError, match="already ended"):
        study.finish(t.id, "done")
    with pytest.raises(StudyError, match="already ended"):
        study.set_status(t.id, "running")


def test_status_rules(study):
    a, b = study.enqueue([setting(), setting()])
    with pytest.raises(StudyError, match="start it before"):
        study.set_status(a.id, "paused")
    with pytest.raises(StudyError, match="unknown status"):
        study.set_status(a.id, "sleeping")
    with pytest.raises(StudyError, match="not an end status"):
        study.finish(a.id, "paused")
    study.mark_started(a.id, 1)
    with pytest.raises(StudyError, match="only a queued trial can start"):
        study.mark_started(a.id, 1)
    # Back to the queue (e.g. a launch that never happened): at the end, pid cleared.
    q = study.set_status(a.id, "queued")
    assert q.pid is None and [t.id for t in study.queue()] == [b.id, a.id]
    # A queued trial that can never run may be settled directly.
    assert study.set_status(b.id, "failed", reason="cannot launch").status == "failed"


def test_nan_objective_is_stored_as_none_and_inf_kept(study):
    a, b = study.enqueue([setting(), setting()])
    assert run_trial(study, a.id, float("nan"), status="diverged").objective is None
    assert run_trial(study, b.id, float("inf"), status="diverged").objective == float("inf")


@pytest.mark.parametrize("direction, best_first", [("minimize", [0.1, 0.3, 0.5]),
                                                   ("maximize", [0.5, 0.3, 0.1])])
def test_best_and_counts_in_both_directions(tmp_path, direction, best_first):
    with Study.open(tmp_path / "s", make_space(direction)) as s:
        ts = s.enqueue([setting(lr=x) for x in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06)])
        for t, obj in zip(ts[:3], (0.3, 0.1, 0.5), strict=True):
            run_trial(s, t.id, obj)
        run_trial(s, ts[3].id, -100.0 if direction == "minimize" else 100.0, status="stopped")
        s.mark_started(ts[4].id, 9)
        s.update_progress(ts[4].id, 3, 0.2)
        assert [t.objective for t in s.best(5)] == best_first  # done only
        assert [t.objective for t in s.best()] == best_first[:1]
        assert s.best(0) == []
        assert s.counts() == {**dict.fromkeys(STATUSES, 0), "queued": 1, "running": 1, "done": 3,
                              "stopped": 1}
        assert s.budget_used() == 5
        ranked = s.trials("best")
        # Done and stopped trials first, ranked by value together (a stopped trial is judged on the
        # value it was cut short at; the screens mark it); then the running one; then the queue.
        assert [t.id for t in ranked[:4]] == [ts[3].id] + [t.id for t in sorted(
            ts[:3], key=lambda t: s.trial(t.id).objective, reverse=direction == "maximize")]
        assert [t.id for t in ranked[4:]] == [ts[4].id, ts[5].id]
        assert [t.id for t in s.trials("id")] == [t.id for t in ts]
        assert [t.id for t in s.trials("start")][-1] == ts[5].id
        assert [t.id for t in s.finished()] == [t.id for t in ts[:4]]
        with pytest.raises(StudyError, match="unknown order"):
            s.trials("random")


def test_fork_goes_to_front_with_lineage(study):
    a, b = study.enqueue([setting(lr=0.01), setting(lr=0.02)])
    study.mark_started(a.id, 5)
    f = study.add_fork(a.id, {"lr": 0.005}, fork_step=120, resume="runs/t0001/ckpt/step-120.pt")
    assert (f.parent, f.fork_step, f.resume, f.source) == (a.id, 120, "runs/t0001/ckpt/step-120.pt", "fork")
    assert f.params == {**a.params, "lr": 0.005}
    assert study.pop_next().id == f.id
    study.mark_started(f.id, 6)
    g = study.add_fork(f.id, {}, fork_step=200, resume=None)
    assert g.params == f.params
    assert [t.id for t in study.lineage(g.id)] == [g.id, f.id, a.id]
    assert [t.id for t in study.children(a.id)] == [f.id]
    assert [t.id for t in study.queue()] == [g.id, b.id]
    with pytest.raises(SpaceError, match=r"params\.lr"):
        study.add_fork(a.id, {"lr": 9.0}, 1, None)
    with pytest.raises(StudyError, match="no trial 99"):
        study.add_fork(99, {}, 1, None)


# -- persistence ---------------------------------------------------------------------------------


def test_reopen_continues_queue_trials_meta_and_state(tmp_path):
    d = tmp_path / "s"
    with Study.open(d, make_space()) as s:
        a, b, c = s.enqueue([setting(lr=x) for x in (0.1, 0.2, 0.3)])
        s.move(c.id, -2)
        run_trial(s, a.id, 0.4)
        s.set_meta("zoom_history", [{"at": 1}])
        state = SearchState(stage=2, frozen={"layers": 3},
                            levels=[ZoomLevel(bounds={"lr": (0.2, 0.6)}, trials=[a.id])])
        s.search_state = state
        (z,) = s.enqueue([setting()], "zoom")
        assert z.zoom_level == 1
    with Study.open(d) as s:  # no space: space.toml
        assert s.space.signature() == make_space().signature()
        assert [t.id for t in s.queue()] == [c.id, b.id, z.id]
        assert s.trial(a.id).objective == 0.4 and s.trial(a.id).status == "done"
        assert s.meta("zoom_history") == [{"at": 1}] and s.meta("missing", 5) == 5
        assert s.search_state == state
        (n,) = s.enqueue([setting()])
        assert n.id == z.id + 1


def test_default_search_state_follows_the_space_stage(tmp_path):
    space = make_space(stage=2, path="x.toml")
    with Study.open(tmp_path / "s", space) as s:
        assert s.search_state.stage == 2 and s.search_state.levels == []


def test_sampler_continues_its_stream_after_reopen(tmp_path):
    # Drawing 3, reopening, drawing 3 gives what one uninterrupted sampler gives.
    with Study.open(tmp_path / "a", make_space()) as s:
        first = [t.params for t in s.sample(3)]
    with Study.open(tmp_path / "a") as s:
        second = [t.params for t in s.sample(3)]
        assert s.budget_used() == 0 and len(s.queue()) == 6
        assert [t.source for t in s.queue()] == ["random"] * 6
    sampler = Sampler(make_space(), 7)
    state = SearchState()
    assert first == sampler.random(state, 3)
    assert second == sampler.random(state, 3)
    assert first != second


def test_reopen_with_other_parameters_is_refused(tmp_path):
    d = tmp_path / "s"
    Study.open(d, make_space()).close()
    other = make_space(params={"lr": lr(live=True, high=0.5)}, path="other.toml")
    with pytest.raises(StudyError) as e:
        Study.open(d, other)
    msg = e.value.message
    assert "other.toml" in msg and "params.lr.high" in msg
    assert "start a new study" in msg and "pass the same file" in msg and "\n" not in msg
    more = make_space(params={"wd": param("float", low=0.0, high=0.1)}, path="more.toml")
    with pytest.raises(StudyError, match=r"params\.wd is new"):
        Study.open(d, more)
    # The refusal left the study as it was (and unlocked).
    with Study.open(d, make_space()) as s:
        assert s.space.signature() == make_space().signature()


def test_reopen_with_other_direction_is_refused(tmp_path):
    Study.open(tmp_path / "s", make_space()).close()
    with pytest.raises(StudyError, match=r"ranks trials by val_loss \(minimize\)"):
        Study.open(tmp_path / "s", make_space("maximize"))


def test_same_parameters_other_settings_update_space_toml(tmp_path):
    d = tmp_path / "s"
    Study.open(d, make_space()).close()
    newer = make_space(command=["python", "train2.py"], path="newer.toml")
    with Study.open(d, newer) as s:
        assert s.config.command == ("python", "train2.py")
    with Study.open(d) as s:
        assert s.config.command == ("python", "train2.py")
    assert "train2.py" in (d / "space.toml").read_text()


def test_hand_edited_space_toml_is_refused_and_deleted_one_restored(tmp_path):
    d = tmp_path / "s"
    Study.open(d, make_space()).close()
    (d / "space.toml").unlink()
    with Study.open(d) as s:  # the db keeps the text
        assert s.space.signature() == make_space().signature()
    assert (d / "space.toml").is_file()
    (d / "space.toml").write_text((d / "space.toml").read_text().replace("low = 50", "low = 10"))
    with pytest.raises(StudyError, match=r"space\.toml: was edited .*params\.hidden\.low"):
        Study.open(d)


def test_read_only_open_refuses_writes(tmp_path):
    d = tmp_path / "s"
    with Study.open(d, make_space()) as owner:
        owner.enqueue([setting()])
        with Study.open(d, lock=False) as ro:  # reads while the owner holds the lock
            assert ro.readonly and len(ro.queue()) == 1
            with pytest.raises(StudyError, match="read-only"):
                ro.enqueue([setting()])
            with pytest.raises(StudyError, match="read-only"):
                ro.search_state = SearchState()


def test_newer_schema_is_refused(tmp_path):
    d = tmp_path / "s"
    with Study.open(d, make_space()) as s:
        s.set_meta("schema_version", 99)
    with pytest.raises(StudyError, match="schema version 99 is newer"):
        Study.open(d)


# -- the lock ------------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from tui_tuner.study.study import Study
    s = Study.open(sys.argv[1])
    print("ready", flush=True)
    time.sleep(60)
""")


def test_second_owner_in_another_process_is_refused_naming_the_holder(tmp_path):
    d = tmp_path / "s"
    Study.open(d, make_space()).close()
    script = tmp_path / "hold_study.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen([sys.executable, str(script), str(d)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(StudyError) as e:
            Study.open(d)
        msg = e.value.message
        assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "hold_study.py" in msg
        assert "\n" not in msg
        with Study.open(d, lock=False) as ro:  # readers are still welcome
            assert ro.counts()["queued"] == 0
    finally:
        proc.kill()  # SIGKILL: no chance to clean up; the kernel drops the flock
        proc.wait()
    with Study.open(d) as s:
        assert s.name == "unit"


def test_second_owner_in_the_same_process_is_refused(tmp_path):
    with Study.open(tmp_path / "s", make_space()):
        with pytest.raises(StudyError, match=f"in use by pid {os.getpid()}"):
            Study.open(tmp_path / "s")
    Study.open(tmp_path / "s").close()  # released on close


def test_live_changes_become_the_trials_setting(study):
    (t,) = study.enqueue([setting(lr=0.01)])
    with pytest.raises(StudyError, match="only to a running trial"):
        study.apply_live(t.id, {"lr": 0.003})
    study.mark_started(t.id, 7)
    after = study.apply_live(t.id, {"lr": 0.003})
    assert after.params == {**t.params, "lr": 0.003}
    with pytest.raises(SpaceError, match=r"params\.lr: 5 is outside"):
        study.apply_live(t.id, {"lr": 5.0})
    assert study.trial(t.id).params["lr"] == 0.003
