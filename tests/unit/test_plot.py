"""The pictures without the app: their data, axes and ticks, what plotext draws, and `tui-tuner plot`."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import plotext
import pytest
from space_toml import hidden, layers, lr, momentum, space_toml

from tui_tuner import cli
from tui_tuner.core.braille import BrailleFigure
from tui_tuner.core.plot_axes import axis_of, axis_pairs, log_ticks, nice_ticks, tick_label
from tui_tuner.core.plotting import (
    BEST,
    CHANGE,
    FORK,
    RUNNING,
    SHADES,
    STOP,
    WATCHED,
    Box,
    Curves,
    Line,
    Point,
    box_span,
    draw_curves,
    draw_search,
    legend_text,
    pick_lines,
    position,
    thin,
)
from tui_tuner.core.region import zoom
from tui_tuner.core.space import parse_space
from tui_tuner.core.study import Study
from tui_tuner.runtime.runner import Runner

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SPACE = space_toml({"lr": lr(tier=1, live=True), "momentum": momentum(), "hidden": hidden(),
                    "layers": layers()}, name="pics")


def space():
    return parse_space(SPACE, "pics.toml")


def build(fig, width=80, height=22) -> str:
    return ANSI.sub("", fig.build())


@pytest.fixture
def fig():
    """plotext's own figure, cleared before and after."""
    plotext.clear_figure()
    yield plotext
    plotext.clear_figure()


@pytest.fixture(params=["plotext", "braille"])
def curves_fig(request):
    """The figures draw_curves draws into: plotext's, and the app's BrailleFigure (the same calls)."""
    if request.param == "braille":
        yield BrailleFigure()
        return
    plotext.clear_figure()
    yield plotext
    plotext.clear_figure()


# -- ticks and axes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (1500, "1.5k"), (2_000_000, "2M"), (0.003, "0.003"), (1e-4, "1e-4"), (2.5e-5, "2.5e-5"),
    (0.5, "0.5"), (250, "250"), (-1200, "-1.2k"),
])
def test_tick_labels_are_short(value, text):
    assert tick_label(value) == text


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (0, 1500, [0, 500, 1000, 1500]),
    (0.11, 2.27, [0.5, 1.0, 1.5, 2.0]),
    (0, 1, [0, 0.25, 0.5, 0.75, 1.0]),
    (50, 100, [50, 60, 70, 80, 90, 100]),
])
def test_nice_ticks_are_round_and_inside(lo, hi, expected):
    assert nice_ticks(lo, hi, 5) == pytest.approx(expected)


def test_log_ticks_are_decades_or_1_2_5():
    assert log_ticks(1e-4, 1.0) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert log_ticks(0.11, 2.3) == pytest.approx([0.2, 0.5, 1.0, 2.0])
    assert log_ticks(16, 512, base=2) == [16, 32, 64, 128, 256, 512]


def test_axes_are_in_each_parameters_sampling_scale():
    sp = space()
    a = axis_of(sp["lr"])                     # log: each decade the same width
    assert a.labels == ("1e-4", "0.001", "0.01", "0.1", "1")
    assert a.ticks == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    b = axis_of(sp["momentum"])               # 1-β log: 0.9, 0.99, 0.999 evenly spaced
    assert b.labels == ("0.9", "0.99", "0.999") and b.label == "momentum (1-β log)"
    assert b.ticks == pytest.approx([0, 0.5, 1.0])
    c = axis_of(sp["layers"])                 # choice: one cell each
    assert c.labels == ("2", "3", "4") and c.ticks == pytest.approx([1 / 6, 0.5, 5 / 6])
    h = axis_of(sp["hidden"])                 # linear int
    assert h.labels[0] == "50" and h.labels[-1] == "100" and h.label == "hidden"


def test_pairs_go_in_priority_order_lr_against_tier_2_first():
    assert axis_pairs(space())[:3] == [("lr", "momentum"), ("lr", "hidden"), ("lr", "layers")]
    assert ("momentum", "hidden") in axis_pairs(space())


