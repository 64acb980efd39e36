"""The trainer API and the protocol helpers: real trainer processes driven through their run directory."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waiting import wait_for

from tui_tuner import trainer
from tui_tuner.trainer import protocol as P

PY = sys.executable


def strict_loads(line: str):
    """json.loads that refuses the non-standard NaN/Infinity literals."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(line, parse_constant=refuse)


# A trainer that loops until stopped, reporting every few ms, printing what it sees of live changes.
LOOP = r"""
import json, sys, time
from tui_tuner import trainer
hp = trainer.params(lr=0.1, momentum=0.9, steps=100000, delay=0.003, save=True)
if hp.save:
    @trainer.on_checkpoint
    def save(path):
        with open(path, "w") as f:
            f.write("state at %d" % trainer.last_step())
step = 0
while step < hp.steps:
    step += 1
    trainer.report(step, loss=1.0 / step)
    ch = trainer.changes()
    if ch:
        print("CHANGES", json.dumps(ch), json.dumps(trainer.params()), sep="\t", flush=True)
    if trainer.should_stop():
        print("STOPPED", step, flush=True)
        break
    time.sleep(hp.delay)
"""


class Harness:
    """One trainer process under a run directory, driven the way the runner drives it."""

    def __init__(self, tmp_path: Path, body: str = LOOP, params: dict | None = None, resume=None,
                 argv: tuple[str, ...] = ()) -> None:
        self.run = tmp_path / "study" / "runs" / "t0001"
        self.run.mkdir(parents=True)
        P.write_json_atomic(self.run / P.PARAMS, {"trial": 1, "params": params or {}, "resume": resume})
        self.script = tmp_path / "train.py"
        self.script.write_text(body)
        self.seq = 0
        self.out = open(tmp_path / "out.txt", "wb")
        env = {**os.environ, P.ENV_RUN_DIR: str(self.run)}
        self.proc = subprocess.Popen([PY, str(self.script), *argv], env=env, stdout=self.out,
                                     stderr=subprocess.STDOUT)
        self.tail = P.JsonlTail(self.run / P.EVENTS)
        self.events: list[dict] = []
        self.garbage = 0

    def send(self, cmd: str, **fields) -> int:
        self.seq += 1
        P.append_line(self.run / P.CONTROL, {"seq": self.seq, "cmd": cmd, **fields})
        return self.seq

    def poll(self) -> list[dict]:
        new, bad = self.tail.read_new()
        self.events += new
        self.garbage += bad
        return self.events

    def wait_event(self, pred, timeout: float = 15.0) -> dict:
        def find():
            return next((e for e in self.poll() if pred(e)), None)
        return wait_for(find, timeout)

    def metrics(self) -> list[dict]:
        return [e for e in self.poll() if "step" in e and "event" not in e]

    def output(self) -> str:
        if not self.out.closed:
            self.out.flush()
        return Path(self.out.name).read_text()

    def finish(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.out.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


@pytest.fixture
def harness(tmp_path):
    made: list[Harness] = []

    def make(*args, **kw) -> Harness:
        h = Harness(tmp_path, *args, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def run_script(tmp_path: Path, body: str, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "s.py"
    path.write_text(body)
    e = {k: v for k, v in os.environ.items() if k != P.ENV_RUN_DIR}
    e.update(env or {})
    return subprocess.run([PY, str(path), *argv], env=e, capture_output=True, text=True, timeout=60)


# -- import hygiene -------------------------------------------------------------------------------------


def test_trainer_and_protocol_import_no_heavy_modules():
    code = ("import sys\nimport tui_tuner.trainer, tui_tuner.trainer.protocol\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'numpy', 'torch'))\n"
            "print(heavy)\n")
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# -- params ---------------------------------------------------------------------------------------------

PARAMS = """
import json
from tui_tuner import trainer
hp = trainer.params({"lr": 0.01, "hidden": 64}, name="x", flag=False, batch_size=32, opt=None)
print(json.dumps({"hp": hp, "types": {k: type(v).__name__ for k, v in hp.items()},
                  "resume": trainer.resume_path(), "attr": hp.lr}))
"""


def test_params_standalone_defaults_and_overrides(tmp_path):
    r = run_script(tmp_path, PARAMS, "--lr", "0.5", "--hidden=80", "--flag", "--batch-size", "64",
                   "--opt", "[1, 2]", "--name=a b")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["hp"] == {"lr": 0.5, "hidden": 80, "name": "a b", "flag": True, "batch_size": 64, "opt": [1, 2]}
    assert out["types"]["lr"] == "float" and out["types"]["hidden"] == "int"
    assert out["resume"] is None and out["attr"] == 0.5


@pytest.mark.parametrize(("argv", "flag"), [(["--flag", "false"], False), (["--flag=True"], True),
                                            (["--flag", "0"], False), ([], False)])
def test_params_standalone_booleans(tmp_path, argv, flag):
    r = run_script(tmp_path, PARAMS, *argv)
    assert json.loads(r.stdout)["hp"]["flag"] is flag


def test_params_standalone_bad_value_is_one_line_exit_2(tmp_path):
    r = run_script(tmp_path, PARAMS, "--hidden", "1.5")
    assert r.returncode == 2
    assert r.stderr.strip() == "tui-tuner: --hidden: expected an integer, got '1.5'"


def test_params_standalone_warns_about_unknown_flags(tmp_path):
    r = run_script(tmp_path, PARAMS, "--lrr", "3", "--lr", "0.2")
    assert r.returncode == 0 and "--lrr" in r.stderr
    assert json.loads(r.stdout)["hp"]["lr"] == 0.2


def test_params_under_a_run_dir(tmp_path):
    run = tmp_path / "study" / "runs" / "t0003"
    run.mkdir(parents=True)
    P.write_json_atomic(run / P.PARAMS, {"trial": 3, "params": {"lr": 1, "hidden": 80, "extra": "x"},
                                         "resume": "runs/t0001/ckpt/step-10.pt"})
    r = run_script(tmp_path, PARAMS, "--lr", "0.9", "--name", "b", env={P.ENV_RUN_DIR: str(run)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # params.json beats the command line, which beats the defaults; 1 becomes 1.0 for a float default.
    assert out["hp"] == {"lr": 1.0, "hidden": 80, "extra": "x", "name": "b", "flag": False, "batch_size": 32,
                         "opt": None}
    assert out["types"]["lr"] == "float"
    assert out["resume"] == str((tmp_path / "study" / "runs/t0001/ckpt/step-10.pt").resolve())


def test_resolve_resume():
    assert P.resolve_resume("/s/runs/t1", None) is None
    assert P.resolve_resume("/s/runs/t1", "/abs/c.pt") == "/abs/c.pt"
    assert P.resolve_resume("/s/runs/t1", "runs/t0/ckpt/step-5.pt") == "/s/runs/t0/ckpt/step-5.pt"


# -- report -----------------------------------------------------------------------------------------------


def test_report_standalone_prints(tmp_path):
    r = run_script(tmp_path, "from tui_tuner import trainer\ntrainer.params(lr=0.1)\n"
                             "trainer.report(500, loss=2.41317, val_loss=2.5, n=3)\n")
    assert r.stdout.strip() == "step 500 | loss 2.41317 | val_loss 2.5 | n 3"


def test_report_writes_events_and_flushes_within_100ms(tmp_path):
    run = tmp_path / "run"
    r = trainer.Run(run, argv=[])
    try:
        r.params(lr=0.1)
        r.report(7, loss=0.5, acc=1)
        path = run / P.EVENTS
        # Written by the background writer, with no close or flush asked for (its period: FLUSH_INTERVAL).
        wait_for(lambda: path.stat().st_size > 0, timeout=30, interval=0.002)
        line = strict_loads(path.read_text())
        assert line["step"] == 7 and line["metrics"] == {"loss": 0.5, "acc": 1}
        assert abs(line["t"] - time.time()) < 5
    finally:
        r.close()
    assert strict_loads(path.read_text().splitlines()[-1])["event"] == "done"


def test_non_finite_metrics_are_strict_json(tmp_path):
    class Scalar:   # a tensor-like value with .item()
        def item(self):
            return 2.5

    run = tmp_path / "run"
    r = trainer.Run(run, argv=[])
    try:
        r.report(1, loss=math.nan, up=math.inf, down=-math.inf, t=Scalar(), ok=True)
        r.flush()
    finally:
        r.close()
    first = (run / P.EVENTS).read_text().splitlines()[0]
    obj = strict_loads(first)
    assert obj["metrics"] == {"loss": "NaN", "up": "Infinity", "down": "-Infinity", "t": 2.5, "ok": 1.0}
    m = P.decode_metrics(obj["metrics"])
    assert math.isnan(m["loss"]) and m["up"] == math.inf and m["down"] == -math.inf and m["t"] == 2.5


def test_report_refuses_a_non_number(tmp_path):
    r = trainer.Run(tmp_path / "run", argv=[])
    try:
        with pytest.raises(TypeError, match="metric 'x'"):
            r.report(1, x="abc")
    finally:
        r.close()


def test_decode_metric():
    assert P.decode_metric(1) == 1.0 and P.decode_metric(True) is None and P.decode_metric("x") is None
    assert P.decode_metric(float("nan")) != P.decode_metric(float("nan"))   # Python's own NaN literal
    assert P.decode_metrics({"a": 1, "b": "Infinity", "c": [1]}) == {"a": 1.0, "b": math.inf}
    assert P.decode_metrics(None) == {}


# -- commands ---------------------------------------------------------------------------------------------


def test_pause_blocks_and_resume_continues(harness):
    h = harness()
    h.wait_event(lambda e: e.get("step", 0) >= 3)
    h.send("pause")
    paused = h.wait_event(lambda e: e.get("event") == "paused")
    n = len(h.metrics())
    time.sleep(0.3)
    assert len(h.metrics()) == n, "metrics kept coming while paused"
    last = h.metrics()[-1]["step"]
    assert h.proc.poll() is None
    h.send("resume")
    resumed = h.wait_event(lambda e: e.get("event") == "resumed")
    h.wait_event(lambda e: e.get("step", 0) > last)
    assert resumed["t"] >= paused["t"] + 0.25
    h.send("stop")
    assert h.finish() == 0
    assert "STOPPED" in h.output()
    assert h.poll()[-1]["event"] == "done" and h.garbage == 0


def test_stop_unblocks_a_paused_trainer(harness):
    h = harness()
    h.wait_event(lambda e: "step" in e)
    h.send("pause")
    h.wait_event(lambda e: e.get("event") == "paused")
    h.send("stop")
    assert h.finish() == 0
    assert "STOPPED" in h.output()


def test_set_applies_live_changes_once(harness):
    h = harness()
    h.wait_event(lambda e: "step" in e)
    h.send("set", params={"lr": 1, "momentum": 0.99})
    applied = h.wait_event(lambda e: e.get("event") == "applied")
    assert applied["params"] == {"lr": 1.0, "momentum": 0.99}
    n = len(h.metrics())
    h.wait_event(lambda e: e.get("step", 0) > h.metrics()[n - 1]["step"] + 5)
    h.send("stop")
    assert h.finish() == 0
    changes = [ln for ln in h.output().splitlines() if ln.startswith("CHANGES")]
    assert len(changes) == 1   # changes() returns a change once
    _, ch, hp = changes[0].split("\t")
    assert json.loads(ch) == {"lr": 1.0, "momentum": 0.99}
    assert json.loads(hp)["lr"] == 1.0 and json.loads(hp)["momentum"] == 0.99


def test_checkpoint_calls_save_and_answers_with_the_same_seq(harness):
    h = harness()
    h.wait_event(lambda e: "step" in e)
    h.send("set", params={"lr": 0.2})
    seq = h.send("checkpoint")
    ev = h.wait_event(lambda e: e.get("event") == "checkpoint")
    assert ev["seq"] == seq and ev["path"] == f"ckpt/step-{ev['step']}.pt"
    assert (h.run / ev["path"]).read_text() == f"state at {ev['step']}"
    h.send("stop")
    assert h.finish() == 0


def test_checkpoint_and_set_while_paused(harness):
    h = harness()
    h.wait_event(lambda e: "step" in e)
    h.send("pause")
    h.wait_event(lambda e: e.get("event") == "paused")
    last = h.metrics()[-1]["step"]
    seq = h.send("checkpoint")
    ev = h.wait_event(lambda e: e.get("event") == "checkpoint")
    assert ev["seq"] == seq and ev["step"] == last and (h.run / ev["path"]).exists()
    h.send("set", params={"lr": 0.3})
    assert h.wait_event(lambda e: e.get("event") == "applied")["params"] == {"lr": 0.3}
    assert h.metrics()[-1]["step"] == last   # still paused
    h.send("stop")
    assert h.finish() == 0


def test_checkpoint_without_a_save_function_reports_an_error(harness):
    h = harness(params={"save": False})
    h.wait_event(lambda e: "step" in e)
    seq = h.send("checkpoint")
    ev = h.wait_event(lambda e: e.get("event") == "checkpoint")
    assert ev["seq"] == seq and "path" not in ev and "on_checkpoint" in ev["error"]
    h.send("stop")
    assert h.finish() == 0


def test_a_failing_save_is_reported_and_training_goes_on(harness):
    body = LOOP.replace('f.write("state', 'raise OSError("disk full"); f.write("state')
    h = harness(body)
    h.wait_event(lambda e: "step" in e)
    h.send("checkpoint")
    ev = h.wait_event(lambda e: e.get("event") == "checkpoint")
    assert "disk full" in ev["error"]
    step = h.metrics()[-1]["step"]
    h.wait_event(lambda e: e.get("step", 0) > step)
    h.send("stop")
    assert h.finish() == 0


def test_commands_are_applied_once_in_seq_order_and_garbage_is_skipped(harness):
    h = harness()
    h.wait_event(lambda e: "step" in e)
    ctl = h.run / P.CONTROL
    with open(ctl, "a") as f:
        f.write('not json\n[1, 2]\n{"seq": 1, "cmd": "set", "params": {"lr": 0.5}}\n'
                '{"seq": 1, "cmd": "set", "params": {"lr": 0.7}}\n{"seq": 2, "cmd": "frobnicate"}\n')
    h.seq = 2
    h.wait_event(lambda e: e.get("event") == "applied")
    h.send("stop")
    assert h.finish() == 0
    applied = [e for e in h.poll() if e.get("event") == "applied"]
    assert [a["params"] for a in applied] == [{"lr": 0.5}]


def test_a_control_line_written_in_two_parts(harness):
    h = harness()
    h.wait_event(lambda e: "step" in e)
    ctl = h.run / P.CONTROL
    with open(ctl, "ab") as f:
        f.write(b'{"seq": 1, "cmd": "se')
    time.sleep(0.1)
    with open(ctl, "ab") as f:
        f.write(b't", "params": {"lr": 0.25}}\n')
    h.seq = 1
    assert h.wait_event(lambda e: e.get("event") == "applied")["params"] == {"lr": 0.25}
    h.send("stop")
    assert h.finish() == 0


def test_done_only_at_a_clean_exit(harness):
    ok = harness("from tui_tuner import trainer\ntrainer.params()\ntrainer.report(1, loss=1.0)\n")
    assert ok.finish() == 0
    assert [e.get("event") for e in ok.poll()] == [None, "done"]


def test_no_done_after_an_uncaught_exception(tmp_path):
    h = Harness(tmp_path, "from tui_tuner import trainer\ntrainer.report(1, loss=1.0)\nraise RuntimeError('x')\n")
    try:
        assert h.finish() == 1
        assert [e.get("event") for e in h.poll()] == [None]
        assert "RuntimeError" in h.output()
    finally:
        h.close()


# -- JsonlTail ----------------------------------------------------------------------------------------------


def test_tail_handles_missing_partial_and_garbage_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = P.JsonlTail(path)
    assert tail.read_new() == ([], 0)
    with open(path, "wb") as f:
        f.write(b'{"a": 1}\n{"b": ')
    assert tail.read_new() == ([{"a": 1}], 0)
    assert tail.position == len(b'{"a": 1}\n')
    with open(path, "ab") as f:
        f.write(b'2}\nnot json\n[1]\n\xff\xfe\n\n{"c": NaN}\n')
    objs, bad = tail.read_new()
    assert objs[0] == {"b": 2} and math.isnan(objs[1]["c"]) and bad == 3
    assert tail.read_new() == ([], 0)


def test_tail_final_parses_an_unterminated_last_line(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a": 1}\n{"event": "done"}')
    tail = P.JsonlTail(path)
    assert tail.read_new() == ([{"a": 1}], 0)
    assert tail.read_new(final=True) == ([{"event": "done"}], 0)


def test_tail_restarts_from_an_offset_and_after_truncation(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n')
    tail = P.JsonlTail(path)
    assert len(tail.read_new()[0]) == 2
    assert P.JsonlTail(path).read_new()[0] == [{"a": 1}, {"a": 2}]          # re-adopt from 0
    assert P.JsonlTail(path, offset=9).read_new()[0] == [{"a": 2}]
    path.write_bytes(b'{"z": 0}\n')
    assert tail.read_new()[0] == [{"z": 0}]


def test_tail_reads_in_bounded_chunks(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"".join(b'{"i": %d}\n' % i for i in range(1000)))
    tail = P.JsonlTail(path, max_bytes=1000)
    seen = []
    while True:
        objs, bad = tail.read_new()
        assert bad == 0
        seen += objs
        if not tail.behind:
            break
    assert [o["i"] for o in seen] == list(range(1000))


def test_tail_drops_an_endless_line(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"x" * 5000)
    tail = P.JsonlTail(path, max_line=1000)
    assert tail.read_new() == ([], 1)
    with open(path, "ab") as f:
        f.write(b'yyy\n{"a": 1}\n')
    assert tail.read_new() == ([{"a": 1}], 1)   # the rest of the endless line is garbage too
