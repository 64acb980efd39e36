"""`[study] devices`: the key and its refusals, "auto" from NVML or CUDA_VISIBLE_DEVICES, and the
placement rule (search/devices.py) as a table of cases."""

from __future__ import annotations

import sys
import types

import pytest
from space_toml import lr, space_toml

from tui_tuner.errors import SpaceError
from tui_tuner.runtime import devices as runtime_devices
from tui_tuner.search.devices import free_slots, place
from tui_tuner.search.space import parse_space

GB = 1e9


def study(**keys):
    return parse_space(space_toml({"lr": lr()}, **keys), "spaces/x.toml").config


def test_no_devices_by_default():
    assert study().devices is None


@pytest.mark.parametrize(("value", "want"), [("auto", "auto"), ([0], ("0",)), ([3, 1, 2], ("3", "1", "2"))])
def test_devices_given(value, want):
    assert study(devices=value).devices == want


@pytest.mark.parametrize(("value", "rule"), [
    ([], 'study.devices: must be "auto" or a non-empty list of GPU indices (integers >= 0) such as [0, 1], got []'),
    ("all", 'study.devices: must be "auto" or a non-empty list of GPU indices (integers >= 0) such as [0, 1], '
            "got 'all'"),
    ([0, -1], "got -1 in the list"),
    ([0, "1"], "got '1' in the list"),
    ([0, True], "got true in the list"),
    ([0, 1.5], "got 1.5 in the list"),
    ([2, 1, 2], "study.devices: lists GPU 2 twice"),
    (3, "such as [0, 1], got 3"),
])
def test_bad_devices_are_one_line_naming_file_key_and_rule(value, rule):
    with pytest.raises(SpaceError) as e:
        study(devices=value)
    msg = e.value.message
    assert msg.startswith("spaces/x.toml: study.devices: ") and rule in msg and "\n" not in msg


def test_env_may_not_set_cuda_visible_devices_beside_devices():
    with pytest.raises(SpaceError, match=r"spaces/x.toml: study.env.CUDA_VISIBLE_DEVICES: is set per run by "
                                         r"\[study\] devices: keep one of them"):
        study(devices=[0], env={"CUDA_VISIBLE_DEVICES": "1"})
    assert study(env={"CUDA_VISIBLE_DEVICES": "1"}).env == {"CUDA_VISIBLE_DEVICES": "1"}   # alone: as before


# -- "auto" -----------------------------------------------------------------------------------------

def _nvml(count):
    return types.SimpleNamespace(nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: count)


