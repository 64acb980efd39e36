"""GPU memory for auto-k through a stand-in pynvml: the device's used/free/total and what the study's own
process groups hold; silence without the package or a GPU."""

from __future__ import annotations

import os
import sys
import types

from tui_tuner.runtime.gpu_memory import GpuMemory

GB = 1e9


def fake_nvml(procs):
    mem = types.SimpleNamespace(used=30 * GB, free=50 * GB, total=80 * GB)
    return types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetMemoryInfo=lambda h: mem,
        nvmlDeviceGetComputeRunningProcesses=lambda h: procs)


def test_memory_of_the_runs_process_groups(monkeypatch):
    me = types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=4 * GB)        # in our group
    other = types.SimpleNamespace(pid=1, usedGpuMemory=20 * GB)              # init: another group
    gone = types.SimpleNamespace(pid=2**22 + 12345, usedGpuMemory=3 * GB)    # another namespace's pid
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([me, other, gone]))
    probe = GpuMemory()
    got = probe.read([os.getpgid(os.getpid())])
    assert (got.used, got.free, got.total, got.runs) == (30 * GB, 50 * GB, 80 * GB, 4 * GB)
    assert probe.read([]).runs is None           # none of ours on the GPU: per-run use unknown
    probe.close()


def test_no_package_or_no_driver_is_silence(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)          # not installed
    probe = GpuMemory()
    assert probe.read([1]) is None and probe.read([1]) is None

    def no_driver():
        raise RuntimeError("NVML Shared Library Not Found")
    monkeypatch.setitem(sys.modules, "pynvml", types.SimpleNamespace(nvmlInit=no_driver))
    assert GpuMemory().read([1]) is None
