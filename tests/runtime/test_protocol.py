"""The run-directory protocol's readers, on files written here (no processes)."""

from __future__ import annotations

import json

from tui_tuner import protocol as P


def test_final_reads_in_small_chunks_do_not_cut_lines(tmp_path):
    # A settling run reads its events with final=True in bounded chunks: a line cut at a chunk's
    # end must wait for its other half, not be parsed as a finished (garbage) last line.
    path = tmp_path / P.EVENTS
    path.write_text("".join(json.dumps({"step": i, "metrics": {"loss": i / 7}}) + "\n" for i in range(1000)))
    tail = P.JsonlTail(path, max_bytes=100)
    events, garbage = [], 0
    for _ in range(10000):
        new, bad = tail.read_new(final=True)
        events += new
        garbage += bad
        if not tail.behind:
            break
    assert garbage == 0
    assert [e["step"] for e in events] == list(range(1000))


def test_final_still_takes_an_unterminated_last_line_once_caught_up(tmp_path):
    path = tmp_path / P.EVENTS
    path.write_text('{"a": 1}\n' * 30 + '{"last": true}')
    tail = P.JsonlTail(path, max_bytes=64)
    events = []
    while True:
        new, bad = tail.read_new(final=True)
        assert bad == 0
        events += new
        if not tail.behind:
            break
    assert events[-1] == {"last": True} and len(events) == 31
