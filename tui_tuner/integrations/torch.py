"""PyTorch helpers for the trainer API: live optimizer changes, and full-state checkpoints for forks.

```python
from tui_tuner import trainer
from tui_tuner.integrations import torch as trainer_torch
hp = trainer.params(lr=1e-2, momentum=0.9, ...)
model, opt, sched = ...
start = trainer_torch.attach(model, opt, sched, extra=lambda: {"pos": pos}, generators=[g])
for step in range(start.step + 1, hp.steps + 1):
    ...
    trainer.report(step, loss=loss)
    trainer_torch.update(opt, sched)          # apply live lr/momentum/betas/eps/weight-decay changes
```

Live changes (`apply_changes`) set the hyperparameter in every param group. Parameter names map to
optimizer keys through `NAMES` (lr, learning_rate; momentum; beta1, beta2, betas; eps; weight_decay,
wd); pass ``names={"my_lr": "lr", "momentum": None}`` to add or switch off a mapping. ``momentum``
sets SGD's/RMSprop's momentum, or β1 for optimizers with ``betas`` (Adam, AdamW), unless the same
change also gives beta1 explicitly.

A new learning rate with an LR scheduler active: the group's lr becomes the new value *now*, and
every stored reference lr of the schedule (``base_lrs``, the group's ``initial_lr``, OneCycleLR's
``max_lr``/``min_lr``, CyclicLR's ``max_lrs``; inside SequentialLR/ChainedScheduler too) is scaled
by new/current, so the schedule continues from the new value with its shape intact:

- StepLR, MultiStepLR, ExponentialLR, MultiplicativeLR (chainable: they multiply the group's current
  lr): the new lr is used until the next decay point, then decays by gamma from there as before.
- LambdaLR (lr = base_lr * f(epoch)): base_lrs are scaled, so later lrs are new * f(e') / f(e).
- CosineAnnealingLR: the curve is rescaled the same way; eta_min stays where it was.
- ReduceLROnPlateau reads the group lr and just continues from the new value.
- If the current lr is 0 (e.g. the first warm-up step) the ratio is undefined: the new value becomes
  the reference lr itself.
- OneCycleLR/CyclicLR with cycle_momentum rewrite momentum every step, so a momentum change there
  lasts one step.

Checkpoints (`save_state`/`load_state`) hold the model, optimizer, scheduler, step, the RNG states
(python, numpy's global RNG when numpy is loaded, torch CPU, CUDA when initialised, and any
torch.Generator passed in `generators`), an `extra` dict (e.g. a data-loader position) and the
trainer's params. A fork with unchanged settings therefore continues the parent's curve exactly on
CPU (on a GPU, as exactly as its kernels are deterministic). Loading re-applies only the params that
differ from the checkpoint's (a fork's changes), since loading the optimizer restores the parent's
hyperparameters and a blanket re-apply would undo the schedule's decay.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tui_tuner import trainer
from tui_tuner.trainer import protocol

FORMAT = 1

# Parameter name -> optimizer hyperparameter.
NAMES: dict[str, str] = {
    "lr": "lr", "learning_rate": "lr",
    "momentum": "momentum",
    "beta1": "beta1", "adam_beta1": "beta1",
    "beta2": "beta2", "adam_beta2": "beta2",
    "betas": "betas",
    "eps": "eps", "adam_eps": "eps", "epsilon": "eps",
    "weight_decay": "weight_decay", "wd": "weight_decay",
}


@dataclass
class Resumed:
    """Where a run continues from: step 0 and empty extra for a fresh run."""

    step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] | None = None   # the parent's params when the checkpoint was taken
    path: str | None = None                # the checkpoint loaded, or None


# -- live changes -------------------------------------------------------------------------------------


def apply_changes(optimizer: torch.optim.Optimizer, changes: Mapping[str, Any],
                  scheduler: Any = None, *, names: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Apply live hyperparameter changes to every param group; return {name: value} of those applied.

    scheduler: the optimizer's LR scheduler, a list of them, or None.
    """
    mapping: dict[str, str | None] = dict(NAMES)
    if names:
        mapping.update(names)
    targets: dict[str, tuple[str, Any]] = {}
    for name, value in changes.items():
        key = mapping.get(name)
        if key is not None:
            targets[key] = (name, value)
    applied: dict[str, Any] = {}
    for gi, group in enumerate(optimizer.param_groups):
        for key, (name, value) in targets.items():
            if key == "lr":
                _set_lr(optimizer, gi, float(value), scheduler)
            elif key == "momentum":
                if "momentum" in group:
                    group["momentum"] = float(value)
                elif "betas" in group and "beta1" not in targets:
                    _set_beta(group, 0, value)
                else:
                    continue
            elif key in ("beta1", "beta2"):
                if "betas" not in group:
                    continue
                _set_beta(group, 0 if key == "beta1" else 1, value)
            elif key == "betas":
                if "betas" not in group:
                    continue
                group["betas"] = tuple(float(b) for b in value)
            elif key in group:
                group[key] = float(value)
            else:
                continue
            applied[name] = value
    return applied


