"""Fuzz: no space file, however odd, makes parse_space fail with anything but a one-line SpaceError."""

from __future__ import annotations

import math
import os
import string

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_tuner.errors import SpaceError
from tui_tuner.search.config import STUDY_KEYS
from tui_tuner.search.space import Space, parse_space
from tui_tuner.search.space_params import PARAM_KEYS

# A quick pass by default; TUI_TUNER_FUZZ_EXAMPLES=5000 for a deep one.
FUZZ = settings(max_examples=int(os.environ.get("TUI_TUNER_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# TOML-ish building blocks, so random text often gets past the tokenizer and into the validator.
TOKENS = ["[study]", "[params.lr]", "[params.x]", "[study.metrics]", "\n", " = ", "type", "scale", "low",
          "high", "default", "values", "tier", "live", "step", "flag", "command", "objective", "direction",
          '"float"', '"int"', '"choice"', '"log"', '"one_minus_log"', '"linear"', "1", "0", "-1", "1e-4",
          "0.9", "0.999", "1.0", "inf", "nan", "true", "false", '["python", "t.py"]', "[1, 2]", "[]", '"x"',
          '"(\\\\d+)"', "{}", ",", "'", '"', "#", "[[params]]"]

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["float", "int", "choice", "log", "linear", "one_minus_log", "minimize", "maximize",
                     "random", "grid", "best", "last", "(\\d+)", "x(", "--lr"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))
names = st.one_of(st.sampled_from(["lr", "beta", "layers", "a.b", "tuner", "1x", "", "x y", "lr\n", "a\tb"]),
                  st.text(alphabet=string.ascii_letters + "_.-0123456789", min_size=1, max_size=6))

param_tables = st.dictionaries(st.one_of(st.sampled_from(sorted(PARAM_KEYS)), names), values, max_size=8)
study_tables = st.fixed_dictionaries(
    {"command": st.one_of(st.just(["python", "t.py"]), values), "objective": st.one_of(st.just("loss"), values)},
    optional={k: st.one_of(values, st.dictionaries(names, values, max_size=3))
              for k in sorted(STUDY_KEYS - {"command", "objective"})},
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "study": st.one_of(study_tables, values),
        "params": st.one_of(st.dictionaries(names, st.one_of(param_tables, values), max_size=4), values),
        "extra": values,
    },
)


def check(text: str) -> Space | None:
    try:
        space = parse_space(text, "fuzz.toml")
    except SpaceError as e:
        assert e.message and "\n" not in e.message.strip(), e.message
        return None
    assert isinstance(space, Space)
    return space


def exercise(space: Space) -> None:
    """A space that parsed must work: defaults valid, each scale maps to [0, 1] and back into range."""
    assert space.check_setting(space.defaults()) == space.defaults()
    assert isinstance(space.signature(), str)
    assert space.config.name.isprintable() and math.isfinite(space.config.zoom_top)
    for p in space:
        # Names reach one-line messages, flags and the export's top level.
        assert p.name.isprintable() and "\n" not in p.name and p.name != "tuner"
        if p.type == "int":
            assert -(2**63) <= p.low <= p.high <= 2**63 - 1
        if p.step:
            assert p.step <= p.high - p.low
        assert 1 <= p.tier <= 4
        for u in (0.0, 0.25, 0.5, 1.0):
            v = p.from_unit(u)
            assert p.check(v) == v, (p, u, v)
            w = p.to_unit(v)
            assert 0.0 <= w <= 1.0 and not math.isnan(w)
        p.range_label()


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    check(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_random_token_soup(tokens):
    check("".join(tokens))


@FUZZ
@given(documents)
def test_random_structures_dumped_with_tomli_w(doc):
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return  # not representable in TOML at all
    space = check(text)
    if space is not None:
        exercise(space)


# Bounds from the whole float range: a range whose width overflows must be refused, not sampled as nan.
BOUND = st.one_of(st.floats(-1e6, 1e6), st.floats(allow_nan=False, allow_infinity=False))
FLOAT_PARAM = st.fixed_dictionaries(
    {"type": st.just("float"), "low": BOUND, "high": BOUND},
    optional={"scale": st.sampled_from(["linear", "log", "one_minus_log"]), "tier": st.integers(0, 5),
              "step": st.floats(-1, 10), "default": st.floats(-1e6, 1e6), "live": st.booleans()},
)
INT_PARAM = st.fixed_dictionaries(
    {"type": st.just("int"), "low": st.integers(-(2**40), 2**40) | st.integers(-(2**70), 2**70),
     "high": st.integers(-(2**40), 2**40) | st.integers(-(2**70), 2**70)},
    optional={"scale": st.sampled_from(["linear", "log"]), "step": st.integers(-2, 50),
              "default": st.integers(-(2**40), 2**40)},
)
CHOICE_PARAM = st.fixed_dictionaries(
    {"type": st.just("choice"), "values": st.lists(scalars, max_size=5)},
    optional={"default": scalars},
)


@FUZZ
@given(st.dictionaries(st.sampled_from(["lr", "beta", "units", "act"]),
                       st.one_of(FLOAT_PARAM, INT_PARAM, CHOICE_PARAM), min_size=1, max_size=4))
def test_nearly_valid_params(params):
    # Close to real files, so most examples parse and get exercised.
    text = tomli_w.dumps({"study": {"command": ["python", "t.py"], "objective": "loss"}, "params": params})
    space = check(text)
    if space is not None:
        exercise(space)


# Cases the fuzzer found (or the issues named), kept so they are checked on every run (not only when hypothesis finds them again).
FOUND = {
    # snap's 12-digit rounding pushed the top of the range past `high`
    "step_rounds_past_high": {"lr": {"type": "float", "low": 1.7109375, "high": 100000.7109375, "step": 1.0}},
    # a denormal step overflowed round((x - low) / step) while computing the default
    "tiny_step": {"units": {"type": "float", "low": -1.0, "high": 0.0, "step": 5e-324}},
    # nan != nan: a choice of [nan] parsed, then refused its own default
    "nan_choice": {"lr": {"type": "choice", "values": [float("nan")]}},
    # high - low overflowed to inf, and every sample came out nan
    "width_overflows": {"lr": {"type": "float", "low": -1e308, "high": 1e308}},
    # a step wider than the range: a lattice of one point (low), surely a typo in the file
    "wide_step": {"units": {"type": "float", "low": 0.0, "high": 1.0, "step": 3.0}},
    # int bounds past 64 bits (numpy and SQLite integers, which readers of a study use, are 64-bit)
    "huge_int": {"units": {"type": "int", "low": 0, "high": 2**64}},
}


@FUZZ
@given(st.one_of(st.floats(), st.integers(-3, 3)), st.one_of(st.text(max_size=6), st.just("a\nb")))
def test_study_numbers_and_names(zoom_top, name):
    text = tomli_w.dumps({"study": {"command": ["python", "t.py"], "objective": "loss", "zoom_top": zoom_top,
                                    "name": name},
                          "params": {"x": {"type": "float", "low": 0.0, "high": 1.0}}})
    space = check(text)
    if space is not None:
        exercise(space)


@pytest.mark.parametrize("name", list(FOUND))
def test_found_by_fuzzing(name):
    text = tomli_w.dumps({"study": {"command": ["python", "t.py"], "objective": "loss"}, "params": FOUND[name]})
    space = check(text)
    if space is not None:
        exercise(space)
