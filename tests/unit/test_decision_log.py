"""The decision log in study.db: ids, newest first, kept across a restart, undone once only."""

from __future__ import annotations

import pytest
from space_toml import lr, space_toml

from tui_tuner.errors import StudyError
from tui_tuner.search.space import parse_space
from tui_tuner.study.decision_log import DecisionLog
from tui_tuner.study.study import Study

SPACE = parse_space(space_toml({"lr": lr(live=True)}, name="log"))


def test_decisions_get_ids_list_newest_first_and_survive_a_restart(tmp_path):
    study = Study.open(tmp_path / "s", SPACE)
    log = DecisionLog(study.store)
    assert log.all() == []
    a = log.add("early_stop", 3, "stopped #3", {"value": 0.91, "cutoff": 0.74})
    b = log.add("pbt", 5, "stopped #5; slot given to #9", {"child": 9, "changes": {"lr": 0.0125}})
    c = log.add("auto_k", None, "k 2 → 3", {"from": 2, "to": 3, "odd": {1, 2}})   # not JSON: kept as text
    assert (a.id, b.id, c.id) == (1, 2, 3)
    assert [d.id for d in log.all()] == [3, 2, 1]
    assert [d.id for d in log.all(newest_first=False, limit=2)] == [1, 2]
    assert log.get(2).data == {"child": 9, "changes": {"lr": 0.0125}}
    assert log.get(3).data["odd"] == "{1, 2}"
    study.close()

    again = Study.open(tmp_path / "s", SPACE)
    log = DecisionLog(again.store)
    assert [(d.kind, d.trial_id, d.message) for d in log.all(newest_first=False)] == [
        ("early_stop", 3, "stopped #3"), ("pbt", 5, "stopped #5; slot given to #9"), ("auto_k", None, "k 2 → 3")]
    done = log.mark_undone(2, "#10 resumes #5; stopping #9")
    assert done.is_undone and done.undone == "#10 resumes #5; stopping #9" and done.undone_t is not None
    with pytest.raises(StudyError, match="decision #2 was already undone: #10 resumes #5"):
        log.mark_undone(2, "again")
    with pytest.raises(StudyError, match="already undone"):
        log.check_undoable(2)
    with pytest.raises(StudyError, match="no decision #99"):
        log.mark_undone(99, "x")
    assert log.latest("pbt", 5) is None and log.latest("early_stop", 3).id == 1
    again.close()

    reader = Study.open(tmp_path / "s", lock=False)   # `show` reads while a tuner may write
    assert [d.undone is not None for d in DecisionLog(reader.store).all()] == [False, True, False]
    reader.close()


def test_a_study_from_before_the_log_reads_as_empty_even_read_only(tmp_path):
    Study.open(tmp_path / "old", SPACE).close()
    reader = Study.open(tmp_path / "old", lock=False)
    log = DecisionLog(reader.store)
    assert log.all() == [] and log.latest("pbt", 1) is None
    with pytest.raises(StudyError, match="no decision #1"):
        log.get(1)
    reader.close()
