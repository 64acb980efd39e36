"""Space files: every scale maps to and from [0, 1]; every refused input names the parameter and rule."""

from __future__ import annotations

import math

import pytest
from space_toml import HEAD, layers, lr, momentum, space_toml

from tui_tuner.errors import SpaceError
from tui_tuner.search.space import load_space, parse_space


def space_of(params: str, head: str = HEAD):
    return parse_space(head + params, "x.toml")


def test_full_example_loads_in_priority_order():
    s = parse_space(space_toml({"layers": layers(), "momentum": momentum(live=True), "lr": lr(tier=1, live=True)}),
                    "x.toml")
    assert [p.name for p in s.by_priority()] == ["lr", "momentum", "layers"]
    assert list(s.params) == ["lr", "momentum", "layers"]
    assert s.config.name == "x"
    assert s.config.command == ("python", "train.py")
    assert s.config.direction == "minimize" and s.config.parallel == 1 and s.config.budget == 20
    assert s.config.strategy == "gp" and s.config.reduce == "best" and not s.config.strategy_fallback
    assert s["lr"].live and s["lr"].default == 1e-2
    assert s.defaults() == {"lr": 1e-2, "momentum": 0.9, "layers": 2}
    assert s["momentum"].scale_label == "1-β log"
    assert s["lr"].scale_label == "log" and s["layers"].scale_label == "choice"
    assert s["lr"].flag == "--lr"


@pytest.mark.parametrize(
    "param, value, unit",
    [
        ('type = "float"\nlow = 0.0\nhigh = 10.0', 2.5, 0.25),
        ('type = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1.0', 1e-2, 0.5),
        ('type = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1.0', 1e-3, 0.25),
        ('type = "float"\nscale = "one_minus_log"\nlow = 0.9\nhigh = 0.999', 0.99, 0.5),
        ('type = "float"\nscale = "one_minus_log"\nlow = 0.0\nhigh = 0.99', 0.9, 0.5),
        ('type = "int"\nlow = 0\nhigh = 9', 0, 0.05),
        ('type = "int"\nlow = 0\nhigh = 9', 9, 0.95),
        ('type = "choice"\nvalues = ["a", "b"]', "b", 0.75),
    ],
)
def test_to_unit_and_back(param, value, unit):
    p = space_of("[params.x]\n" + param)["x"]
    assert p.to_unit(value) == pytest.approx(unit)
    back = p.from_unit(p.to_unit(value))
    assert back == pytest.approx(value) if not isinstance(value, str) else back == value


@pytest.mark.parametrize(
    "param, lo, hi",
    [
        ('type = "float"\nlow = -1.0\nhigh = 1.0', -1.0, 1.0),
        ('type = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1.0', 1e-4, 1.0),
        ('type = "float"\nscale = "one_minus_log"\nlow = 0.9\nhigh = 0.999', 0.9, 0.999),
        ('type = "int"\nlow = 50\nhigh = 100', 50, 100),
        ('type = "int"\nscale = "log"\nlow = 1\nhigh = 1024', 1, 1024),
        ('type = "float"\nlow = 0.0\nhigh = 1.0\nstep = 0.3', 0.0, 0.9),
    ],
)
def test_unit_ends_map_to_range_ends_exactly(param, lo, hi):
    p = space_of("[params.x]\n" + param)["x"]
    assert p.from_unit(0.0) == lo
    assert p.from_unit(1.0) == hi
    for u in [i / 97 for i in range(98)]:
        v = p.from_unit(u)
        assert lo <= v <= hi


def test_int_values_keep_int_type_and_step_quantises():
    s = space_of("""
[params.h]
type = "int"
low = 50
high = 100
step = 10
[params.d]
type = "float"
low = 0.0
high = 1.0
step = 0.1
""")
    vals = {s["h"].from_unit(i / 200) for i in range(201)}
    assert vals == {50, 60, 70, 80, 90, 100}
    assert all(type(v) is int for v in vals)
    dvals = {s["d"].from_unit(i / 500) for i in range(501)}
    assert dvals == {round(0.1 * k, 10) for k in range(11)}


