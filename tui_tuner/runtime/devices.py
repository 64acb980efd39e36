"""The GPUs of the box, carried out: "auto" resolved, each run's device chosen and counted, memory per device.

The rule is the core's (search/devices.py). `Devices` belongs to the runner: `runner.start` asks it
where a trial goes (`choose`), the run keeps its device (params.json's "device", read back on
re-adoption, so a run re-adopted on device 2 occupies device 2), and the scheduler asks it how many
more runs fit (`free_slots`) at k runs per device. Memory comes from NVML per device where
nvidia-ml-py is installed; without it placement goes by the count of runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_tuner.runtime.gpu_memory import GpuMemory
from tui_tuner.runtime.process import DEVICE_KEY
from tui_tuner.search import devices as rule
from tui_tuner.search.autok import GB, Memory
from tui_tuner.trainer import protocol

MEMORY_EVERY = 2.0        # seconds a memory reading is reused (placement and the status line)


def nvml_count() -> int | None:
    """GPUs NVML sees (None: no nvidia-ml-py, no driver or no GPU)."""
    try:
        import pynvml  # optional: nvidia-ml-py

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount()) or None
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - any failure means "NVML shows no GPU"
        return None


def visible(environ: Mapping[str, str] | None = None, count: int | None = -1) -> tuple[str, ...]:
    """Every visible GPU, for `devices = "auto"`: NVML's GPUs where nvidia-ml-py is installed, narrowed to
    CUDA_VISIBLE_DEVICES when that is set (a GPU the user hid from the tuner gets no run); without
    NVML, CUDA_VISIBLE_DEVICES's entries; neither: none. `count` stands in for NVML's (-1: ask it)."""
    environ = os.environ if environ is None else environ
    count = nvml_count() if count == -1 else count
    listed = environ.get(rule.ENV)
    if listed is None:
        return tuple(str(i) for i in range(count or 0))
    out: list[str] = []
    for entry in (e.strip() for e in listed.split(",")):
        # As CUDA reads it: the list ends at the first entry that names no GPU ("", "-1").
        if not entry or entry.startswith("-"):
            break
        if entry.isdigit() and count is not None and int(entry) >= count:
            break
        if entry not in out:
            out.append(entry)
    return tuple(out)


@dataclass(frozen=True)
class DeviceLoad:
    """One device as the status line shows it: its runs, its k and its memory (None: unknown)."""

    device: str
    runs: int
    k: int
    memory: Memory | None = None

    def text(self, memory: bool = True) -> str:
        """'0:2/2 5.3/80G' (device:runs/k, then used/total memory where known and asked for)."""
        out = f"{self.device}:{self.runs}/{self.k}"
        if memory and self.memory is not None:
            out += f" {self.memory.used / GB:.1f}/{self.memory.total / GB:.0f}G"
        return out


class Devices:
    """The study's devices, k runs each; where each run is and where the next one goes."""

    def __init__(self, devices: Iterable[str], k: int = 1, probe: GpuMemory | None = None,
                 warning: str = "") -> None:
        self.devices = tuple(devices)
        self.k = max(1, int(k))         # runs per device ...
        self.ks: dict[str, int] = {}     # ... unless auto-k chose a device's own (runtime/autok_devices.py)
        self.probe = probe if probe is not None else GpuMemory()
        self.warning = warning          # said once by the session (a named list on a box without GPUs)
        self._lock = threading.Lock()
        self._memory: dict[str, Memory] = {}
        self._read_at = float("-inf")

    def __len__(self) -> int:
        return len(self.devices)

    # -- where runs are -----------------------------------------------------------------------------

    def counts(self, runs: Mapping[int, Any]) -> dict[str, int]:
        """Live runs per device (a run on a device the study no longer lists is counted, not placed on)."""
        out = dict.fromkeys(self.devices, 0)
        for run in list(runs.values()):   # a copy: the view thread asks while the command thread starts runs
            d = getattr(run, "device", None)
            if run.live and d is not None:
                out[d] = out.get(d, 0) + 1
        return out

    def k_of(self, device: str) -> int:
        """A device's k: its own where auto-k chose one, else the study's."""
        return self.ks.get(device, self.k)

    def each_k(self) -> dict[str, int]:
        """Every device's k."""
        return {d: self.k_of(d) for d in self.devices}

    def free_slots(self, runs: Mapping[int, Any]) -> int:
        """Runs that may still start before every device holds its k."""
        return rule.free_slots(self.devices, self.counts(runs), self.each_k())

    def choose(self, runs: Mapping[int, Any], parent: str | None = None, *, over: bool = True) -> str | None:
        """The device the next run goes to (search/devices.py's rule); None when all are full and not `over`."""
        free = {d: m.free for d, m in self.memory(runs).items()}
        return rule.place(self.devices, self.counts(runs), self.each_k(), parent=parent, free=free, over=over)

    # -- memory -------------------------------------------------------------------------------------

    def memory(self, runs: Mapping[int, Any]) -> dict[str, Memory]:
        """Each device's memory now (at most every MEMORY_EVERY seconds read again); {} without NVML.
        A device's `runs` is what the study's runs on it hold."""
        now = time.monotonic()
        with self._lock:
            if now - self._read_at < MEMORY_EVERY:
                return dict(self._memory)
            self._read_at = now
        groups: dict[str, list[int]] = {}
        for run in list(runs.values()):
            d, pid = getattr(run, "device", None), getattr(run, "pid", None)
            if run.live and d is not None and pid:
                groups.setdefault(d, []).append(pid)
        try:
            read = self.probe.read_each(self.devices, groups)
        except Exception:  # noqa: BLE001 - a driver hiccup: placement goes by counts this time
            read = {}
        with self._lock:
            self._memory = read
            return dict(read)

    def loads(self, runs: Mapping[int, Any]) -> list[DeviceLoad]:
        """Every device's runs, k and memory, for the status line."""
        counts, memory = self.counts(runs), self.memory(runs)
        return [DeviceLoad(d, counts.get(d, 0), self.k_of(d), memory.get(d)) for d in self.devices]


def for_config(devices: tuple[str, ...] | str | None, k: int, probe: GpuMemory | None = None,
               environ: Mapping[str, str] | None = None, count: int | None = -1) -> Devices | None:
    """The study's devices, or None when it names none (or "auto" finds no GPU): runs then get no
    CUDA_VISIBLE_DEVICES, as before. A named list is used as given; where no GPU is visible its
    `warning` says so (the tests run on CPU this way)."""
    if devices is None:
        return None
    if devices == rule.AUTO:
        found = visible(environ, count)
        return Devices(found, k, probe) if found else None
    seen = visible(environ, count)
    missing = [d for d in devices if d not in seen]
    if not seen:
        warning = (f"devices {', '.join(devices)}: no GPU is visible here (no NVML, no {rule.ENV}); "
                   f"each run still gets its {rule.ENV}")
    elif missing:
        warning = (f"devices: GPU {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not visible here "
                   f"(visible: {', '.join(seen)}); runs there still get it as their {rule.ENV}")
    else:
        warning = ""
    return Devices(devices, k, probe, warning)


def device_of(run_dir: Path) -> str | None:
    """The device a run was given, from its params.json (None: none, or no readable file)."""
    doc = protocol.read_json(run_dir / protocol.PARAMS)
    d = doc.get(DEVICE_KEY) if isinstance(doc, dict) else None
    return d if isinstance(d, str) and d else None