def test_positions_and_boxes_are_unit_space():
    sp = space()
    assert position(sp["lr"], 0.01) == pytest.approx(0.5)
    assert position(sp["momentum"], 0.99) == pytest.approx(0.5)
    assert position(sp["lr"], 7.0) is None     # outside the space: not drawn
    # Trials with the same choice are spread inside its cell, never out of it.
    spots = {position(sp["layers"], 3, key=k) for k in range(20)}
    assert len(spots) > 10 and all(1 / 3 < u < 2 / 3 for u in spots)
    box = Box("zoom", bounds=(("lr", 0.2, 0.6),), choices=(("layers", (3, 4)),))
    assert box_span(sp["lr"], box) == (0.2, 0.6)
    assert box_span(sp["momentum"], box) == (0.0, 1.0)
    assert box_span(sp["layers"], box) == pytest.approx((1 / 3, 1.0))


# -- curves ---------------------------------------------------------------------------------------------


def line(tid, final, *, status="done", n=40, start=0, **kw) -> Line:
    pts = tuple((start + 10 * (i + 1), final + 2.0 * math.exp(-i / 6)) for i in range(n))
    return Line(id=tid, status=status, points=pts, objective=final, **kw)


def test_thin_picks_evenly_and_keeps_the_last_step():
    pts = [(s, float(s)) for s in range(1, 1001)]
    out = thin(pts, 100)
    assert len(out) == 100 and out[-1] == (1000, 1000.0) and out[0] == (10, 10.0)
    assert thin(pts[:999], 100)[-1] == (999, 999.0)
    assert thin([(1, 1.0), (2, float("nan"))]) == ((1, 1.0),)


def test_marks_sit_on_the_curve():
    fork = line(5, 0.2, parent=2, fork_step=200, start=200, changes=((300, "lr 0.003"),))
    assert [m[0] for m in fork.marks()] == [FORK, CHANGE]
    assert fork.marks()[0][1:] == fork.points[0]
    assert fork.marks()[1][2] == fork.value_at(300)
    stopped = line(6, 0.5, status="stopped", reason="early stop: asha rung 1")
    assert stopped.marks() == [(STOP, *stopped.points[-1])]
    assert line(7, 0.5, status="done").marks() == []


def test_pick_lines_keeps_watched_marked_running_then_best():
    lines = tuple(line(i, 0.1 * i) for i in range(1, 31)) + (line(40, 9.0, status="running"),)
    curves = Curves("val_loss", ("val_loss",), lines, best_id=1)
    kept, hidden_n = pick_lines(curves, watched=30, marked={29}, limit=5)
    ids = [ln.id for ln in kept]
    assert hidden_n == 26 and set(ids) == {30, 29, 40, 1, 2}
    assert ids[-1] == 30                     # the watched one is drawn last, on top
    only, hidden_n = pick_lines(curves, watched=30, marked={29, 3}, only_marked=True)
    assert {ln.id for ln in only} == {3, 29, 30} and hidden_n == 0


def test_curves_picture_has_every_shape_and_no_colour_when_asked(curves_fig):
    lines = (line(1, 0.3), line(2, 0.1), line(3, 0.2, parent=1, fork_step=100, start=100,
                                                changes=((250, "lr 0.001"),)),
             line(4, 0.6, status="stopped", n=10))
    curves = Curves("val_loss", ("val_loss", "loss"), lines, best_id=2)
    pic = draw_curves(curves_fig, curves, 80, 22, watched=3, marked={1}, color=False)
    raw = curves_fig.build()
    text = ANSI.sub("", raw)
    assert not re.search(r"\x1b\[[0-9;]*[34]8;", raw)   # no colour at all (plotext still resets)
    assert f"{BEST}#2 0.1" in text           # the best curve is labelled
    for glyph in (WATCHED, FORK, CHANGE, STOP):
        assert glyph in text, glyph
    assert "#3" in text and "#1" in text     # the watched and the marked are named
    assert "1.5k" not in text and "400" in text   # a step axis of round numbers
    assert pic.title.startswith("val_loss · all: 4 curve(s)")
    assert legend_text(pic).split("   ")[0] == f"{WATCHED} #3 watched"
    assert f"{STOP} stopped" in legend_text(pic)


def test_curves_in_colour_use_the_16_ansi_colours(curves_fig):
    curves = Curves("val_loss", ("val_loss",), (line(1, 0.3), line(2, 0.1)), best_id=2)
    draw_curves(curves_fig, curves, 80, 22, watched=1)
    raw = curves_fig.build()
    codes = re.findall(r"\x1b\[([0-9;]*)m", raw)
    colours = {int(c.split(";")[2]) for c in codes if c.startswith("38;5;")}
    assert colours and colours <= set(range(16))
    assert not [c for c in codes if c.startswith("38;2;")]


