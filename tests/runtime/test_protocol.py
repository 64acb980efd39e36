"""The run-directory protocol's readers, on files written here (no processes)."""

from __future__ import annotations

import json

from tui_tuner.trainer import protocol as P


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


# Lines the C parser reads, and lines it refuses that the standard library reads (NaN and Infinity
# literals, 1e400, a lone surrogate, a BOM): each must mean what json.loads says, or be refused by both.
LINES = [
    b'{"t":1.5,"step":3,"metrics":{"loss":0.25,"acc":"NaN"}}',
    b'{"step":123456789012345678901234567890,"metrics":{}}',
    b'{"a":-0.0,"b":1e-400,"c":1.7976931348623157e308,"d":[1,{"e":null}],"a":2}',
    b'{"metrics":{"loss":NaN,"val":Infinity,"x":-Infinity}}',
    b'{"metrics":{"loss":1e400}}',
    b'{"s":"\\ud800"}',
    b'\xef\xbb\xbf{"a":1}',
    b' {"a":1}\r',
    b'[1, 2]',
    b'{"a": 1',
    b'\xff',
    b'"a\x01b"',
    b'[' * 5000,
]


def _json_or_refused(line: bytes):
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return "refused"


def test_loads_line_means_what_json_loads_means():
    from tui_tuner.trainer import tailing

    assert tailing.msgspec is not None   # the tuner's environment has the fast parser
    for line in LINES:
        try:
            got = P.loads_line(line)
        except (ValueError, RecursionError):
            got = "refused"
        want = _json_or_refused(line)
        # NaN is not equal to itself: compare the JSON texts of both readings.
        assert json.dumps(got) == json.dumps(want), line


def test_a_tail_counts_the_same_garbage_with_the_fast_parser(tmp_path):
    path = tmp_path / P.EVENTS
    path.write_bytes(b"\n".join(LINES) + b"\n")
    objs, garbage = P.JsonlTail(path).read_new()
    want = [_json_or_refused(line) for line in LINES]
    assert garbage == sum(not isinstance(w, dict) for w in want)
    assert json.dumps(objs) == json.dumps([w for w in want if isinstance(w, dict)])