@pytest.mark.parametrize("param, lattice", [
    ('type = "float"\nlow = 0.0\nhigh = 1.0\nstep = 0.25', [0.0, 0.25, 0.5, 0.75, 1.0]),
    ('type = "int"\nlow = 0\nhigh = 10\nstep = 4', [0, 4, 8]),
])
def test_stepped_values_are_equally_likely_ends_included(param, lattice):
    p = space_of("[params.x]\n" + param)["x"]
    n = 20_000
    counts = {v: 0 for v in lattice}
    for i in range(n):
        counts[p.from_unit((i + 0.5) / n)] += 1
    assert all(abs(c / n - 1 / len(lattice)) < 1e-3 for c in counts.values()), counts
    # to_unit puts each lattice point at the centre of its own cell.
    assert [p.from_unit(p.to_unit(v)) for v in lattice] == lattice

def test_default_when_absent_is_the_middle_of_the_scale():
    s = space_of("""
[params.lr]
type = "float"
scale = "log"
low = 1e-4
high = 1.0
[params.beta]
type = "float"
scale = "one_minus_log"
low = 0.9
high = 0.999
[params.c]
type = "choice"
values = ["x", "y"]
""")
    assert s["lr"].default == pytest.approx(1e-2)
    assert s["beta"].default == pytest.approx(0.99)
    assert s["c"].default == "x"