@pytest.mark.parametrize("width", [60, 150, 220])
def test_pictures_take_the_size_asked_not_the_terminals(fig, width):
    curves = Curves("val_loss", ("val_loss",), (line(1, 0.3), line(2, 0.1)), best_id=2)
    for figure in (fig, BrailleFigure()):
        draw_curves(figure, curves, width, 30)
        rows = build(figure).splitlines()
        assert len(rows) == 30 and {len(r) for r in rows} == {width}
    draw_search(fig, space(), [Point(1, "done", 0.2, {"lr": 0.01, "momentum": 0.95})], (), "lr", "momentum",
                width, 30)
    rows = build(fig).splitlines()
    assert len(rows) == 30 and {len(r) for r in rows} == {width}


def test_log_scale_and_where_it_cannot_apply(curves_fig):
    curves = Curves("val_loss", ("val_loss",), (line(1, 0.01), line(2, 0.1)), best_id=1)
    pic = draw_curves(curves_fig, curves, 80, 22, log=True)
    text = build(curves_fig)
    assert pic.title.endswith("· log") and "0.01" in text
    neg = Curves("gain", ("gain",), (Line(1, "done", ((1, -1.0), (2, 1.0)), 1.0),))
    assert draw_curves(curves_fig, neg, 80, 22, log=True).title.endswith("log n/a (values <= 0)")


def test_no_curves_yet(curves_fig):
    pic = draw_curves(curves_fig, Curves("val_loss", ("val_loss",), ()), 80, 22)
    assert "no curve of val_loss yet" in pic.note


# -- search -----------------------------------------------------------------------------------------------


def test_search_picture_shades_stars_and_boxes(fig):
    sp = space()
    pts = [Point(i, "done", obj, {"lr": lr_, "momentum": m}) for i, (lr_, m, obj) in enumerate([
        (1e-3, 0.95, 0.5), (3e-3, 0.99, 0.2), (0.1, 0.9, 0.9), (0.3, 0.999, 1.4), (0.01, 0.98, 0.3)], 1)]
    pts += [Point(9, "running", 0.1, {"lr": 0.05, "momentum": 0.93}), Point(10, "failed", None, {"lr": 0.6})]
    boxes = (Box("zoom", bounds=(("lr", 0.1, 0.6), ("momentum", 0.2, 0.9))),
             Box("zoom", bounds=(("lr", 0.2, 0.45), ("momentum", 0.4, 0.8))))
    pic = draw_search(fig, sp, pts, boxes, "lr", "momentum", 80, 22, color=False)
    text = build(fig)
    assert f"{BEST}#2" in text               # the best, starred and named (even running #9 is lower)
    assert RUNNING in text and "x" in text
    assert "█" in text and "░" in text       # best and worst quarters
    assert "z2" in text and "z1" in text     # both zoom levels, named
    assert "1e-4" in text and "0.999" in text
    assert pic.title == "momentum (1-β log) against lr (log) · 5 finished"
    legend = legend_text(pic)
    assert f"{SHADES} objective best→worst" in legend and "zoom box (z2 now)" in legend and "running" in legend


# -- from a study, and the command ---------------------------------------------------------------------


def write_events(run_dir: Path, values: list[float], *, start: int = 0, applied_at: int | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "w") as f:
        for i, v in enumerate(values, 1):
            step = start + 10 * i
            f.write(json.dumps({"t": 1.0 + i, "step": step, "metrics": {"val_loss": v, "loss": v * 0.9}}) + "\n")
            if step == applied_at:
                f.write(json.dumps({"t": 1.5 + i, "event": "applied", "params": {"lr": 0.003}}) + "\n")
        f.write(json.dumps({"t": 99.0, "event": "done"}) + "\n")


