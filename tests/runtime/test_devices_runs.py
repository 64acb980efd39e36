"""`[study] devices` with real runs on fake devices: a trainer that writes down the CUDA_VISIBLE_DEVICES
it was given (tests/scripts/device_toy.py), so no GPU is needed.

Every run sees exactly one device, no device holds more than k runs from the queue, forks follow the
placement rule, and a restarted tuner keeps each run on its device (and counts it there).
"""

from __future__ import annotations

import collections
import re
import time
from pathlib import Path

from runtime_helpers import make_runner, wait_for
from space_toml import param, space_toml
from study_runs import SCRIPTS, kill_runs
from waiting import wait_for as wait_until

from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.runtime.session import Session
from tui_tuner.search.space import parse_space
from tui_tuner.study.decision_log import Decision
from tui_tuner.study.study import Study
from tui_tuner.trainer import protocol

DEVICE_TOY = SCRIPTS / "device_toy.py"


def device_space(tmp_path: Path, *, devices, parallel=1, steps=100000, delay=0.02, **study):
    params = {"lr": param("float", scale="log", low=1e-3, high=0.5, default=0.1, live=True),
              "steps": param("int", low=1, high=100000, default=steps, tier=4),
              "delay": param("float", low=0.0, high=5.0, default=delay, tier=4)}
    text = space_toml(params, name="devices", command=["python", str(DEVICE_TOY)], objective="loss",
                      devices=devices, parallel=parallel, stage=1, **study)
    path = tmp_path / "space.toml"
    path.write_text(text)
    return parse_space(text, str(path))


def given(study: Study, tid: int) -> str | None:
    """The device the tuner recorded for a run (params.json)."""
    return (protocol.read_json(study.run_dir(tid) / protocol.PARAMS) or {}).get("device")


def seen(study: Study, tid: int) -> str | None:
    """What the trainer itself saw in CUDA_VISIBLE_DEVICES (None: not yet written, or unset)."""
    path = study.run_dir(tid) / "seen_devices.txt"
    return path.read_text() if path.exists() else None


def per_device(study: Study, runner) -> collections.Counter:
    """Live runs per device, from the run directories (not from the runner's own count)."""
    return collections.Counter(given(study, tid) for tid in runner.queries.live_ids())

def tick_within_k(session: Session, study: Study) -> dict[str, int]:
    """One poll and tick; every run it started went to a device within that device's k. Runs per device."""
    devices = session.runner.devices
    before = set(session.runner.queries.live_ids())
    session.poll()
    session.tick()
    now = per_device(study, session.runner)
    for tid in set(session.runner.queries.live_ids()) - before:
        d = given(study, tid)
        assert now[d] <= devices.k_of(d), f"#{tid} started on GPU {d} beyond its k {devices.k_of(d)}: {now}"
    return now



def test_every_run_sees_one_device_and_no_device_holds_more_than_k(tmp_path):
    study = Study.open(tmp_path / "study", device_space(tmp_path, devices=[0, 1], steps=15, delay=0.01), seed=3)
    runner = make_runner(study)
    sched = Scheduler(study, runner, budget=10, parallel=2, strategy="random")
    try:
        assert sched.slots == 4
        most: collections.Counter = collections.Counter()
        end = time.time() + 60
        while not sched.done():
            assert time.time() < end, f"not done: {study.counts()}"
            runner.poll()
            sched.tick()
            now = per_device(study, runner)
            assert set(now) <= {"0", "1"}, now
            assert all(n <= 2 for n in now.values()), f"more than k = 2 runs on a device: {now}"
            for d, n in now.items():
                most[d] = max(most[d], n)
            time.sleep(0.01)
        trials = study.trials("id")
        assert [t.status for t in trials] == ["done"] * 10
        assert most == {"0": 2, "1": 2}, "both devices were used, each up to k"
        for t in trials:
            assert seen(study, t.id) == given(study, t.id) in ("0", "1"), f"#{t.id} saw {seen(study, t.id)!r}"
            assert runner.queries.latest(t.id)["metrics"]["gpus"] == 1, "exactly one device visible"
            record = protocol.read_json(study.run_dir(t.id) / "command.json")
            assert record["env"] == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": given(study, t.id)}
    finally:
        runner.commands.stop_all(timeout=5)
        study.close()


