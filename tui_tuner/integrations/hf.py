"""Hugging Face `transformers.Trainer`: babysit `trainer.train()` with one callback.

```python
from tui_tuner import trainer
from tui_tuner.integrations import hf

hp = trainer.params(learning_rate=5e-4, weight_decay=0.0, max_steps=500)
args = TrainingArguments(output_dir=hf.output_dir("out"), learning_rate=hp.learning_rate, ...)
t = Trainer(model=model, args=args, ..., callbacks=[hf.TunerCallback()])
t.train(resume_from_checkpoint=hf.resume_from_checkpoint())   # a forked run resumes here
```

What the callback does, under the tuner (outside it, nothing):

- Metrics: `on_log` reports the logged numbers (loss, learning_rate, grad_norm, eval_* ...) with
  `state.global_step`. Commands are also checked after every optimizer step (`on_step_end`), so a
  pause or a change does not wait for the next log.
- Live changes go to the optimizer and LR scheduler the Trainer passes to its callbacks, through
  `trainer_torch.apply_changes` (the schedule continues from a new lr). Parameter names may be the
  TrainingArguments' own: learning_rate, weight_decay, adam_beta1, adam_beta2, adam_epsilon (and lr,
  momentum = β1, beta1, beta2, eps). A weight decay change reaches only the param groups the Trainer
  decays (not biases and norms).
- Pause blocks the loop; stop sets `control.should_training_stop`.
- A checkpoint request sets `control.should_save`: the Trainer writes its full checkpoint folder
  (model, optimizer, scheduler, RNG states, trainer state) at the end of that step, and the folder is
  reported as the checkpoint. A request that comes while paused lets the loop finish that save, then
  the pause holds again. A forked run calls `trainer.train(resume_from_checkpoint=...)`: the Trainer
  restores every state and skips the batches already trained; the callback then re-applies the params
  the fork changed (the parent's are saved in the folder as tui_tuner.json).

Keep `save_total_limit` unset (or large): rotating checkpoints may delete one a fork is about to load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from tui_tuner import trainer as api
from tui_tuner.integrations import lazy_callback
from tui_tuner.integrations import torch as trainer_torch
from tui_tuner.trainer import protocol as P

PARAMS_FILE = "tui_tuner.json"   # the run's params at save time, inside each checkpoint folder

# TrainingArguments' names for what the optimizer holds, on top of trainer_torch.NAMES.
HF_NAMES: dict[str, str | None] = {"adam_epsilon": "eps"}


def output_dir(default: str) -> str:
    """The Trainer's output_dir: the run's ckpt/ folder under the tuner, else `default`."""
    run = api.run_dir()
    return os.path.join(run, P.CKPT) if run else default


def resume_from_checkpoint() -> str | None:
    """The checkpoint folder a forked run resumes from, for ``trainer.train(resume_from_checkpoint=...)``."""
    return api.resume_path()


def _number(v: Any) -> float | int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    item = getattr(v, "item", None)
    if item is not None and getattr(v, "numel", lambda: 1)() == 1:
        return item()
    return None


class _Babysitter:
    """Reports a Hugging Face Trainer run to tui-tuner and obeys it (changes, pause, stop, checkpoint, fork).

    names: extra or switched-off parameter name -> optimizer key mappings (see trainer_torch.NAMES).
    """

    def __init__(self, *, names: Mapping[str, str | None] | None = None) -> None:
        self.names: dict[str, str | None] = {**HF_NAMES, **(names or {})}
        self._active = api.run_dir() is not None
        self._optimizer: Any = None
        self._scheduler: Any = None
        self._no_decay: set[int] = set()   # indexes of param groups the Trainer does not decay
        self._want_save = False

    # -- hooks -----------------------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Take the optimizer and scheduler; a forked run re-applies the params its fork changed."""
        if not self._active:
            return
        self._optimizer = kw.get("optimizer")
        sched = kw.get("lr_scheduler")
        self._scheduler = getattr(sched, "scheduler", sched)   # accelerate wraps it
        self._no_decay = _no_decay_groups(self._optimizer, kw.get("model"))
        api.on_checkpoint(self._request, deferred=True)
        resume = api.resume_path()
        parent = _read_params(resume) if resume else None
        if parent:
            now = api.params()
            self._apply({k: v for k, v in now.items() if k in parent and parent[k] != v})

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """After each optimizer step: apply commands (a pause blocks here)."""
        if self._active:
            api.poll()
            self._obey(control)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        """Report the logged numbers with the global step."""
        if not self._active or not logs:
            return
        metrics = {}
        for k, v in logs.items():
            x = _number(v)
            if x is not None:
                metrics[k] = x
        if metrics:
            api.report(state.global_step, **metrics)
            self._obey(control)

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Every checkpoint the Trainer writes holds the params; answer a pending request with its folder."""
        if not self._active:
            return
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR  # loaded already: we are in its loop

        # Absolute: an output_dir given relative to the working directory is not relative to the run dir.
        folder = os.path.abspath(os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"))
        if os.path.isdir(folder):
            with open(os.path.join(folder, PARAMS_FILE), "w") as f:
                json.dump(dict(api.params()), f, default=str)
        if self._want_save:
            self._want_save = False
            api.checkpoint_saved(folder, step=state.global_step)
            api.poll()   # a request that came while paused: the pause holds again now

    # -- internals -------------------------------------------------------------------------------------

    def _request(self, path: str) -> None:
        """The trainer API asks for a checkpoint: the Trainer writes it at the end of this step."""
        self._want_save = True

    def _obey(self, control: Any) -> None:
        self._apply(api.changes())
        if self._want_save:
            # Pending changes are already in the optimizer (just above), so the checkpoint holds them.
            control.should_save = True
        if api.should_stop():
            control.should_training_stop = True

    def _apply(self, changes: Mapping[str, Any]) -> None:
        if not changes or self._optimizer is None:
            return
        rest = dict(changes)
        wd = [k for k in rest if self.names.get(k, trainer_torch.NAMES.get(k)) == "weight_decay"]
        for k in wd:
            value = float(rest.pop(k))
            for i, group in enumerate(self._optimizer.param_groups):
                if i not in self._no_decay and "weight_decay" in group:
                    group["weight_decay"] = value
        if rest:
            trainer_torch.apply_changes(self._optimizer, rest, self._scheduler, names=self.names)


def _no_decay_groups(optimizer: Any, model: Any) -> set[int]:
    """Param groups holding no parameter the Trainer decays (its biases-and-norms group)."""
    if optimizer is None or model is None:
        return set()
    try:
        from transformers import Trainer

        # The Trainer's own rule (biases, LayerNorm and *norm weights); it uses no instance state.
        decay = set(Trainer.get_decay_parameter_names(None, model))
    except Exception:  # noqa: BLE001 - a newer Trainer: fall back to decaying every group
        return set()
    decayed = {id(p) for n, p in model.named_parameters() if n in decay}
    return {i for i, g in enumerate(optimizer.param_groups)
            if g["params"] and not any(id(p) in decayed for p in g["params"])}


def _read_params(folder: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(folder, PARAMS_FILE)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _base() -> type:
    """transformers' TrainerCallback (imported only now)."""
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise ImportError("tui_tuner.integrations.hf needs transformers and accelerate: "
                          "pip install 'tui-tuner[hf]'") from None
    return TrainerCallback


# TunerCallback is made on first use, so that importing this module imports no framework.
__getattr__ = lazy_callback(__name__, _Babysitter, _base)
