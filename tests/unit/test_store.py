"""The store: SQLite rows and meta, atomic files, the flock, and durability when the writer is SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from space_toml import lr, param, space_toml

from tui_tuner.errors import StudyError
from tui_tuner.search.space import parse_space
from tui_tuner.study.lock import StudyLock, describe_holder
from tui_tuner.study.store import (
    FINISHED,
    SCHEMA_VERSION,
    Store,
    Trial,
    clean_objective,
    run_id,
    write_atomic,
)
from tui_tuner.study.study import Study

SPACE = space_toml({"lr": lr(default=None), "units": param("int", low=1, high=1000)}, name="store", objective="loss")


def test_run_id_and_trial_flags():
    assert run_id(3) == "t0003" and run_id(12345) == "t12345"
    t = Trial(id=7, status="paused", params={})
    assert t.run_id == "t0007" and t.active and not t.finished
    assert all(Trial(id=1, status=s, params={}).finished for s in FINISHED)


def test_clean_objective():
    assert clean_objective(None) is None and clean_objective(float("nan")) is None
    assert clean_objective(1) == 1.0 and clean_objective(float("-inf")) == float("-inf")


def test_schema_meta_and_rows_round_trip(tmp_path):
    store = Store(tmp_path / "study.db", create=True)
    assert not store.initialised()
    store.create_schema({"name": "x", "nested": {"a": [1, 2.5, True, None]}})
    assert store.initialised()
    assert store.get_meta("schema_version") == SCHEMA_VERSION
    assert store.get_meta("nested") == {"a": [1, 2.5, True, None]}
    assert store.get_meta("absent", "d") == "d"
    with store.tx() as db:
        tid = Store.insert(db, status="queued", params={"i": 1, "f": 1.0, "b": False, "s": "x"},
                           source="random", created=1.0, queue_pos=0)
    t = store.trial(tid)
    # JSON keeps the types a TOML export needs: 1 vs 1.0 vs false.
    assert t.params == {"i": 1, "f": 1.0, "b": False, "s": "x"}
    assert [type(v) for v in t.params.values()] == [int, float, bool, str]
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    store.close()
    store.close()  # idempotent


def test_failed_transaction_leaves_nothing(tmp_path):
    store = Store(tmp_path / "study.db", create=True)
    store.create_schema({})
    with pytest.raises(RuntimeError), store.tx() as db:
        Store.insert(db, status="queued", params={}, source="random", created=1.0)
        store.write_meta(db, {"k": 1})
        raise RuntimeError("boom")
    assert store.trials() == [] and store.get_meta("k") is None
    store.close()


def test_a_database_error_in_a_transaction_is_a_study_error(tmp_path):
    # A disk that fills up mid-transaction: a StudyError naming the database, nothing half-written.
    store = Store(tmp_path / "study.db", create=True)
    store.create_schema({})
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(StudyError, match=r"study\.db: database error: .*full"), store.tx() as db:
        Store.insert(db, status="queued", params={}, source="random", created=1.0)
        for i in range(100):
            store.write_meta(db, {f"k{i}": "x" * 100_000})
    assert store.trials() == [] and store.get_meta("k0") is None
    store.close()


def test_a_failing_rollback_does_not_hide_the_error(tmp_path):
    store = Store(tmp_path / "study.db", create=True)
    store.create_schema({})
    with pytest.raises(StudyError, match="database error: no such table"), store.tx() as db:
        db.execute("ROLLBACK")       # the transaction is gone: the tuner's ROLLBACK will fail too
        db.execute("INSERT INTO no_such_table VALUES (1)")
    with pytest.raises(RuntimeError, match="boom"), store.tx() as db:
        db.execute("ROLLBACK")
        raise RuntimeError("boom")
    store.close()


def test_store_is_safe_across_threads(tmp_path):
    store = Store(tmp_path / "study.db", create=True)
    store.create_schema({})

    def writer(k: int) -> None:
        for i in range(50):
            with store.tx() as db:
                Store.insert(db, status="queued", params={"k": k, "i": i}, source="random", created=0.0)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.trials()) == 200
    store.close()


def test_write_atomic_replaces_whole_and_leaves_no_tmp(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    write_atomic(target, b"old")
    write_atomic(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, b"never seen")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_lock_writes_holder_and_refuses_second(tmp_path):
    a, b = StudyLock(tmp_path), StudyLock(tmp_path)
    a.acquire()
    holder = json.loads((tmp_path / ".lock").read_text())
    assert holder["pid"] == os.getpid() and holder["host"] and holder["command"]
    with pytest.raises(StudyError, match=rf"in use by pid {os.getpid()} on "):
        b.acquire()
    assert not b.held
    a.release()
    a.release()  # idempotent
    b.acquire()
    assert b.held
    b.release()


def test_describe_holder_tolerates_garbage():
    assert describe_holder("") == "another process"
    assert describe_holder("{not json") == "another process"
    assert describe_holder('{"pid": 5, "host": "h", "command": "c"}') == "pid 5 on h (c)"


# -- a killed writer leaves a readable study ------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from tui_tuner.search.space import load_space
    from tui_tuner.study.study import Study
    s = Study.open(sys.argv[1], load_space(sys.argv[2]))
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        (t,) = s.enqueue([{"lr": 0.01, "units": 1 + i % 1000}])
        s.move(t.id, -1)
        s.mark_started(t.id, pid=100000 + i)
        s.update_progress(t.id, i, float(i))
        s.finish(t.id, "done", objective=float(i))
        s.set_meta("counter", {"i": i, "pad": "x" * (i % 300)})
""")

LAUNCHER = textwrap.dedent("""
    import subprocess, sys, time
    from tui_tuner.study.study import Study
    s = Study.open(sys.argv[1])
    # A long-lived child in its own session, as the runner starts trainers: it must not inherit the lock.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             start_new_session=True, close_fds=False)
    print(child.pid, flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("delay", [0.15, 0.4])
def test_sigkilled_writer_leaves_a_readable_study(tmp_path, delay):
    space_file = tmp_path / "space.toml"
    space_file.write_text(SPACE)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    d = tmp_path / "study"
    proc = subprocess.Popen([sys.executable, str(script), str(d), str(space_file)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with Study.open(d) as s:  # the flock died with the writer
        assert s.store.query("PRAGMA integrity_check")[0][0] == "ok"
        trials = s.trials("id")
        assert len(trials) > 3  # the loop really ran
        assert sum(s.counts().values()) == len(trials)
        # Every transaction is whole: a done trial has all its fields, at most the last is mid-way.
        done = [t for t in trials if t.status == "done"]
        assert len(done) >= len(trials) - 1
        for t in done:
            assert t.objective == float(t.step) and t.ended and t.started and t.pid is None
        counter = s.meta("counter")
        assert counter["pad"] == "x" * (counter["i"] % 300)
        assert counter["i"] in (len(done), len(done) - 1)
        s.enqueue([{"lr": 0.1, "units": 5}])  # and it takes writes again


def test_lock_dies_with_its_owner_even_if_a_child_lives_on(tmp_path):
    Study.open(tmp_path / "s", parse_space(SPACE, "s.toml")).close()
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "s")], stdout=subprocess.PIPE,
                            text=True)
    child = None
    try:
        child = int(proc.stdout.readline())
        with pytest.raises(StudyError, match=f"pid {proc.pid}"):
            Study.open(tmp_path / "s")
    finally:
        proc.kill()
        proc.wait()
    try:
        os.kill(child, 0)  # the child is still alive ...
        Study.open(tmp_path / "s").close()  # ... and the lock is free
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