def test_without_devices_runs_get_no_cuda_visible_devices(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    space = device_space(tmp_path, devices=None, steps=3, delay=0.0)
    study = Study.open(tmp_path / "study", space, seed=3)
    runner = make_runner(study)
    try:
        assert runner.devices is None
        tid = study.enqueue_manual({}).id
        runner.start(study.trial(tid))
        wait_for(runner, lambda: study.trial(tid).status == "done", 30, what="the run to end")
        assert seen(study, tid) is None and given(study, tid) is None
        assert runner.queries.latest(tid)["metrics"]["gpus"] == 0
    finally:
        study.close()


def test_forks_go_to_their_parents_device_while_it_has_room_then_elsewhere(tmp_path):
    study = Study.open(tmp_path / "study", device_space(tmp_path, devices=[0, 1, 2], parallel=2), seed=3)
    runner = make_runner(study)
    try:
        a, b = (study.enqueue_manual({}).id for _ in range(2))
        runner.start(study.trial(a))
        runner.start(study.trial(b))
        assert (given(study, a), given(study, b)) == ("0", "1"), "fresh trials spread out"
        wait_for(runner, lambda: (runner.queries.latest(a)["step"] or 0) >= 3, 30, what="steps of #a")
        first = runner.commands.fork(a, {"lr": 0.05}).id
        assert given(study, first) == "0", "the parent's device had room (1 of k = 2)"
        second = runner.commands.fork(a, {"lr": 0.02}).id
        # Device 0 is full now: the most free memory, which is unknown here, so the fewest runs.
        assert given(study, second) == "2"
        third = runner.commands.fork(first, {"lr": 0.01}).id
        assert given(study, third) == "1", "device 0 full; 1 and 2 hold one run each: the list's order"
        fourth = runner.commands.fork(b, {"lr": 0.01}).id
        assert given(study, fourth) == "2", "device 1 full now: the one device with room"
        assert per_device(study, runner) == {"0": 2, "1": 2, "2": 2}
        for child in (first, second, third, fourth):
            wait_for(runner, lambda c=child: seen(study, c) is not None, 30, what=f"#{child} to start")
            assert seen(study, child) == given(study, child)
            wait_for(runner, lambda c=child: "parent_gpu" in runner.queries.latest(c)["metrics"], 30,
                     what=f"a report of #{child}")
        assert runner.queries.latest(second)["metrics"]["parent_gpu"] == 0, "resumed from a run on device 0"
        assert runner.queries.latest(second)["metrics"]["gpu"] == 2
        # Every device full: a fork the user asks for still starts (as a fork starts beyond
        # `parallel` without devices), on the best of the full ones: the fewest runs, the list's order.
        over = runner.commands.fork(b, {}).id
        assert given(study, over) == "0" and per_device(study, runner) == {"0": 3, "1": 2, "2": 2}
    finally:
        runner.commands.stop_all(timeout=5)
        study.close()


def test_a_restarted_tuner_keeps_each_run_on_its_device(tmp_path):
    space = device_space(tmp_path, devices=[0, 1], parallel=1)
    study = Study.open(tmp_path / "study", space, seed=3)
    first = make_runner(study)
    sched = Scheduler(study, first, budget=5, parallel=1, strategy="random")
    try:
        started = sched.tick()
        assert len(started) == 2 and sorted(given(study, t) for t in started) == ["0", "1"]
        on = {given(study, t): t for t in started}
        wait_for(first, lambda: all(seen(study, t) for t in started), 30, what="both runs to start")
        study.close()   # the tuner goes away; its runs go on

        study = Study.open(tmp_path / "study")
        second = make_runner(study)
        assert sorted(second.adopt()) == sorted(started)
        assert {t: second.runs[t].device for t in started} == {t: given(study, t) for t in started}
        assert second.devices.counts(second.runs) == {"0": 1, "1": 1}
        sched = Scheduler(study, second, budget=5, parallel=1, strategy="random")
        assert sched.free_slots() == 0 and sched.tick() == [], "both devices already hold their k"
        # The run on device 1 ends: the next trial goes there, and only there.
        second.commands.stop(on["1"])
        wait_for(second, lambda: not second.queries.is_live(on["1"]), 30, what="the run on device 1 to end")
        (new,) = sched.tick()
        assert given(study, new) == "1"
        wait_for(second, lambda: seen(study, new) is not None, 30, what="the new run to start")
        assert seen(study, new) == "1" and per_device(study, second) == {"0": 1, "1": 1}
    finally:
        study.close()
        kill_runs(tmp_path / "study")


def test_auto_k_is_per_device_and_never_puts_more_than_k_on_one(tmp_path):
    space = device_space(tmp_path, devices=[0, 1], parallel="auto", strategy="random", budget=12)
    study = Study.open(tmp_path / "study", space, seed=3)
    session = Session(study, runner_options={"cwd": Path.cwd(), "stop_timeout": 1.0, "term_timeout": 1.0})
    session.automation.autok.window = 0.3
    decisions: list = []
    session.subscribe(lambda e: decisions.append(e) if isinstance(e, Decision) and e.kind == "auto_k" else None)
    try:
        session.adopt()
        assert session.scheduler.parallel == 1 and session.scheduler.slots == 2

        devices = session.runner.devices

        def step() -> bool:
            now = tick_within_k(session, study)
            return all(k >= 2 for k in devices.each_k().values()) and min(now.get(d, 0) for d in "01") >= 2

        wait_until(step, 40, 0.02, "k to rise to 2 on each device, with 2 runs on each")
        raised = decisions[0]
        assert raised.data["from"] == 1 and raised.data["to"] == 2 and raised.message.startswith("GPU ")
        assert 0.5 <= raised.data["runs"] <= 1.5, "measured at 1 run per device (2 in all)"
        assert re.fullmatch(r"k [0-9·]+ auto( · .*)?", session.k_status().text()), session.k_status().text()
        loads = session.device_loads()
        assert [d.device for d in loads] == ["0", "1"] and all(d.runs >= 2 and d.k >= 2 for d in loads)
        assert [d.text() for d in loads] == [f"{d.device}:{d.runs}/{d.k}" for d in loads]   # no NVML: no memory
    finally:
        session.close(stop_runs=True, timeout=5)
        kill_runs(study.dir)
        study.close()


def test_each_device_gets_its_own_k_from_its_own_throughput(tmp_path):
    # GPU 1 is "saturated": a second run there makes fewer steps/s in all; GPU 0's runs each go at
    # their own pace, so more runs there pay.
    space = device_space(tmp_path, devices=[0, 1], parallel="auto", strategy="random", budget=20,
                         env={"DEVICE_TOY_SATURATED": "1"})
    study = Study.open(tmp_path / "study", space, seed=3)
    session = Session(study, runner_options={"cwd": Path.cwd(), "stop_timeout": 1.0, "term_timeout": 1.0})
    ak = session.automation.autok
    ak.window = 0.5
    decisions: list = []
    session.subscribe(lambda e: decisions.append(e) if isinstance(e, Decision) and e.kind == "auto_k" else None)
    devices = session.runner.devices
    try:
        session.adopt()

        def step() -> bool:
            tick_within_k(session, study)
            lane0, lane1 = ak.lanes
            return lane0.state.k >= 4 and lane1.state.settled

        wait_until(step, 60, 0.02, "GPU 0 to rise to k 4 and GPU 1 to settle")
        said = [x.message for x in decisions]
        k0 = devices.k_of("0")   # 4, or 8 if GPU 1 took longer to settle
        assert k0 >= 4 and devices.k_of("1") == 1, said
        by_gpu = {d: [x.data for x in decisions if x.data.get("device") == d] for d in ("0", "1")}
        assert [(x["from"], x["to"], x["why"]) for x in by_gpu["0"]][:2] == [(1, 2, "raise"), (2, 4, "raise")], said
        assert [(x["from"], x["to"], x["why"]) for x in by_gpu["1"]] == [(1, 2, "raise"), (2, 1, "back")], said
        back = next(x for x in decisions if x.data.get("device") == "1" and x.data["why"] == "back")
        assert back.message.startswith("GPU 1: k 2 → 1: ")
        assert session.k_status().text().startswith(f"k {k0}·1 auto")
        assert study.meta("auto_k@0")["k"] == k0 and study.meta("auto_k@1")["k"] == 1
        # The k keys act on every device at once, as one decision; its undo puts each device's k back.
        said = session.toggle_k()
        assert said == f"k {k0}·1 on every GPU: fixed by hand (auto-k paused)"
        assert said == decisions[-1].message
        said = session.bump_k(1)
        assert said == f"k {k0}·1 → {k0 + 1} on every GPU: fixed by hand (auto-k paused)"
        assert devices.each_k() == {"0": k0 + 1, "1": k0 + 1}
        session.undo_decision(decisions[-1].id)
        assert devices.each_k() == {"0": k0, "1": 1}
    finally:
        session.close(stop_runs=True, timeout=5)
        kill_runs(study.dir)
        study.close()


def test_headless_says_the_devices_and_runs_on_them(tmp_path, monkeypatch):
    import io
    import sys

    from tui_tuner.runtime.headless import run_headless

    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    space = device_space(tmp_path, devices=[2, 3], steps=5, delay=0.0, strategy="random")
    out = io.StringIO()
    assert run_headless(space.path, tmp_path / "study", trials=4, parallel=1, strategy=None, seed=3, out=out) == 0
    text = out.getvalue()
    assert "parallel 1 per device on GPUs 2, 3, objective loss" in text
    assert "devices 2, 3: no GPU is visible here" in text, "the warning is said"
    assert text.count(" done ") == 4
    study = Study.open(tmp_path / "study")
    try:
        saw = [seen(study, t.id) for t in study.trials("id")]
        assert len(saw) == 4 and set(saw) == {"2", "3"}, saw
    finally:
        study.close()


def test_an_oom_alone_on_its_device_fails_for_real_though_another_device_runs(tmp_path):
    # Without devices a run that ran out of memory beside another is re-queued (they shared the
    # GPU); here it was alone on GPU 1, so it simply does not fit there: it fails, and k stays.
    params = {"lr": param("float", scale="log", low=1e-3, high=0.5, default=0.1, live=True),
              "steps": param("int", low=1, high=100000, default=20, tier=4),
              "delay": param("float", low=0.0, high=1.0, default=0.01, tier=4),
              "oom": param("int", low=0, high=1, default=0, tier=4)}
    text = space_toml(params, name="oom", command=["python", str(SCRIPTS / "oom_once.py")], objective="loss",
                      devices=[0, 1], parallel="auto", strategy="random", stage=1, budget=2)
    (tmp_path / "space.toml").write_text(text)
    study = Study.open(tmp_path / "study", parse_space(text, str(tmp_path / "space.toml")), seed=3)
    session = Session(study, runner_options={"cwd": Path.cwd(), "stop_timeout": 1.0, "term_timeout": 1.0})
    try:
        a, b = study.enqueue([{"steps": 100000, "delay": 0.01}, {"oom": 1}], "manual")
        session.adopt()

        def step() -> bool:
            session.poll()
            session.tick()
            return study.trial(b.id).finished

        wait_until(step, 30, 0.02, "the out-of-memory trial to end")
        assert (given(study, a.id), given(study, b.id)) == ("0", "1")
        assert session.runner.queries.is_live(a.id), "the other device's run went on meanwhile"
        t = study.trial(b.id)
        assert (t.status, t.reason) == ("failed", "out of GPU memory")
        assert session.runner.devices.each_k() == {"0": 1, "1": 1}
    finally:
        session.close(stop_runs=True, timeout=5)
        kill_runs(study.dir)
        study.close()
