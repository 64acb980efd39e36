"""Framework callbacks on top of the trainer API: one callback babysits a whole `fit()` or `train()`.

- `tui_tuner.integrations.lightning.TunerCallback` for PyTorch Lightning 2.x (``lightning`` or the
  ``pytorch_lightning`` import name), extra ``tui-tuner[lightning]``;
- `tui_tuner.integrations.hf.TunerCallback` for the Hugging Face `transformers.Trainer`, extra
  ``tui-tuner[hf]``.

Each reports the framework's metrics with its global step, applies live changes of lr, momentum, betas,
eps and weight decay to the optimizer (an LR scheduler continues from the new value), pauses, stops,
and answers checkpoint requests with the framework's own full checkpoint, so that a fork resumes
through the framework's own resume (``ckpt_path=`` / ``resume_from_checkpoint=``). Outside the tuner
the callbacks do nothing. Importing this package imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def lazy_callback(module: str, babysitter: type, base: Callable[[], type]) -> Callable[[str], Any]:
    """A module `__getattr__` that makes `TunerCallback` (the framework-free `babysitter` on the
    framework's callback class, which `base()` imports) on first use, so importing the module
    imports no framework."""
    import sys

    def __getattr__(name: str) -> Any:
        if name == "TunerCallback":
            cls = type("TunerCallback", (babysitter, base()),
                       {"__module__": module, "__qualname__": "TunerCallback", "__doc__": babysitter.__doc__})
            sys.modules[module].TunerCallback = cls
            return cls
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
