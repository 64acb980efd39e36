"""GPU memory and utilisation for the status line, through pynvml (nvidia-ml-py) when it is there.

Everything here is optional: no package, no driver or no GPU gives None, silently, and a probe that
fails once is not retried (a machine without NVIDIA hardware must not pay for it every second).
"""

from __future__ import annotations

from tui_tuner.runtime.gpu_memory import Nvml


class GpuProbe(Nvml):
    """Reads GPU 0's memory use and utilisation; `read()` is None when there is nothing to show."""

    def read(self) -> str | None:
        """'GPU 41% 12.3/80.0G' (one entry per GPU), or None without a visible NVIDIA GPU."""
        if not self._init():
            return None
        parts = []
        try:
            for i, h in enumerate(self._handles):
                mem = self._nvml.nvmlDeviceGetMemoryInfo(h)
                util = self._nvml.nvmlDeviceGetUtilizationRates(h)
                label = "GPU" if len(self._handles) == 1 else f"GPU{i}"
                parts.append(f"{label} {util.gpu}% {mem.used / 2**30:.1f}/{mem.total / 2**30:.0f}G")
        except Exception:  # noqa: BLE001 - a driver hiccup: show nothing this time
            return None
        return " ".join(parts)
