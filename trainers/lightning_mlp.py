"""An MLP on scikit-learn's digits with PyTorch Lightning, babysat by tui-tuner through one callback.

The tuner-specific lines are the TunerCallback in the Trainer's callbacks and ckpt_path() in fit();
the rest is an ordinary Lightning script. A run takes seconds on one CPU thread.

    python trainers/lightning_mlp.py                       # standalone (the callback does nothing)
    python trainers/lightning_mlp.py --lr 0.1 --optimizer adam --max_steps 300
    tui-tuner spaces/lightning_mlp.toml                    # tuned

A fork with unchanged settings repeats its parent's curve exactly: the train loader below is
resumable (Lightning saves its position in the checkpoint), its order depends only on (seed, epoch),
and the callback saves and restores the RNG states that dropout draws from.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp import build_model, load_digits, split  # noqa: E402  (the raw-loop example's data and model)

from tui_tuner import trainer  # noqa: E402

try:
    import lightning.pytorch as L
except ImportError:  # the older import name
    import pytorch_lightning as L  # type: ignore[no-redef]

from tui_tuner.integrations.lightning import TunerCallback, ckpt_path  # noqa: E402

DEFAULTS = dict(
    lr=0.05, momentum=0.9, hidden=64, batch_size=32, layers=2, dropout=0.1, lr_decay=0.0,
    optimizer="sgd", beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
    max_steps=600, val_every=50, seed=0, sleep=0.0,
    step_every=0, step_gamma=0.7,   # step_every > 0: StepLR(step_every, step_gamma) each optimizer step instead
)


class ShuffledBatches:
    """Mini-batches of in-memory tensors, shuffled per epoch from (seed, epoch), resumable mid-epoch.

    Lightning saves state_dict() in its checkpoints and calls load_state_dict() before iterating
    again, so a resumed run goes on with the batch after the last one its parent trained.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.epoch = 0
        self.pos = 0   # batches of this epoch handed out

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __iter__(self):
        if self.pos >= len(self):   # the last epoch is used up: start the next one
            self.epoch, self.pos = self.epoch + 1, 0
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(len(self.x), generator=gen)
        while self.pos < len(self):
            idx = perm[self.pos * self.batch_size:(self.pos + 1) * self.batch_size]
            self.pos += 1
            yield self.x[idx], self.y[idx]

    def state_dict(self) -> dict[str, int]:
        """Where the data stands: the epoch and how many of its batches were handed out.

        A loader with a length is not read ahead by Lightning, so that is also how many trained.
        """
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a saved position."""
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])


class OneBatch:
    """The validation set as a single batch (an iterable Lightning reads as one loader)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.batch = (x, y)

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.batch


class Digits(L.LightningDataModule):
    """scikit-learn's digits, split 80/20 the same way for every run."""

    def __init__(self, batch_size: int, seed: int) -> None:
        super().__init__()
        x_tr, y_tr, x_va, y_va = split(*load_digits())
        self.train = ShuffledBatches(x_tr, y_tr, batch_size, seed)
        self.val = OneBatch(x_va, y_va)

    def train_dataloader(self) -> Any:
        return self.train

    def val_dataloader(self) -> Any:
        return self.val


class Classifier(L.LightningModule):
    """The MLP of trainers/mlp.py with dropout, trained with SGD (momentum) or Adam."""

    def __init__(self, hp: dict[str, Any]) -> None:
        super().__init__()
        self.hp = hp
        net = build_model(64, 10, hp["hidden"], hp["layers"])
        layers: list[torch.nn.Module] = []
        for m in net:   # dropout after each hidden activation
            layers.append(m)
            if isinstance(m, torch.nn.ReLU) and hp["dropout"] > 0:
                layers.append(torch.nn.Dropout(hp["dropout"]))
        self.net = torch.nn.Sequential(*layers)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("loss", loss)
        if self.hp["sleep"] > 0:
            time.sleep(self.hp["sleep"])
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> Any:
        hp = self.hp
        if hp["optimizer"] == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]),
                                   eps=hp["eps"], weight_decay=hp["weight_decay"])
        elif hp["optimizer"] == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                                  weight_decay=hp["weight_decay"])
        else:
            raise SystemExit(f"lightning_mlp.py: --optimizer must be sgd or adam, got {hp['optimizer']!r}")
        if hp["step_every"] > 0:
            step = torch.optim.lr_scheduler.StepLR(opt, step_size=hp["step_every"], gamma=hp["step_gamma"])
            return {"optimizer": opt, "lr_scheduler": {"scheduler": step, "interval": "step"}}
        decay = hp["lr_decay"]
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1.0 + decay * epoch))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def main() -> int:
    """Fit, under the tuner or standalone; return the exit status."""
    hp = trainer.params(DEFAULTS)
    torch.set_num_threads(1)   # parallel runs share few cores; one thread each is fastest overall
    warnings.filterwarnings("ignore", ".*(does not have many workers|is not resumable|LeafSpec).*")
    L.seed_everything(hp.seed, verbose=False)
    model, data = Classifier(dict(hp)), Digits(hp.batch_size, hp.seed)
    # Adam's first moment is beta1; "momentum" is SGD's and must not move Adam's beta1.
    names = {"momentum": None} if hp.optimizer == "adam" else None
    fit = L.Trainer(
        accelerator="cpu", devices=1, max_steps=hp.max_steps,
        val_check_interval=hp.val_every, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        deterministic=True, callbacks=[TunerCallback(names=names)],
    )
    fit.fit(model, data, ckpt_path=ckpt_path())
    m = {k: float(v) for k, v in fit.callback_metrics.items()}
    print(f"step {fit.global_step} | " + " | ".join(f"{k} {v:.6g}" for k, v in m.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
