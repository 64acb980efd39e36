"""Zero-code adapters: flags in, metrics out, on real-world output lines."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import textwrap

import pytest
from space_toml import lr, param, space_toml
from study_runs import kill_runs
from waiting import wait_for

from tui_tuner.core.argv import command_argv, expand, flag_args, format_value, python_argv
from tui_tuner.core.space import parse_space
from tui_tuner.core.study import Study
from tui_tuner.errors import RunError
from tui_tuner.runtime.adapters import MATCH_CHARS, LineTail, MetricParser, tail_lines

PARAMS = {
    "lr": lr(low=1e-5, default=1e-3, flag="--trainer.learning_rate"),
    "layers": param("int", low=1, high=8, default=2),
    "amp": param("choice", values=[True, False], default=True),
    "opt": param("choice", values=["adam", "; rm -rf ~"], default="adam"),
}


def space(style: str):
    text = space_toml(PARAMS, name="zc", command=["python", "train.py", "--quiet"], objective="loss",
                      flag_style=style, metrics={"loss": r"loss\s+([-+0-9.eE]+|nan|inf)"})
    return parse_space(text, "zc.toml")


@pytest.mark.parametrize(
    ("style", "params", "expected"),
    [
        ("space", {"lr": 1e-05, "layers": 3, "amp": True, "opt": "adam"},
         ["--trainer.learning_rate", "1e-05", "--layers", "3", "--amp", "--opt", "adam"]),
        ("space", {"lr": 0.25, "layers": 1, "amp": False, "opt": "; rm -rf ~"},
         ["--trainer.learning_rate", "0.25", "--layers", "1", "--opt", "; rm -rf ~"]),
        ("equals", {"lr": 0.001, "layers": 8, "amp": True, "opt": "adam"},
         ["--trainer.learning_rate=0.001", "--layers=8", "--amp=True", "--opt=adam"]),
        ("equals", {"lr": 1.0, "layers": 2, "amp": False, "opt": "; rm -rf ~"},
         ["--trainer.learning_rate=1.0", "--layers=2", "--amp=False", "--opt=; rm -rf ~"]),
    ],
)
def test_flag_styles(style, params, expected):
    assert flag_args(space(style), params) == expected


def test_command_argv_uses_this_python_and_appends_flags():
    sp = space("space")
    argv = command_argv(sp, {"lr": 0.1, "layers": 2, "amp": False, "opt": "adam"})
    assert argv[:3] == [sys.executable, "train.py", "--quiet"]
    assert argv[3:] == ["--trainer.learning_rate", "0.1", "--layers", "2", "--opt", "adam"]


@pytest.mark.parametrize("cmd", [["python", "x.py"], ["python3", "x.py"]])
def test_python_argv_substitutes(cmd):
    assert python_argv(cmd) == [sys.executable, "x.py"]


def test_python_argv_leaves_other_commands():
    assert python_argv(["/usr/bin/env", "python", "x.py"]) == ["/usr/bin/env", "python", "x.py"]
    assert python_argv(["torchrun", "x.py"]) == ["torchrun", "x.py"]


def test_format_value_round_trips():
    for v in (1e-8, 0.1, 3.0, 123456789.123):
        assert float(format_value(v)) == v
    assert format_value(7) == "7"
    assert format_value(True) == "True"


NUM = r"([-+0-9.eE]+|nan|inf)"

REAL_LINES = [
    # word_language_model (PyTorch examples)
    ("| epoch   3 |    20/   29 batches | lr 20.00 | ms/batch 32.44 | loss  6.42 | ppl   612.49",
     {"loss": r"\|\s*loss\s+" + NUM, "ppl": r"ppl\s+" + NUM, "lr": r"\|\s*lr\s+" + NUM},
     {"loss": 6.42, "ppl": 612.49, "lr": 20.0}),
    # a CIFAR-style training loop
    ("Train Epoch:  1 [ 44736/ 50000 (89%)]\tLearning rate: 0.0040\tLoss: 0.008230",
     {"loss": r"Loss:\s*" + NUM, "lr": r"Learning rate:\s*" + NUM},
     {"loss": 0.00823, "lr": 0.004}),
    # llm.c
    ("step 500 | loss 2.4132 | step time 13.24ms",
     {"loss": r"\|\s*loss\s+" + NUM, "step_time": r"step time\s+([0-9.]+)ms"},
     {"loss": 2.4132, "step_time": 13.24}),
    # nanoGPT
    ("iter 100: train loss 1.57328", {"loss": r"train loss\s+" + NUM}, {"loss": 1.57328}),
]


@pytest.mark.parametrize(("line", "patterns", "expected"), REAL_LINES)
def test_patterns_on_real_lines(line, patterns, expected):
    got = MetricParser(patterns).parse(line)
    assert got == pytest.approx(expected)


def test_step_from_reserved_pattern():
    p = MetricParser({"step": r"^step\s+(\d+)", "loss": r"\|\s*loss\s+" + NUM})
    assert p.feed("step 500 | loss 2.4132 | step time 13.24ms") == {"step": 500, "metrics": {"loss": 2.4132}}
    # A later line without a step keeps the last one.
    p2 = MetricParser({"step": r"iter\s+(\d+):", "loss": r"loss\s+" + NUM, "val": r"val\s+" + NUM})
    assert p2.feed("iter 100: train loss 1.5")["step"] == 100
    assert p2.feed("eval: val 1.7") == {"step": 100, "metrics": {"val": 1.7}}


def test_step_counts_matching_lines_without_step_pattern():
    p = MetricParser({"loss": r"loss\s+" + NUM, "ppl": r"ppl\s+" + NUM})
    assert p.feed("starting") is None
    assert p.feed("loss 3.0 ppl 20.0") == {"step": 1, "metrics": {"loss": 3.0, "ppl": 20.0}}
    assert p.feed("noise") is None
    assert p.feed("loss 2.5") == {"step": 2, "metrics": {"loss": 2.5}}


def test_nan_and_garbage_captures():
    p = MetricParser({"loss": r"loss\s+(\S+)"})
    assert p.parse("loss nan")["loss"] != p.parse("loss nan")["loss"]  # NaN comes through as NaN
    assert p.parse("loss abc") == {}


def test_line_tail_partial_lines_and_carriage_returns(tmp_path):
    f = tmp_path / "out.log"
    f.write_bytes(b"")
    t = LineTail(f)
    assert t.read_new() == []
    with open(f, "ab") as w:
        w.write(b"one\ntw")
    assert t.read_new() == ["one"]
    with open(f, "ab") as w:
        w.write(b"o\r 50% loss 1\r 100% loss 2\nlast")
    assert t.read_new() == ["two", " 50% loss 1", " 100% loss 2"]
    assert t.flush() == ["last"]
    assert tail_lines(f, 2) == [" 100% loss 2", "last"]
    assert tail_lines(tmp_path / "missing.log") == []


# -- a user's pattern can never hang the tuner (issue 7, item 5) ------------------------------------

# Under Python's backtracking `re`, this pattern on "aaaa...a!" takes about 2**40 steps.
CATASTROPHIC = r"(?:a+)+(x)$"
BAD_LINE = "a" * 40 + "!"


def test_a_catastrophic_pattern_parses_a_line_at_once():
    # In a child process: under a backtracking engine it would spin (and not stop) here.
    code = textwrap.dedent(f"""
        import time
        from tui_tuner.runtime.adapters import MetricParser
        p = MetricParser({{"loss": r"loss ([0-9.]+)", "junk": {CATASTROPHIC!r}}})
        t = time.perf_counter()
        out = [p.feed({BAD_LINE!r}) for _ in range(1000)] + [p.feed("loss 0.5 " + {BAD_LINE!r})]
        print(repr((out[0], out[-1], time.perf_counter() - t)))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    first, last, seconds = eval(res.stdout)
    assert first is None and last == {"step": 1, "metrics": {"loss": 0.5}}
    assert seconds < 5