@pytest.mark.parametrize(("env", "want"), [
    ({}, ()),                                          # neither: no device
    ({"CUDA_VISIBLE_DEVICES": "0,1"}, ("0", "1")),
    ({"CUDA_VISIBLE_DEVICES": " 2, 3 "}, ("2", "3")),
    ({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, ("1",)),      # as CUDA: the list ends at -1
    ({"CUDA_VISIBLE_DEVICES": ""}, ()),                # set but empty: CUDA sees none
    ({"CUDA_VISIBLE_DEVICES": "GPU-8f2c,1"}, ("GPU-8f2c", "1")),
])
def test_auto_without_pynvml_reads_cuda_visible_devices(monkeypatch, env, want):
    monkeypatch.setitem(sys.modules, "pynvml", None)     # not installed: import raises
    assert runtime_devices.nvml_count() is None
    assert runtime_devices.visible(env) == want
    got = runtime_devices.for_config("auto", 2, environ=env)
    assert (got.devices if got is not None else ()) == want
    if got is not None:
        assert got.k == 2 and got.warning == ""


def test_auto_from_the_os_environment(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert runtime_devices.for_config("auto", 1) is None          # no GPU: no device, as today
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert runtime_devices.for_config("auto", 1).devices == ("4", "5")


@pytest.mark.parametrize(("env", "want"), [
    ({}, ("0", "1", "2", "3")),                              # every GPU NVML sees
    ({"CUDA_VISIBLE_DEVICES": "3,1"}, ("3", "1")),           # narrowed to those the user left visible
    ({"CUDA_VISIBLE_DEVICES": "1,7,2"}, ("1",)),             # 7 is no GPU here: CUDA stops there
])
def test_auto_with_nvml(monkeypatch, env, want):
    monkeypatch.setitem(sys.modules, "pynvml", _nvml(4))
    assert runtime_devices.nvml_count() == 4
    assert runtime_devices.visible(env) == want


def test_a_named_list_is_used_as_given_and_warns_without_a_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    got = runtime_devices.for_config(("0", "1"), 3, environ={})
    assert got.devices == ("0", "1") and got.k == 3
    assert got.warning == ("devices 0, 1: no GPU is visible here (no NVML, no CUDA_VISIBLE_DEVICES); "
                           "each run still gets its CUDA_VISIBLE_DEVICES")
    monkeypatch.setitem(sys.modules, "pynvml", _nvml(2))
    assert runtime_devices.for_config(("0", "1"), 3, environ={}).warning == ""
    assert runtime_devices.for_config(("0", "1", "2", "3"), 1, environ={}).warning == (
        "devices: GPU 2, 3 are not visible here (visible: 0, 1); runs there still get it as their CUDA_VISIBLE_DEVICES")
    got = runtime_devices.for_config(("1",), 1, environ={"CUDA_VISIBLE_DEVICES": "0"})
    assert got.devices == ("1",) and "GPU 1 is not visible here (visible: 0)" in got.warning
    assert runtime_devices.for_config(None, 3) is None


# -- placement ------------------------------------------------------------------------------------

D = ("0", "1", "2")


@pytest.mark.parametrize(("counts", "k", "parent", "free", "over", "want"), [
    # A fresh trial: the fewest runs, then the most free memory, then the list's order.
    ({}, 1, None, None, False, "0"),
    ({"0": 1}, 2, None, None, False, "1"),
    ({"0": 1, "1": 1}, 2, None, {"0": 9 * GB, "1": 5 * GB, "2": 1 * GB}, False, "2"),
    ({"0": 1, "1": 1, "2": 1}, 2, None, {"0": 5 * GB, "1": 9 * GB, "2": 1 * GB}, False, "1"),
    ({"0": 2, "1": 2, "2": 2}, 2, None, None, False, None),          # all full: the scheduler waits
    ({"0": 2, "1": 1, "2": 2}, 2, None, None, False, "1"),
    # A fork, clone or resume: its parent's device when that has room ...
    ({"0": 1, "1": 0, "2": 0}, 2, "0", None, False, "0"),
    ({"0": 1, "1": 0, "2": 0}, 2, "0", {"0": 1 * GB, "1": 9 * GB, "2": 9 * GB}, False, "0"),
    # ... else the most free memory (fewest runs when memory is unknown).
    ({"0": 2, "1": 1, "2": 0}, 2, "0", {"0": 9 * GB, "1": 7 * GB, "2": 3 * GB}, False, "1"),
    ({"0": 2, "1": 1, "2": 0}, 2, "0", None, False, "2"),
    ({"0": 2, "1": 1, "2": 0}, 2, "0", {"1": 7 * GB}, False, "2"),   # memory of some only: by count
    ({"0": 2, "1": 2, "2": 1}, 2, "9", None, False, "2"),              # a parent's device the study lost
    # Every device full: a start asked for by hand or by a decision still goes, to the best full one.
    ({"0": 2, "1": 2, "2": 2}, 2, "1", {"0": 2 * GB, "1": 1 * GB, "2": 6 * GB}, True, "2"),
    ({"0": 3, "1": 2, "2": 2}, 2, None, None, True, "1"),
])
def test_placement(counts, k, parent, free, over, want):
    assert place(D, counts, k, parent=parent, free=free, over=over) == want


def test_free_slots_count_per_device():
    assert free_slots(D, {}, 2) == 6
    assert free_slots(D, {"0": 3, "1": 1}, 2) == 3       # one over k on 0 takes no slot from the others
    assert place((), {}, 1) is None


# -- memory per device (a stand-in pynvml) ----------------------------------------------------------

class _Run:
    def __init__(self, device, pid=None, live=True):
        self.device, self.pid, self.live = device, pid, live


def _nvml_each(free_gb):
    """A stand-in NVML whose GPU i has free_gb[i] GB free of 80, and our own process on GPU 0."""
    import os

    def mem(h):
        return types.SimpleNamespace(used=(80 - free_gb[h]) * GB, free=free_gb[h] * GB, total=80 * GB)

    def procs(h):
        return [types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=3 * GB)] if h == 0 else []
    return types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: len(free_gb),
        nvmlDeviceGetHandleByIndex=lambda i: i if i < len(free_gb) else (_ for _ in ()).throw(ValueError(i)),
        nvmlDeviceGetMemoryInfo=mem, nvmlDeviceGetComputeRunningProcesses=procs)


def test_memory_per_device_sends_a_fork_from_a_full_device_to_the_most_free(monkeypatch):
    import os

    monkeypatch.setitem(sys.modules, "pynvml", _nvml_each([10, 30, 70]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    devices = runtime_devices.for_config(("0", "1", "2", "5"), 1)
    assert "GPU 5 is not visible here (visible: 0, 1, 2)" in devices.warning
    me = os.getpgid(os.getpid())
    runs = {1: _Run("0", me), 2: _Run("2"), 3: _Run("1", live=False)}
    memory = devices.memory(runs)
    assert set(memory) == {"0", "1", "2"}, "GPU 5 is none NVML knows: its memory is unknown"
    assert memory["0"].runs == 3 * GB and memory["1"].free == 30 * GB and memory["2"].runs is None
    # #1's device 0 is full (k 1): its fork goes where most memory is free among those with room.
    # GPU 5's memory is unknown, so by memory only where every device's is known: here by count.
    assert devices.choose(runs, parent="0") == "1"
    devices = runtime_devices.for_config(("0", "1", "2"), 2)
    assert devices.choose(runs, parent="0") == "0", "room on the parent's device (1 of k 2)"
    runs[4] = _Run("0")
    assert devices.choose(runs, parent="0") == "2", "70 GB free beats 30"
    assert devices.choose(runs) == "1", "a fresh trial: the fewest runs"
    assert [d.text() for d in devices.loads(runs)] == ["0:2/2 70.0/80G", "1:0/2 50.0/80G", "2:1/2 10.0/80G"]
    assert devices.loads(runs)[0].text(memory=False) == "0:2/2"