REFUSED = [
    # (params text, head, the parameter/field named, the rule's words)
    ('[params.lr]\ntype = "float"\nlow = 1.0\nhigh = 0.1', HEAD, "params.lr", "low <= high must hold, got low=1, high=0.1"),
    ('[params.lr]\ntype = "float"\nscale = "log"\nlow = 0.0\nhigh = 1.0', HEAD, "params.lr", "log scale needs low > 0, got low=0"),
    ('[params.n]\ntype = "int"\nscale = "log"\nlow = 0\nhigh = 8', HEAD, "params.n", "log scale needs low > 0"),
    ('[params.b]\ntype = "float"\nscale = "one_minus_log"\nlow = 0.9\nhigh = 1.0', HEAD, "params.b", "0 <= low < high < 1"),
    ('[params.b]\ntype = "float"\nscale = "one_minus_log"\nlow = -0.1\nhigh = 0.9', HEAD, "params.b", "0 <= low < high < 1"),
    ('[params.b]\ntype = "float"\nscale = "one_minus_log"\nlow = 0.9\nhigh = 0.9', HEAD, "params.b", "0 <= low < high < 1"),
    ('[params.n]\ntype = "int"\nlow = 1.5\nhigh = 8', HEAD, "params.n", "int bounds must be integers, got low=1.5"),
    ('[params.n]\ntype = "int"\nlow = 1\nhigh = 8.0', HEAD, "params.n", "int bounds must be integers, got high=8"),
    ('[params.lr]\ntype = "float"\nlow = 0.0\nhigh = 1.0\ndefault = 2.0', HEAD, "params.lr", "default must lie in [0, 1], got default=2"),
    ('[params.c]\ntype = "choice"\nvalues = [1, 2]\ndefault = 3', HEAD, "params.c", "default 3 is not among the values [1, 2]"),
    ('[params.c]\ntype = "choice"\nvalues = []', HEAD, "params.c", "at least one value"),
    ('[params.c]\ntype = "choice"', HEAD, "params.c", "needs values"),
    ('[params.x]\ntype = "bool"', HEAD, "params.x", "unknown type 'bool'"),
    ('[params.x]\nlow = 1', HEAD, "params.x", "type is required"),
    ('[params.x]\ntype = "float"\nscale = "exp"\nlow = 0.0\nhigh = 1.0', HEAD, "params.x", "unknown scale 'exp'"),
    ('[params.x]\ntype = "int"\nscale = "one_minus_log"\nlow = 0\nhigh = 1', HEAD, "params.x", "unknown scale 'one_minus_log' for int"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nlog = true', HEAD, "params.x", "unknown key 'log'"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\ntier = 5', HEAD, "params.x", "tier must be 1, 2, 3 or 4, got 5"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\ntier = 0', HEAD, "params.x", "tier must be 1, 2, 3 or 4, got 0"),
    ('[params.x]\ntype = "float"\nscale = "log"\nlow = 0.1\nhigh = 1.0\nstep = 0.1', HEAD, "params.x", "step cannot be used with a log scale"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nstep = 0', HEAD, "params.x", "step must be a number > 0"),
    ('[params.x]\ntype = "float"\nhigh = 1.0', HEAD, "params.x", "low is required"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nlive = "yes"', HEAD, "params.x", "live must be true or false"),
    ('[params.x]\ntype = "choice"\nvalues = [1, 2]\nlow = 0', HEAD, "params.x", "low does not apply to a choice"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', '[study]\nobjective = "val_loss"\n', "study.command", "missing"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', '[study]\ncommand = ["python", "t.py"]\n', "study.objective", "missing"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', '[study]\ncommand = "python t.py"\nobjective = "l"\n', "study.command", "not a shell string"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + 'direction = "up"\n', "study.direction", "must be one of minimize, maximize"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + 'strategy = "bayes"\n', "study.strategy", "must be one of random, grid, coarse_to_fine"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + 'parallel = 0\n', "study.parallel", "must be an integer >= 1"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + 'colour = 1\n', "study", "unknown key 'colour'"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + '[study.metrics]\nval_loss = "loss"\n', "study.metrics.val_loss", "exactly one capture group"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + '[study.metrics]\nval_loss = "loss ([0-9"\n', "study.metrics.val_loss", "invalid regular expression"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + '[study.metrics]\nloss = "loss ([0-9.]+)"\n', "study.objective", "not among [study.metrics]"),
    ('', HEAD, "params", "no parameters"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + 'name = ".."\n', "study.name", "not . or .."),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\n[extra]\na = 1', HEAD, "extra", "unknown table"),
    # Gaps a file used to slip through (issue 7, item 10).
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + 'zoom_top = nan\n', "study.zoom_top", "got nan"),
    ('[params.x]\ntype = "float"\nlow = -1e308\nhigh = 1e308', HEAD, "params.x",
     "high - low must be a finite number, got low=-1e+308, high=1e+308"),
    ('[params.tuner]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD, "params.tuner",
     "reserved for the [tuner] table of metadata in an export; rename the parameter, got 'tuner'"),
    ('[params.n]\ntype = "int"\nlow = 0\nhigh = 9223372036854775808', HEAD, "params.n",
     "int bounds must fit in 64 bits (-2**63 to 2**63-1), got high=9223372036854775808"),
    ('[params.n]\ntype = "int"\nlow = -9223372036854775809\nhigh = 0', HEAD, "params.n",
     "must fit in 64 bits (-2**63 to 2**63-1), got low=-9223372036854775809"),
    ('[params."lr\\n"]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD, "params.'lr\\n'",
     "a parameter name must start with a letter or _ and hold only letters, digits, _ . -, got 'lr\\n'"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + 'name = "a\\nb"\n', "study.name",
     "without '/' or control characters (newline, tab), and not . or .., got 'a\\nb'"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nstep = 2.0', HEAD, "params.x",
     "step must not be wider than the range (high - low = 1), got step=2"),
    ('[params.n]\ntype = "int"\nlow = 0\nhigh = 5\nstep = 10', HEAD, "params.n",
     "step must not be wider than the range (high - low = 5), got step=10"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nflag_style = "colon"', HEAD, "params.x",
     "flag_style must be one of space, equals, got 'colon'"),
    # Metric patterns run under RE2 (linear time): what it lacks is refused when the space loads.
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + "[study.metrics]\nval_loss = '(\\d)\\1'\n",
     "study.metrics.val_loss", "uses syntax RE2 lacks (invalid escape sequence: \\1)"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + "[study.metrics]\nval_loss = 'loss (?=\\d)(\\S+)'\n",
     "study.metrics.val_loss", "uses syntax RE2 lacks (invalid perl operator: (?=)"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + "[study.metrics]\nval_loss = '(?<=loss )(\\S+)'\n",
     "study.metrics.val_loss", "backreferences, lookahead, lookbehind"),
]


@pytest.mark.parametrize("params, head, where, rule", REFUSED)
def test_refused_inputs_name_file_parameter_and_rule(params, head, where, rule):
    with pytest.raises(SpaceError) as exc:
        parse_space(head + params, "spaces/x.toml")
    msg = str(exc.value)
    assert msg.startswith(f"spaces/x.toml: {where}: "), msg
    assert rule in msg, msg
    assert "\n" not in msg


def test_toml_syntax_error_gives_the_line():
    with pytest.raises(SpaceError) as exc:
        parse_space(HEAD + "[params.x\ntype = 1\n", "spaces/bad.toml")
    msg = str(exc.value)
    assert msg.startswith("spaces/bad.toml: TOML syntax error:")
    assert "line 5" in msg
    assert "\n" not in msg


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(SpaceError, match=r"nope\.toml: no such file"):
        load_space(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "name, value, ok",
    [
        ("lr", 0.5, 0.5), ("lr", 2, None), ("n", 3.0, 3), ("n", 3.5, None),
        ("c", "b", "b"), ("c", "z", None), ("lr", float("nan"), None), ("lr", "x", None),
    ],
)
def test_check_setting_values(name, value, ok):
    s = space_of("""
[params.lr]
type = "float"
low = 0.0
high = 1.0
[params.n]
type = "int"
low = 1
high = 8
[params.c]
type = "choice"
values = ["a", "b"]
""")
    if ok is None:
        with pytest.raises(SpaceError, match=f"params.{name}: "):
            s.check_setting({name: value}, partial=True)
    else:
        got = s.check_setting({name: value}, partial=True)[name]
        assert got == ok and type(got) is type(ok)


def test_check_setting_refuses_unknown_and_fills_defaults():
    s = space_of('[params.lr]\ntype = "float"\nlow = 0.0\nhigh = 1.0\ndefault = 0.3')
    assert s.check_setting({}) == {"lr": 0.3}
    with pytest.raises(SpaceError, match="params.mom: no such parameter"):
        s.check_setting({"mom": 0.9})


@pytest.mark.parametrize(
    "param, text, value",
    [
        ('type = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1.0', "3e-3", 3e-3),
        ('type = "int"\nlow = 1\nhigh = 8', " 4 ", 4),
        ('type = "choice"\nvalues = [true, false]', "false", False),
        ('type = "choice"\nvalues = [2, 3, 4]', "3", 3),
        ('type = "choice"\nvalues = ["sgd", "adam"]', "adam", "adam"),
    ],
)
def test_parse_user_text(param, text, value):
    p = space_of("[params.x]\n" + param)["x"]
    got = p.parse(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ["abc", "9", "0.00001", ""])
def test_parse_refuses_with_rule(text):
    p = space_of('[params.x]\ntype = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1.0')["x"]
    with pytest.raises(SpaceError, match="params.x: "):
        p.parse(text)


def test_signature_ignores_study_settings_but_not_params():
    a = space_of('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0')
    b = space_of('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0', HEAD + "parallel = 4\n")
    c = space_of('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 2.0')
    assert a.signature() == b.signature() != c.signature()


def test_one_minus_log_half_the_unit_interval_is_beta_above_0_99():
    p = space_of('[params.b]\ntype = "float"\nscale = "one_minus_log"\nlow = 0.9\nhigh = 0.999')["b"]
    assert p.from_unit(0.5) == pytest.approx(0.99)
    assert math.isclose(p.value_at(0.25), 1 - 10 ** -1.5)
