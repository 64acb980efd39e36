"""PyTorch Lightning 2.x: babysit `Trainer.fit` with one callback.

```python
from tui_tuner import trainer
from tui_tuner.integrations.lightning import TunerCallback, ckpt_path

hp = trainer.params(lr=1e-2, momentum=0.9, hidden=64, max_steps=1000)   # feeds the model and datamodule
pl_trainer = L.Trainer(max_steps=hp.max_steps, callbacks=[TunerCallback()])
pl_trainer.fit(model, datamodule, ckpt_path=ckpt_path())               # a forked run resumes here
```

What the callback does, under the tuner (outside it, nothing: the script runs as it always did):

- Metrics: what the module logs (`trainer.callback_metrics`) is reported with `trainer.global_step`:
  training metrics after each optimizer step (those whose value changed), validation metrics after
  each validation run, and the first optimizer's lr as ``lr`` (the lr that step used). Lightning
  computes callback_metrics anew at each read (tens of microseconds): when steps are so short that
  reading it every step would take more than READ_BUDGET of the training time, the training metrics
  are read every few steps instead (every step still reports its step and lr, and obeys commands).
- Live changes of lr, momentum, betas, eps and weight decay go to every optimizer's param groups
  before the next batch, through `trainer_torch.apply_changes`: an active LR scheduler continues from
  the new value.
- Pause blocks the training loop; stop sets `trainer.should_stop` (the fit ends after the batch).
- Logs: unless the script chose a folder (`default_root_dir`, or a logger of its own with another
  save_dir), Lightning's default logger and checkpoints go into the run directory
  (RUN_DIR/lightning_logs/version_0) instead of ./lightning_logs of wherever the tuner runs: each
  trial's logs sit with its other files.
- A checkpoint request is answered with `trainer.save_checkpoint(path)`: Lightning's full state
  (model, optimizers, schedulers, loops, stateful data loaders) plus, from this callback, the RNG
  states and the run's params. A forked run passes `ckpt_path()` to `fit`; the callback restores the
  RNG states when training starts and re-applies the params the fork changed.

Exactness of a fork: Lightning resumes a mid-epoch checkpoint at the right batch only when the train
loader is resumable (it has `state_dict`/`load_state_dict`, e.g. torchdata's StatefulDataLoader, or
the small loader in trainers/lightning_mlp.py); with a plain DataLoader it restarts the epoch's data
(and says so in a warning). A DataLoader without its own `generator=` draws its seed from the global
torch RNG each time an iterator is made (every epoch and every validation run), which a resumed run
does not repeat for the validation it skips at the fork step: give loaders a generator, or take forks
away from validation steps, for a child that repeats the parent's curve bit for bit. When the callback
can tell a fork will not continue exactly (a train loader without state that shuffles, or resumed
mid-epoch), it says so in the run's events (`trainer.inexact`), and the app marks the lineage
(`#3@120~`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

from tui_tuner import trainer as api
from tui_tuner import trainer_torch
from tui_tuner.integrations import lazy_callback

FORMAT = 1
READ_BUDGET = 0.005   # the share of training time that reading callback_metrics may take (CPU time)


def ckpt_path() -> str | None:
    """The checkpoint a forked run resumes from, for ``trainer.fit(..., ckpt_path=ckpt_path())``; else None."""
    return api.resume_path()


def _scalar(v: Any) -> float | None:
    """A logged value as a float, or None when it is not a single number."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    numel = getattr(v, "numel", None)
    if numel is not None and numel() == 1:
        return float(v.item())
    return None


