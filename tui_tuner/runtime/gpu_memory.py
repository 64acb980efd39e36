"""GPU memory for auto-k, through nvidia-ml-py (`pynvml`, the optional `gpu` extra) when it is there.

The device's used, free and total memory, and what the study's own runs hold: NVML lists each
process on the GPU with its memory, and a process belongs to a run when its process group is the
run's (every run is its own process group, led by its launch shim). No package, no driver, no GPU:
`read` is None, silently, and a probe that failed once is not tried again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from tui_tuner.search.autok import Memory


class Nvml:
    """NVML opened once on first use (any failure: no GPU, and it is not tried again), and closed."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._dead = False

    def _init(self) -> bool:
        if self._dead:
            return False
        if self._nvml is not None:
            return True
        try:
            import pynvml  # optional: nvidia-ml-py

            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            if not self._handles:
                raise RuntimeError("no GPU")
            self._nvml = pynvml
            return True
        except Exception:  # noqa: BLE001 - any failure means "no GPU to measure or show"
            self._dead = True
            return False

    def close(self) -> None:
        """Release NVML (idempotent)."""
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down is best effort
                pass
            self._nvml = None


class GpuMemory(Nvml):
    """Reads GPU memory (summed over the visible GPUs) and the part the given process groups hold."""

    def read(self, groups: Iterable[int]) -> Memory | None:
        """The memory now; `runs` is what processes in `groups` hold (None when NVML names none of them)."""
        if not self._init():
            return None
        groups = set(groups)
        used = free = total = 0.0
        ours: float | None = None
        try:
            for h in self._handles:
                mem = self._nvml.nvmlDeviceGetMemoryInfo(h)
                used, free, total = used + mem.used, free + mem.free, total + mem.total
                for proc in self._nvml.nvmlDeviceGetComputeRunningProcesses(h):
                    held = getattr(proc, "usedGpuMemory", None)
                    if held and _group(proc.pid) in groups:
                        ours = (ours or 0.0) + float(held)
        except Exception:  # noqa: BLE001 - a driver hiccup: no measurement this time
            return None
        return Memory(used=used, free=free, total=total, runs=ours)

    def read_each(self, devices: Iterable[str], groups: Mapping[str, Iterable[int]]) -> dict[str, Memory]:
        """Each device's memory ({} without NVML): a device is NVML's index ("1", the runs being started
        in PCI bus order) or a GPU's UUID; `runs` is what the process groups given for it hold there."""
        if not self._init():
            return {}
        out: dict[str, Memory] = {}
        for d in devices:
            try:
                h = (self._nvml.nvmlDeviceGetHandleByIndex(int(d)) if d.isdigit()
                     else self._nvml.nvmlDeviceGetHandleByUUID(d))
                mem = self._nvml.nvmlDeviceGetMemoryInfo(h)
                ours: float | None = None
                mine = set(groups.get(d, ()))
                for proc in self._nvml.nvmlDeviceGetComputeRunningProcesses(h):
                    held = getattr(proc, "usedGpuMemory", None)
                    if held and _group(proc.pid) in mine:
                        ours = (ours or 0.0) + float(held)
            except Exception:  # noqa: BLE001 - not a GPU NVML knows, or a hiccup: unknown this time
                continue
            out[d] = Memory(used=float(mem.used), free=float(mem.free), total=float(mem.total), runs=ours)
        return out


def _group(pid: int) -> int | None:
    """A process's group, or None when it is not ours to see (gone, or another PID namespace's)."""
    try:
        return os.getpgid(int(pid))
    except (OSError, ValueError, TypeError):
        return None
