"""Zero-code adapters: flags in, metrics out, on real-world output lines."""

from __future__ import annotations

import sys

import pytest
from space_toml import lr, param, space_toml

from tui_tuner.adapters import (
    LineTail,
    MetricParser,
    command_argv,
    flag_args,
    format_value,
    python_argv,
    tail_lines,
)
from tui_tuner.space import parse_space

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
