"""Fuzz: whatever a trainer writes (escape sequences, overlong numbers, non-UTF-8 bytes, absurd
JSON) is read without an exception, every step kept fits 0..2**63-1, and what is shown of it holds
nothing a terminal would act on."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_tuner.printable import printable
from tui_tuner.runtime.reader import RunReader
from tui_tuner.runtime.run_state import Objective, RunState
from tui_tuner.trainer.protocol import STEP_MAX

# A quick pass by default; TUI_TUNER_FUZZ_EXAMPLES=5000 for a deep one.
FUZZ = settings(max_examples=int(os.environ.get("TUI_TUNER_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

MIN = Objective("val_loss", lambda a, b: a < b, "best")
ESCAPES = ["\x1b]0;PWNED\x07", "\x1b[2J", "\x1b[31m", "\x1bc", "\x9b2J", "\x9d0;t\x9c", "\x1bP1$r\x1b\\", "\x07",
           "\r", "\b" * 5, "\x1b]8;;http://x\x1b\\", "\u202e", "\x1b[", "\x1b]0;unterminated", "\x00", "\x7f"]
NUMBERS = ["1e999", "-1e999", "9" * 400, "99999999999999999999999", str(2**63), str(2**63 - 1), "-1", "nan",
           "inf", "0x10", "1_000", "1e-400", "NaN", "Infinity"]

text_pieces = st.one_of(st.sampled_from(ESCAPES), st.sampled_from(NUMBERS), st.text(max_size=20),
                        st.sampled_from(["step ", "val_loss ", " ", "\n", "\t"]))
texts = st.lists(text_pieces, max_size=12).map("".join)
raw_bytes = st.one_of(st.binary(max_size=200), texts.map(lambda s: s.encode("utf-8", "surrogatepass")),
                      st.sampled_from([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"step 1 val_loss \xff0.5"]))


def dangerous(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f or 0xd800 <= ord(c) <= 0xdfff]


@FUZZ
@given(st.one_of(texts, raw_bytes, st.text()))
def test_printable_leaves_nothing_a_terminal_acts_on(raw):
    for newlines in (False, True):
        shown = printable(raw, newlines=newlines)
        assert dangerous(shown) == []
        assert newlines or "\n" not in shown
        shown.encode("utf-8")   # no lone surrogate: printing it never raises
        assert printable(shown, newlines=newlines) == shown   # nothing left to take out


big_ints = st.one_of(st.integers(), st.sampled_from([2**63, 2**63 - 1, -(2**63), 10**19, 10**400, -1, 0]))
numbers = st.one_of(big_ints, st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "x"]), st.booleans(), st.none())
metric_lines = st.fixed_dictionaries(
    {"step": numbers, "metrics": st.dictionaries(st.one_of(st.sampled_from(["val_loss", "loss"]), texts),
                                                 numbers, max_size=4)},
    optional={"t": numbers})
event_lines = st.fixed_dictionaries({"event": st.sampled_from(["applied", "paused", "resumed", "checkpoint", "done",
                                                               "max_steps", "??"])},
                                    optional={"seq": numbers, "step": numbers, "steps": numbers, "path": texts,
                                              "params": st.dictionaries(texts, numbers, max_size=3), "t": numbers})
lines = st.one_of(metric_lines, event_lines, numbers, st.lists(numbers, max_size=3))


@FUZZ
@given(st.lists(lines, max_size=20))
def test_run_state_takes_any_decoded_lines(objs):
    s = RunState(1, MIN, {"lr": 0.1}, now=0.0)
    for ev in s.apply_lines(objs, 1.0):
        if ev.kind == "error":
            assert "bad event" in ev.data["message"] and len(ev.data["message"]) < 400
    assert s.step is None or 0 <= s.step <= STEP_MAX
    for series in s.series.values():
        assert all(0 <= step <= STEP_MAX for step, _ in series.get())


@FUZZ
@given(st.lists(st.one_of(raw_bytes, lines.map(lambda o: json.dumps(o).encode())), max_size=15))
def test_a_run_dir_of_any_bytes_is_read_back(tmp_path_factory, chunks):
    run = tmp_path_factory.mktemp("run")
    data = b"\n".join(chunks)
    (run / "events.jsonl").write_bytes(data)
    (run / "output.log").write_bytes(data)
    patterns = {"val_loss": r"val_loss\s+([-+0-9.eE_a-zA-Z]+)", "step": r"step\s+([-+0-9.eE]+)"}
    for reader in (RunReader(run), RunReader(run, patterns)):
        s = RunState(1, MIN, {}, now=0.0)
        events = reader.read(s, 1.0, final=True, whole=True)
        assert s.step is None or 0 <= s.step <= STEP_MAX
        for ev in events:
            for value in ev.data.values():
                if isinstance(value, str):
                    printable(value).encode("utf-8")


def test_a_huge_metric_name_with_a_huge_value_is_one_short_line():
    # Found by the fuzz above: the name was shown whole, so a 400-character name made a 563-character line.
    s = RunState(1, MIN, {"lr": 0.1}, now=0.0)
    (ev,) = s.apply_lines([{"step": 0, "metrics": {"9" * 400: 10**400}}], 1.0)
    assert ev.kind == "error" and "too big for a number" in ev.data["message"]
    assert len(ev.data["message"]) < 400 and "(401 digits)" in ev.data["message"]