def update(optimizer: torch.optim.Optimizer, scheduler: Any = None, *,
           names: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Apply trainer.changes() (the live changes since the last call) to the optimizer."""
    ch = trainer.changes()
    return apply_changes(optimizer, ch, scheduler, names=names) if ch else {}


def _set_beta(group: dict[str, Any], i: int, value: Any) -> None:
    betas = list(group["betas"])
    betas[i] = float(value)
    group["betas"] = tuple(betas)


def _schedulers(scheduler: Any) -> Iterable[Any]:
    """The scheduler and, for SequentialLR/ChainedScheduler, the ones inside it (or each of a list)."""
    if scheduler is None:
        return
    if isinstance(scheduler, (list, tuple)):   # several schedulers on one optimizer (e.g. Lightning's)
        for s in scheduler:
            yield from _schedulers(s)
        return
    yield scheduler
    for inner in getattr(scheduler, "_schedulers", None) or ():
        yield from _schedulers(inner)


def _set_lr(optimizer: torch.optim.Optimizer, gi: int, new: float, scheduler: Any) -> None:
    """Set group gi's lr now and rescale the schedule's reference lrs so it continues from there."""
    group = optimizer.param_groups[gi]
    old = float(group["lr"])

    def scaled(x: Any) -> Any:
        return x * (new / old) if old > 0 else new

    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(new)   # a tensor lr (capturable/compiled optimizers) must stay the same tensor
    else:
        group["lr"] = new
    for key in ("initial_lr", "max_lr", "min_lr"):
        if key in group:
            group[key] = scaled(group[key])
    for s in _schedulers(scheduler):
        for attr in ("base_lrs", "max_lrs"):
            lrs = getattr(s, attr, None)
            if isinstance(lrs, list) and gi < len(lrs):
                lrs[gi] = scaled(lrs[gi])
        last = getattr(s, "_last_lr", None)
        if isinstance(last, list) and gi < len(last):
            last[gi] = new


# -- state -------------------------------------------------------------------------------------------


def rng_state(generators: Sequence[torch.Generator] = ()) -> dict[str, Any]:
    """Every RNG state a training loop may draw from, in a form torch.load(weights_only=True) accepts."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "cuda": None,
        "numpy": None,
        "generators": [g.get_state() for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    np = sys.modules.get("numpy")
    if np is not None:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
    return state


def set_rng_state(state: Mapping[str, Any], generators: Sequence[torch.Generator] = ()) -> None:
    """Restore what rng_state returned."""
    py = state.get("python")
    if py is not None:
        random.setstate(_tuples(py))
    if state.get("torch") is not None:
        torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if state.get("numpy") is not None:
        import numpy as np  # only when the parent had it loaded

        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    saved = state.get("generators") or []
    if len(saved) != len(generators):
        raise ValueError(f"the checkpoint holds {len(saved)} generator state(s), "
                         f"but {len(generators)} generator(s) were given")
    for g, s in zip(generators, saved, strict=True):
        g.set_state(s)


def _tuples(x: Any) -> Any:
    """random.setstate needs tuples where serialisation may have produced lists."""
    if isinstance(x, (list, tuple)):
        return tuple(_tuples(v) for v in x)
    return x


def save_state(path: str | os.PathLike[str], model: torch.nn.Module,
               optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, *,
               step: int, extra: Mapping[str, Any] | None = None,
               generators: Sequence[torch.Generator] = (), params: Mapping[str, Any] | None = None) -> None:
    """Write the full training state to path atomically (a reader never sees half a checkpoint)."""
    state = {
        "format": FORMAT,
        "step": int(step),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "optimizer_class": type(optimizer).__name__ if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(generators),
        "extra": dict(extra or {}),
        "params": dict(params) if params is not None else None,
    }
    # The package's one atomic writer: an O_EXCL temp file beside it, private (0600) unless it
    # replaces a checkpoint with another mode.
    with protocol.atomic_file(path, mode=protocol.PRIVATE_FILE) as f:
        torch.save(state, f)


def load_state(path: str | os.PathLike[str], model: torch.nn.Module,
               optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, *,
               generators: Sequence[torch.Generator] = (), map_location: Any = "cpu",
               weights_only: bool = True) -> Resumed:
    """Restore what save_state wrote; return the step it was taken after, the extra dict and params.

    If the optimizer's class differs from the checkpoint's (a fork that switched optimizer), the
    optimizer and scheduler keep their fresh state and a warning goes to stderr. Tensors load on
    `map_location` and are copied to the model's and optimizer's own devices.
    """
    state = torch.load(os.fspath(path), map_location=map_location, weights_only=weights_only)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tui-tuner checkpoint (format {FORMAT})")
    model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        if state.get("optimizer_class") != type(optimizer).__name__:
            print(f"tui-tuner: {path}: optimizer changed from {state.get('optimizer_class')} to "
                  f"{type(optimizer).__name__}: starting it (and its scheduler) fresh", file=sys.stderr)
        else:
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state.get("rng") or {}, generators)
    return Resumed(step=int(state["step"]), extra=dict(state.get("extra") or {}),
                   params=state.get("params"), path=os.fspath(path))


def attach(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, *,
           extra: Callable[[], Mapping[str, Any]] | None = None, generators: Sequence[torch.Generator] = (),
           names: Mapping[str, str | None] | None = None, map_location: Any = "cpu") -> Resumed:
    """Connect a model to the trainer API: checkpoint on request, and resume a fork. Call after params().

    Registers a save function (the state after the latest reported step, with extra() and the
    generators), and if this run is a fork loads its checkpoint, then applies the params that differ
    from the parent's. Returns where to continue: train steps resumed.step + 1 onwards.
    """
    def save(path: str) -> None:
        # A set handled in the same report as this checkpoint (or while paused) is already in
        # params() but not yet in the optimizer: put it there first, or the checkpoint would pair the
        # new params with the old optimizer state and a fork would train with the old value.
        # apply_changes is idempotent, so the loop's later update() changes nothing more.
        pending = trainer.pending_changes()
        if pending and optimizer is not None:
            apply_changes(optimizer, pending, scheduler, names=names)
        save_state(path, model, optimizer, scheduler, step=trainer.last_step() or 0,
                   extra=extra() if extra is not None else None, generators=generators,
                   params=dict(trainer.params()))

    trainer.on_checkpoint(save)
    path = trainer.resume_path()
    if path is None:
        return Resumed()
    resumed = load_state(path, model, optimizer, scheduler, generators=generators, map_location=map_location)
    if optimizer is not None and resumed.params is not None:
        now = trainer.params()
        changed = {k: v for k, v in now.items() if k in resumed.params and resumed.params[k] != v}
        if changed:
            apply_changes(optimizer, changed, scheduler, names=names)
    return resumed
