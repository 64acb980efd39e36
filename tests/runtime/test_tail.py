"""The one tailer (protocol.Tail) and what is built on it: JSONL events, output.log, the trainer's control poll."""

from __future__ import annotations

import json
import os
import time

import pytest

from tui_tuner import trainer
from tui_tuner.runtime.adapters import LineTail, tail_lines
from tui_tuner.trainer import protocol as P


@pytest.mark.parametrize("universal, chunks, lines", [
    (False, [b"a\nb", b"c\n"], [[b"a"], [b"bc"]]),
    (False, [b"a\rb\n"], [[b"a\rb"]]),                       # JSONL: only \n ends a line
    (True, [b"a\rb\r\nc\n"], [[b"a", b"b", b"c"]]),          # output.log: \r too (progress bars)
    (False, [b"\n\nx\n"], [[b"", b"", b"x"]]),                # blank lines are the reader's business
])
def test_tail_returns_only_new_complete_lines(tmp_path, universal, chunks, lines):
    path = tmp_path / "f"
    tail = P.Tail(path, universal=universal)
    assert tail.read_lines() == [] and not tail.grew()     # not there yet
    for chunk, want in zip(chunks, lines, strict=True):
        with open(path, "ab") as f:
            f.write(chunk)
        assert tail.grew()
        assert tail.read_lines() == want
    assert not tail.grew() and tail.read_lines() == []


def test_tail_hands_back_an_endless_line_cut_and_an_unfinished_last_one_only_when_final(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 50 + b"\nhalf")
    tail = P.Tail(path, max_line=10)
    assert tail.read_lines() == [b"x" * 50]         # a complete line is whole
    assert tail.position == 51
    assert tail.read_lines(final=True) == [b"half"]
    with open(path, "ab") as f:
        f.write(b"y" * 25)
    assert tail.read_lines() == [b"y" * 10]           # unfinished and too long: cut, not buffered


def test_tail_bounded_reads_and_truncation(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"".join(b"%d\n" % i for i in range(100)))
    tail = P.Tail(path, max_bytes=50)
    got = []
    while True:
        got += tail.read_lines(final=True)
        if not tail.behind:
            break
    assert got == [b"%d" % i for i in range(100)]
    path.write_bytes(b"new\n")
    assert tail.read_lines() == [b"new"]


def test_tail_starts_over_on_a_new_file_at_the_path_even_a_longer_one(tmp_path):
    # A requeued Slurm job's rerun: the shim moves the old events aside and the trainer writes anew,
    # maybe more than was read of the old file before the next poll.
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"old 1\nold 2\n")
    tail = P.Tail(path)
    assert tail.read_lines() == [b"old 1", b"old 2"]
    os.replace(path, tmp_path / "events.requeued-1.jsonl")
    (tmp_path / "new").write_bytes(b"new 1\nnew 2\nnew 3\n")
    os.replace(tmp_path / "new", path)
    assert tail.read_lines() == [b"new 1", b"new 2", b"new 3"]


def test_last_lines_reads_from_the_end(tmp_path):
    path = tmp_path / "out.log"
    path.write_bytes(b"".join(b"line %d\r\n" % i for i in range(1000)) + b"\n\nlast")
    assert P.last_lines(path, 2) == ["line 999", "last"]
    assert P.last_lines(path, 0) == [] and P.last_lines(tmp_path / "missing", 5) == []
    assert P.last_lines(path, None, max_bytes=20)[-1] == "last"
    assert tail_lines(path, 1) == ["last"]


def test_line_tail_flush_reads_to_the_end_in_bounded_chunks(tmp_path):
    path = tmp_path / "out.log"
    path.write_bytes(b"".join(b"step %d\n" % i for i in range(200)) + b"tail")
    t = LineTail(path, max_bytes=64)
    assert t.flush() == [f"step {i}" for i in range(200)] + ["tail"]


def test_jsonl_read_all(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"seq": 1}\nnope\n{"seq": 2}')
    assert list(P.JsonlTail(path, max_bytes=7).read_all()) == [{"seq": 1}, {"seq": 2}]
    assert list(P.JsonlTail(path).read_all(final=False)) == [{"seq": 1}]


def test_trainer_control_poll_waits_for_a_command_line_to_end(tmp_path):
    run_dir = tmp_path / "t0001"
    run_dir.mkdir()
    P.write_json_atomic(run_dir / P.PARAMS, {"trial": 1, "params": {"lr": 0.1}, "resume": None})
    run = trainer.Run(str(run_dir), argv=[])
    try:
        ctl = run_dir / P.CONTROL
        line = json.dumps({"seq": 1, "cmd": "set", "params": {"lr": 0.5}}).encode()
        with open(ctl, "ab") as f:
            f.write(line[:10])              # a command being written: not a command yet
        time.sleep(trainer.CHECK_INTERVAL * 2)
        run.report(1, loss=1.0)
        assert run.changes() == {}
        with open(ctl, "ab") as f:
            f.write(line[10:] + b"\n" + json.dumps({"seq": 1, "cmd": "stop"}).encode() + b"\n")
        time.sleep(trainer.CHECK_INTERVAL * 2)
        run.report(2, loss=1.0)
        # Applied once the line ended; a repeated seq is not applied again.
        assert run.changes() == {"lr": 0.5} and not run.should_stop()
    finally:
        run.close()
    assert os.path.exists(run_dir / P.EVENTS)