class _Babysitter:
    """Reports a Lightning fit to tui-tuner and obeys it (live changes, pause, stop, checkpoint, fork).

    names: extra or switched-off parameter name -> optimizer key mappings (see trainer_torch.NAMES).
    lr_metric: the name the first optimizer's lr is reported under; None to leave it out.
    """

    def __init__(self, *, names: Mapping[str, str | None] | None = None, lr_metric: str | None = "lr") -> None:
        self.names = dict(names) if names else None
        self.lr_metric = lr_metric
        self._active = api.run_dir() is not None
        self._val_keys: set[str] = set()        # metrics logged by validation
        self._before_val: dict[str, float] = {}
        self._last: dict[str, float] = {}       # training metrics as last reported
        self._step = -1                         # the global step last reported
        self._next_read = 0.0                   # perf_counter time of the next callback_metrics read
        self._lr: float | None = None           # the lr the current batch trains with
        self._group0: dict[str, Any] | None = None   # the first optimizer's first param group
        self._resumed: dict[str, Any] | None = None
        self._trainer: Any = None
        self._born = time.time()                # logger files made after this are the fit's own

    # -- state in Lightning's checkpoint ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """RNG states and the run's params, saved with every checkpoint Lightning writes."""
        if not self._active:
            return {}
        return {"format": FORMAT, "rng": trainer_torch.rng_state(), "params": dict(api.params())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the parent's state until training starts (loading runs before the loops are set up)."""
        if self._active and state_dict.get("format") == FORMAT:
            self._resumed = state_dict

    # -- hooks -----------------------------------------------------------------------------------------

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Register the checkpoint function for this fit."""
        if self._active and stage == "fit":
            self._trainer = trainer
            api.on_checkpoint(self._save)
            _logs_into(trainer, api.run_dir(), self._born)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """A forked run: restore the parent's RNG states and apply the params the fork changed."""
        if not self._active:
            return
        self._find_group0(trainer)
        resumed, self._resumed = self._resumed, None
        if resumed is None:
            return
        # Now, not at load time: creating the data iterators in between draws from the global RNG.
        trainer_torch.set_rng_state(resumed.get("rng") or {})
        why = not_exact(trainer)
        if why:
            api.inexact(why)
        parent = resumed.get("params") or {}
        now = api.params()
        self._apply(trainer, {k: v for k, v in now.items() if k in parent and parent[k] != v})

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        """Apply live changes before the batch trains, and note the lr it trains with."""
        if not self._active:
            return
        changes = api.changes()
        if changes:
            self._apply(trainer, changes)
        if self._group0 is not None:
            self._lr = float(self._group0["lr"])

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Report this optimizer step's metrics; a pause blocks here; obey a stop."""
        step = trainer.global_step
        if not self._active or step == self._step:   # accumulating: no optimizer step taken
            return
        self._step = step
        metrics: dict[str, float] = {}
        now = time.perf_counter()
        if now >= self._next_read:
            # The read's CPU time, not its wall time: on a busy machine that would count others' work.
            cpu = time.thread_time()
            metrics = self._changed(trainer)
            self._next_read = now + (time.thread_time() - cpu) / READ_BUDGET
        if self.lr_metric and self._lr is not None and self.lr_metric not in metrics:
            metrics[self.lr_metric] = self._lr
        api.report(self._step, **metrics)
        self._apply(trainer, api.changes())
        if api.should_stop():
            trainer.should_stop = True

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        """Remember the metrics as they are, to tell which ones validation logs."""
        if self._active:
            self._before_val = self._floats(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Report what validation logged, at the current global step (not for the sanity check)."""
        if not self._active:
            return
        now = self._floats(trainer)
        self._val_keys.update(k for k, v in now.items() if self._before_val.get(k) != v)
        if trainer.sanity_checking or _fn(trainer) != "fit":
            return
        metrics = {k: now[k] for k in self._val_keys if k in now}
        if metrics:
            api.report(trainer.global_step, **metrics)
            self._apply(trainer, api.changes())
            if api.should_stop():
                trainer.should_stop = True

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Report the epoch-level training metrics Lightning computed after the last batch."""
        if self._active:
            metrics = self._changed(trainer)
            if metrics:
                api.report(trainer.global_step, **metrics)

    # -- internals -------------------------------------------------------------------------------------

    def _floats(self, trainer: Any) -> dict[str, float]:
        out = {}
        for k, v in trainer.callback_metrics.items():
            x = _scalar(v)
            if x is not None:
                out[k] = x
        return out

    def _changed(self, trainer: Any) -> dict[str, float]:
        """Training metrics whose value changed since they were last reported."""
        out = {}
        for k, x in self._floats(trainer).items():
            if k in self._val_keys or self._last.get(k) == x:
                continue
            self._last[k] = x
            out[k] = x
        return out

    def _apply(self, trainer: Any, changes: Mapping[str, Any]) -> None:
        """Put live changes into every optimizer, its schedulers continuing from the new values."""
        if not changes:
            return
        configs = list(getattr(trainer, "lr_scheduler_configs", None) or [])
        for opt in trainer.optimizers:
            scheds = [c.scheduler for c in configs if getattr(c.scheduler, "optimizer", None) is opt]
            trainer_torch.apply_changes(opt, changes, scheds, names=self.names)
        self._find_group0(trainer)

    def _find_group0(self, trainer: Any) -> None:
        opts = trainer.optimizers
        self._group0 = opts[0].param_groups[0] if opts and opts[0].param_groups else None
        if self._group0 is not None:
            self._lr = float(self._group0["lr"])

    def _save(self, path: str) -> None:
        """Answer a checkpoint request with Lightning's own full checkpoint."""
        # A set handled in the same report as this request is in params() but not yet in the
        # optimizers: put it there first, or a fork would pair the new params with the old lr.
        # apply_changes is idempotent, so applying it again at the next batch changes nothing.
        self._apply(self._trainer, api.pending_changes())
        self._trainer.save_checkpoint(path)


def _logs_into(trainer: Any, run_dir: str | None, since: float) -> None:
    """Point Lightning's log folder (and so its default checkpoint folder) into the run directory,
    unless the script chose one: a default_root_dir, or a logger whose folder is not the default.

    Lightning makes the default folder the current directory, so a folder equal to it counts as not
    chosen. By `setup` (the first hook with the trainer) Lightning has made each logger's version
    folder, and a TensorBoard writer its first file: those are closed and removed again (only what
    was made since `since`, when this callback was made), before ModelCheckpoint (whose setup runs
    after the other callbacks') resolves its folder from the logger's.
    """
    default = os.path.abspath(os.getcwd())
    if not run_dir or os.path.abspath(getattr(trainer, "_default_root_dir", "") or "") != default:
        return
    trainer._default_root_dir = run_dir
    for logger in getattr(trainer, "loggers", None) or []:
        # TensorBoardLogger and CSVLogger keep their folder in _root_dir (CSVLogger also in _save_dir).
        root = getattr(logger, "_root_dir", None)
        if root is None or os.path.abspath(os.fspath(root)) != default or not hasattr(logger, "_experiment"):
            continue
        made = getattr(logger, "log_dir", None)
        experiment = logger._experiment
        if experiment is not None and callable(getattr(experiment, "close", None)):
            experiment.close()
        logger._root_dir = run_dir
        if hasattr(logger, "_save_dir"):
            logger._save_dir = run_dir
        logger._version = None
        logger._experiment = None
        if made:
            _unmake(made, since)


def _unmake(folder: str, since: float) -> None:
    """Remove a logger's version folder made by this fit: its TensorBoard files written since `since`,
    then the folder and its parent (lightning_logs) if that left them empty."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return   # never made (a logger that writes nothing until it logs)
    for e in entries:
        # Only the writer's own first file: a folder of older runs keeps everything.
        if e.name.startswith("events.out.tfevents") and e.is_file() and e.stat().st_mtime >= since - 1:
            os.unlink(e.path)
    for d in (folder, os.path.dirname(folder)):
        try:
            os.rmdir(d)
        except OSError:
            return   # not empty: it holds other runs' logs, which stay


def not_exact(trainer: Any) -> str | None:
    """Why a resumed fit will not repeat its parent's batches, or None when it can (or cannot tell).

    A train loader with state (`state_dict`/`load_state_dict`) resumes where the parent was. Without
    one, a shuffling sampler draws another order than the parent would have, and a checkpoint taken
    mid-epoch restarts the epoch's data.
    """
    loaders = _flat(getattr(trainer, "train_dataloader", None))
    stateless = [d for d in loaders if not (hasattr(d, "state_dict") and hasattr(d, "load_state_dict"))]
    if not stateless:
        return None
    try:
        from torch.utils.data import RandomSampler, SubsetRandomSampler, WeightedRandomSampler
    except ImportError:  # pragma: no cover - Lightning needs torch
        return None
    shuffling = (RandomSampler, SubsetRandomSampler, WeightedRandomSampler)   # they keep no state
    for d in stateless:
        samplers = (getattr(d, "sampler", None), getattr(getattr(d, "batch_sampler", None), "sampler", None))
        if any(isinstance(s, shuffling) for s in samplers):
            return ("its train DataLoader shuffles with a sampler that has no state, so the fork trains on "
                    "another order of batches than its parent would have (a loader with state_dict/"
                    "load_state_dict, e.g. torchdata's StatefulDataLoader, resumes exactly)")
    per_epoch = getattr(trainer, "num_training_batches", None)
    accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1) or 1))
    if isinstance(per_epoch, (int, float)) and 0 < per_epoch < math.inf:
        steps = math.ceil(per_epoch / accumulate)
        if trainer.global_step % steps:
            return (f"forked mid-epoch (step {trainer.global_step}) from a train loader without state: "
                    f"Lightning restarts the epoch's data, so the fork sees other batches than its parent would have")
    return None


def _flat(loaders: Any) -> list[Any]:
    """The loaders of `trainer.train_dataloader`: one, or a list, tuple or dict of them."""
    if loaders is None:
        return []
    if isinstance(loaders, dict):
        return [d for v in loaders.values() for d in _flat(v)]
    if isinstance(loaders, (list, tuple)):
        return [d for v in loaders for d in _flat(v)]
    return [loaders]


def _fn(trainer: Any) -> str:
    """The trainer's current entry point: "fit", "validate", ... ."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return str(getattr(fn, "value", fn))


def _base() -> type:
    """The installed Lightning's Callback class (imported only now)."""
    try:
        from lightning.pytorch import Callback
    except ImportError:
        try:
            from pytorch_lightning import Callback  # only the older import name is installed
        except ImportError:
            raise ImportError("tui_tuner.integrations.lightning needs PyTorch Lightning 2.x: "
                              "pip install 'tui-tuner[lightning]'") from None
    return Callback


# TunerCallback is made on first use, so that importing this module imports no framework.
__getattr__ = lazy_callback(__name__, _Babysitter, _base)
