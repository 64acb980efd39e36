"""Shared by the callback tests: the events a run wrote, and a tiny module for either Lightning import name."""

from __future__ import annotations

import json
from typing import Any

from tui_tuner import protocol as P
from tui_tuner import trainer


def events(run: trainer.Run) -> list[dict]:
    """Every line the run wrote to its events.jsonl, after writing what it had queued."""
    run.flush()
    with open(run.run_dir + "/" + P.EVENTS) as f:
        return [json.loads(line) for line in f]


def tiny_module(base: Any, torch: Any) -> type:
    """A one-layer LightningModule on `base` (lightning.pytorch's or pytorch_lightning's), logging
    "loss", trained by SGD with momentum under a StepLR schedule."""

    class Tiny(base):
        def __init__(self, lr: float = 0.1) -> None:
            super().__init__()
            self.lr = lr
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            loss = self.layer(batch[0]).pow(2).mean()
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=100)}

    return Tiny