def test_patterns_see_at_most_match_chars_of_a_line():
    p = MetricParser({"loss": r"loss ([0-9.]+)"})
    pad = "x" * (MATCH_CHARS - 20)
    assert p.parse(pad + " loss 0.25") == {"loss": 0.25}
    assert p.parse(pad + "y" * 100 + " loss 0.25") == {}   # past the cap: not looked at


def zero_code_study(tmp_path, sleep: float) -> None:
    """A zero-code trainer that prints a line the catastrophic pattern chokes `re` on, then metrics."""
    (tmp_path / "trainer.py").write_text(textwrap.dedent(f"""
        import time
        for i in range(3):
            print({BAD_LINE!r}, flush=True)
            print(f"val_loss {{1.0 / (i + 1)}}", flush=True)
        time.sleep({sleep})
    """))
    text = space_toml({"lr": lr()}, name="junk", command=["python", "trainer.py"], objective="val_loss",
                      strategy="random", metrics={"val_loss": r"val_loss ([0-9.]+)", "junk": CATASTROPHIC})
    (tmp_path / "space.toml").write_text(text)


def headless(tmp_path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tui_tuner", "run", "space.toml", "--headless", "--study", "st", *args]


def test_a_catastrophic_pattern_does_not_stop_a_zero_code_study(tmp_path):
    zero_code_study(tmp_path, sleep=0)
    try:
        res = subprocess.run(headless(tmp_path, "--trials", "2", "--parallel", "2"), cwd=tmp_path,
                             capture_output=True, text=True, timeout=90)
    finally:
        kill_runs(tmp_path / "st")
    assert res.returncode == 0, res.stdout + res.stderr
    with Study.open(tmp_path / "st", lock=False) as study:
        assert [(t.status, t.objective) for t in study.trials("id")] == [("done", 1 / 3)] * 2


def test_ctrl_c_stops_a_study_whose_output_a_catastrophic_pattern_reads(tmp_path):
    zero_code_study(tmp_path, sleep=60)
    proc = subprocess.Popen(headless(tmp_path, "--trials", "1"), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        log = tmp_path / "st" / "runs" / "t0001" / "output.log"
        wait_for(lambda: log.exists() and "val_loss 0.33" in log.read_text(), timeout=60,
                 what="the trainer's metric lines")

        def seen() -> bool:
            with Study.open(tmp_path / "st", lock=False) as study:
                return study.trial(1).objective is not None
        wait_for(seen, timeout=30, what="the tuner to read the metrics")   # it is past the bad lines
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_runs(tmp_path / "st")
    assert proc.returncode == 130, out
    assert "the study is intact" in out


# -- per-run paths and per-parameter flag styles (items 13 and 14) ----------------------------------


def placeholder_space():
    text = space_toml({"lr": lr(), "save": param("choice", values=["{run_dir}/a.pt", "{run_dir}/b.pt"])},
                      name="ph", command=["python", "train.py", "--out_dir", "{run_dir}/out", "--tag", "t{trial}",
                                          "--fmt", "{epoch}-{x}.pt"],
                      objective="loss", metrics={"loss": r"loss ([0-9.]+)"})
    return parse_space(text, "ph.toml")


def test_run_dir_and_trial_expand_in_the_command_and_in_flag_values(tmp_path):
    argv = command_argv(placeholder_space(), {"lr": 0.1, "save": "{run_dir}/b.pt"},
                        run_dir=tmp_path / "runs" / "t0007", trial=7)
    d = str(tmp_path / "runs" / "t0007")
    assert argv[1:] == ["train.py", "--out_dir", f"{d}/out", "--tag", "t7", "--fmt", "{epoch}-{x}.pt",
                        "--lr", "0.1", "--save", f"{d}/b.pt"]
    # Another trial, run at the same time, writes elsewhere.
    other = command_argv(placeholder_space(), {"lr": 0.1, "save": "{run_dir}/b.pt"}, run_dir="r8", trial=8)
    assert other[3:9:2] == ["r8/out", "t8", "{epoch}-{x}.pt"] and other[-1] == "r8/b.pt"


def test_a_placeholder_without_a_value_is_refused_not_passed_on():
    with pytest.raises(RunError, match=r"the command uses \{run_dir\}, but no value was given"):
        command_argv(placeholder_space(), {"lr": 0.1, "save": "{run_dir}/a.pt"})
    assert expand("{trial}.log", trial=3) == "3.log"
    assert expand('{"a": 1}') == '{"a": 1}'
    # A study without placeholders runs as before, with no run_dir given.
    assert command_argv(space("space"), {"lr": 0.1})[-2:] == ["--trainer.learning_rate", "0.1"]


def test_flag_style_per_parameter_lets_store_true_and_dotted_equals_flags_mix():
    params = {"lr": lr(flag="--trainer.lr"), "cuda": param("choice", values=[True, False], flag_style="space"),
              "amp": param("choice", values=[True, False])}
    sp = parse_space(space_toml(params, flag_style="equals", metrics={"val_loss": r"val ([0-9.]+)"}), "x.toml")
    assert sp["cuda"].flag_style == "space" and sp["lr"].flag_style == ""
    on = flag_args(sp, {"lr": 0.01, "cuda": True, "amp": True})
    off = flag_args(sp, {"lr": 0.01, "cuda": False, "amp": False})
    assert on == ["--trainer.lr=0.01", "--cuda", "--amp=True"]
    assert off == ["--trainer.lr=0.01", "--amp=False"]
    # What a TCN-style script (argparse, store_true) makes of them.
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainer.lr", dest="lr", type=float)
    ap.add_argument("--cuda", action="store_true")
    ap.add_argument("--amp", type=lambda s: s == "True")
    assert vars(ap.parse_args(on)) == {"lr": 0.01, "cuda": True, "amp": True}
    assert vars(ap.parse_args(off)) == {"lr": 0.01, "cuda": False, "amp": False}


def test_the_study_style_argument_does_not_override_a_parameters_own():
    sp = parse_space(space_toml({"cuda": param("choice", values=[True, False], flag_style="equals")},
                                metrics={"val_loss": r"val ([0-9.]+)"}), "x.toml")
    assert flag_args(sp, {"cuda": False}, style="space") == ["--cuda=False"]


def test_a_step_group_in_a_metric_pattern_gives_the_real_step():
    """Issue 19: batch 64 prints a line per 64 samples; the x axis is samples, not lines."""
    p = MetricParser({"loss": r"samples (?P<step>\d+): loss ([0-9.]+)", "val": r"val ([0-9.]+)"})
    events = [p.feed(line) for line in ("samples 64: loss 0.9", "val 0.8", "samples 128: loss 0.7", "noise")]
    assert events == [{"step": 64, "metrics": {"loss": 0.9}}, {"step": 64, "metrics": {"val": 0.8}},
                      {"step": 128, "metrics": {"loss": 0.7}}, None]
    # Without one, the step is still the count of metric lines.
    q = MetricParser({"loss": r"loss ([0-9.]+)"})
    assert [q.feed(f"samples {n}: loss 0.5")["step"] for n in (64, 128)] == [1, 2]