@pytest.fixture
def study_path(tmp_path) -> Path:
    """A study of 5 trials: one live-adjusted, a fork, an early stop, one failed, and one zoom."""
    d = tmp_path / "study"
    study = Study.open(d, space(), seed=1)
    settings = [{"lr": 0.003, "momentum": 0.95}, {"lr": 0.05, "momentum": 0.99}, {"lr": 0.3, "momentum": 0.9},
                {"lr": 0.0005, "momentum": 0.98}]
    finals = [0.2, 0.35, 0.9, None]
    for t, final in zip(study.enqueue(settings), finals, strict=True):
        study.mark_started(t.id, 0)
        if final is None:
            study.finish(t.id, "failed", reason="exit code 1")
            continue
        curve = [final + 2 * math.exp(-i / 5) for i in range(30)]
        write_events(study.run_dir(t.id), curve, applied_at=100 if t.id == 1 else None)
        study.update_progress(t.id, 300, min(curve))
        if t.id == 3:
            study.finish(t.id, "stopped", reason="early stop: asha, rung 1")
        else:
            study.finish(t.id, "done", objective=min(curve))
    child = study.add_fork(1, {"lr": 0.001}, 150, None)
    study.mark_started(child.id, 0)
    write_events(study.run_dir(child.id), [0.5 - 0.01 * i for i in range(20)], start=150)
    study.finish(child.id, "done", objective=0.31)
    done = [t for t in study.finished() if t.objective is not None]
    study.search_state = zoom(study.space, study.search_state, [(t.params, t.objective) for t in done],
                              maximize=False, ids=[t.id for t in done], force=True)
    study.close()
    return d


def test_study_curves_carry_forks_live_changes_and_stops(study_path):
    from tui_tuner.runtime.pictures import study_curves

    with Study.open(study_path, lock=False) as study:
        curves = study_curves(study, Runner(study))
    by_id = {ln.id: ln for ln in curves.lines}
    assert set(by_id) == {1, 2, 3, 5} and curves.metric == "val_loss"
    assert curves.metrics == ("val_loss", "loss") and curves.best_id == 1
    assert by_id[1].changes == ((100, "lr 0.003"),)
    assert [m[0] for m in by_id[5].marks()] == [FORK] and by_id[5].points[0][0] == 160
    assert [m[0] for m in by_id[3].marks()] == [STOP]


def test_plot_command_fills_the_terminal(study_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "150")
    monkeypatch.setenv("LINES", "40")
    assert cli.main(["plot", str(study_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert max(len(r) for r in rows) == 150 and 30 <= len(rows) <= 40


def test_plot_command_draws_curves_and_search_to_the_terminal(study_path, capsys):
    assert cli.main(["plot", str(study_path), "--metric", "loss"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("pics: loss · all: 4 curve(s)") and f"{BEST}#1" in text
    assert "\x1b[" not in text                # not a terminal: no colour
    assert f"{FORK} fork" in text and f"{CHANGE} live change" in text and f"{STOP} stopped" in text
    assert cli.main(["plot", str(study_path), "--search", "lr", "momentum"]) == 0
    text = capsys.readouterr().out
    assert "momentum (1-β log) against lr (log) · 4 finished" in text and "z1" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--metric", "acc"], "no trial has reported 'acc' (metrics: val_loss, loss)"),
    (["--search", "lr", "beta"], "--search: no parameter 'beta' (parameters: lr, momentum, hidden, layers)"),
    (["--search", "lr", "lr"], "--search: x and y must differ"),
    (["-o", "out.jpg"], "-o: unknown format '.jpg' (use .txt, .png, .svg, .pdf, or - for standard output)"),
])
def test_plot_command_refuses_with_one_line(study_path, capsys, args, message):
    assert cli.main(["plot", str(study_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_plot_command_refuses_a_directory_that_is_no_study(tmp_path, capsys):
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "no study here" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "magic"), [("c.png", b"\x89PNG"), ("c.svg", b"<?xml"), ("c.pdf", b"%PDF"),
                                             ("c.txt", b"pics: ")])
def test_plot_command_writes_files(study_path, tmp_path, capsys, name, magic):
    pytest.importorskip("matplotlib")
    out = tmp_path / name
    assert cli.main(["plot", str(study_path), "--log", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    assert capsys.readouterr().out.strip() == str(out.resolve())
    search = tmp_path / ("s" + name)
    assert cli.main(["plot", str(study_path), "--search", "lr", "layers", "-o", str(search)]) == 0
    assert search.read_bytes().startswith(magic)
    if name.endswith(".svg"):
        svg = out.read_text()
        assert "best #1" in svg and "live change" in svg and "stopped" in svg


def test_plot_without_matplotlib_says_how_to_get_it(study_path, tmp_path, capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    assert cli.main(["plot", str(study_path), "-o", str(tmp_path / "c.png")]) == 2
    assert "pip install 'tui-tuner[plot]'" in capsys.readouterr().err
