"""Which GPUs a study's runs go to, and which one a run starts on: the `[study] devices` key and the
placement rule. Pure: no environment, no NVML (runtime/devices.py resolves "auto" and reads memory).

`devices = "auto"` (every visible GPU) or a list of GPU indices such as `[0, 1, 2, 3]`; each run gets
one of them as its `CUDA_VISIBLE_DEVICES`, and `parallel` (k) counts runs per device.

The placement rule (`place`): a fresh trial goes to the device with the fewest runs (ties: the most
free memory, then the list's order); a fork, a PBT clone or a resume (a trial with a parent) goes to
its parent's device when that one has room, else to the device with the most free memory (fewest
runs where memory is unknown). Room is fewer than k runs (k may be each device's own: auto-k). With no device having room, `place` says
None to a scheduler (it waits), and gives the best of the full ones to a start the user or a decision
asked for (as a fork today starts beyond `parallel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tui_tuner.formatting import quoted_value
from tui_tuner.search.space_params import Fail

AUTO = "auto"
ENV = "CUDA_VISIBLE_DEVICES"
# With this, GPU N in CUDA_VISIBLE_DEVICES is NVML's GPU N (PCI bus order; CUDA's default order is
# fastest first), so the memory the tuner reads for a device is the memory of the GPU its runs use.
ORDER_ENV = "CUDA_DEVICE_ORDER"
ORDER = "PCI_BUS_ID"


def check_devices(value: Any, env: Mapping[str, str], fail: Fail) -> tuple[str, ...] | str | None:
    """`[study] devices`: None (not set), "auto", or the listed GPU indices as the strings
    CUDA_VISIBLE_DEVICES takes ("0", "1"...). `env` is the space's [study.env], which may not set
    CUDA_VISIBLE_DEVICES beside it."""
    if value is None:
        return None
    if ENV in env:
        raise fail(f"study.env.{ENV}", "is set per run by [study] devices: keep one of them")
    if value == AUTO:
        return AUTO
    rule = 'must be "auto" or a non-empty list of GPU indices (integers >= 0) such as [0, 1]'
    if not isinstance(value, list) or not value:
        raise fail("study.devices", f"{rule}, got {quoted_value(value)}")
    seen: list[int] = []
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise fail("study.devices", f"{rule}, got {quoted_value(v)} in the list")
        if v in seen:
            raise fail("study.devices", f"lists GPU {v} twice")
        seen.append(v)
    return tuple(str(v) for v in seen)


K = int | Mapping[str, int]   # runs per device: one k for all, or each device's own


def k_of(k: K, device: str) -> int:
    """A device's k."""
    return k if isinstance(k, int) else k[device]


def place(devices: Sequence[str], counts: Mapping[str, int], k: K, *, parent: str | None = None,
          free: Mapping[str, float] | None = None, over: bool = False) -> str | None:
    """The device a run starts on (see the module's rule); None when none has room and not `over`.

    `counts`: live runs per device; `free`: free bytes per device (missing or None: unknown);
    `parent`: the parent's device for a fork, a clone or a resume (None for a fresh trial);
    `over`: a start that goes ahead even when every device holds k runs (the best full one).
    """
    if not devices:
        return None
    free = free or {}
    order = {d: i for i, d in enumerate(devices)}
    room = [d for d in devices if counts.get(d, 0) < k_of(k, d)]
    pool = room or (list(devices) if over else [])
    if not pool:
        return None
    if parent is not None and parent in room:
        return parent

    def mem(d: str) -> float:
        m = free.get(d)
        return float(m) if m is not None else float("-inf")

    known = all(free.get(d) is not None for d in pool)
    if parent is not None and known:
        return min(pool, key=lambda d: (-mem(d), counts.get(d, 0), order[d]))
    return min(pool, key=lambda d: (counts.get(d, 0), -mem(d), order[d]))


def free_slots(devices: Sequence[str], counts: Mapping[str, int], k: K) -> int:
    """Runs that may still start before every device holds its k."""
    return sum(max(0, k_of(k, d) - counts.get(d, 0)) for d in devices)
