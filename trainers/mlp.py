"""An MLP classifier on scikit-learn's digits (8x8 images, 10 classes): the example tui-tuner trainer.

A run takes a few seconds on one CPU thread. It exposes the hyperparameters in their order of
priority (lr; momentum, hidden, batch_size; layers, lr_decay; optimizer, beta1, beta2, eps), reports
loss, val_loss and val_acc, applies live changes of lr/momentum/beta1/beta2/eps/weight_decay, and
checkpoints its full state on request so a fork continues exactly where its parent was.

    python trainers/mlp.py                              # standalone, defaults
    python trainers/mlp.py --lr 0.1 --optimizer adam --steps 500
    tui-tuner spaces/mlp.toml                           # tuned (the space's command runs this file)

momentum is SGD's; with --optimizer adam the first moment is beta1 (and momentum is ignored).
lr_decay follows lr = lr0 / (1 + lr_decay * epoch); a fork that changes it changes the whole schedule.
`sleep` (seconds per reported step) only slows a run down for demos.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

from tui_tuner import trainer, trainer_torch  # the public paths a training script imports

DEFAULTS = dict(
    lr=1e-2, momentum=0.9, hidden=64, batch_size=32, layers=2, lr_decay=0.0,
    optimizer="sgd", beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
    steps=1500, eval_every=50, report_every=10, seed=0, sleep=0.0,
)


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits data as (x in [0, 1], labels), read from the CSV that scikit-learn ships.

    Reading the file directly skips importing scikit-learn (about a second per run); load_digits is
    the fallback where the file is not where this expects it.
    """
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for root in locations:
        path = os.path.join(root, "datasets", "data", "digits.csv.gz")
        if os.path.exists(path):
            with gzip.open(path, "rt") as f:
                rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
            t = torch.tensor(rows)
            return t[:, :-1] / 16.0, t[:, -1].long()
    from sklearn.datasets import load_digits as sk_load

    d = sk_load()
    return torch.tensor(d.data, dtype=torch.float32) / 16.0, torch.tensor(d.target).long()


def split(x: torch.Tensor, y: torch.Tensor, val_fraction: float = 0.2):
    """A fixed train/validation split (the same for every run, whatever its seed)."""
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    n_val = int(len(x) * val_fraction)
    va, tr = perm[:n_val], perm[n_val:]
    return x[tr], y[tr], x[va], y[va]


def build_model(n_in: int, n_out: int, hidden: int, layers: int) -> torch.nn.Module:
    """`layers` linear layers (so layers - 1 hidden layers of `hidden` units) with ReLU between."""
    mods: list[torch.nn.Module] = []
    width = n_in
    for _ in range(layers - 1):
        mods += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    mods.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*mods)


def build_optimizer(hp, params) -> torch.optim.Optimizer:
    """SGD with momentum, or Adam with beta1/beta2/eps."""
    if hp.optimizer == "adam":
        return torch.optim.Adam(params, lr=hp.lr, betas=(hp.beta1, hp.beta2), eps=hp.eps,
                                weight_decay=hp.weight_decay)
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    raise SystemExit(f"mlp.py: --optimizer must be sgd or adam, got {hp.optimizer!r}")


def main() -> int:
    """Train, report, obey the tuner; return the exit status."""
    hp = trainer.params(DEFAULTS)
    torch.set_num_threads(1)   # parallel runs share few cores; one thread each is fastest overall
    torch.manual_seed(hp.seed)

    x_tr, y_tr, x_va, y_va = split(*load_digits())
    model = build_model(x_tr.shape[1], 10, hp.hidden, hp.layers)
    opt = build_optimizer(hp, model.parameters())
    # Read lr_decay at each epoch boundary, through hp, so a fork's value takes effect.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1.0 + hp.lr_decay * epoch))
    # Adam's first moment is beta1; "momentum" is SGD's and must not move Adam's beta1.
    names = {"momentum": None} if hp.optimizer == "adam" else None

    gen = torch.Generator().manual_seed(hp.seed)
    loader = {"perm": torch.randperm(len(x_tr), generator=gen), "pos": 0, "epoch": 0}
    try:
        start = trainer_torch.attach(model, opt, sched, extra=lambda: dict(loader), generators=[gen],
                                     names=names)
    except RuntimeError as e:   # e.g. a fork that changed hidden or layers: the weights do not fit
        print(f"mlp.py: cannot resume from {trainer.resume_path()}: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    loader.update(start.extra)

    @torch.no_grad()
    def evaluate() -> tuple[float, float]:
        logits = model(x_va)
        return F.cross_entropy(logits, y_va).item(), (logits.argmax(1) == y_va).float().mean().item()

    total, count = 0.0, 0
    step = start.step
    while step < trainer.max_steps(hp.steps):   # read each step: the tuner's "train longer" extends it
        step += 1
        bs = hp.batch_size
        if loader["pos"] + bs > len(x_tr):   # a new epoch: reshuffle, decay the lr
            loader.update(perm=torch.randperm(len(x_tr), generator=gen), pos=0, epoch=loader["epoch"] + 1)
            sched.step()
        idx = loader["perm"][loader["pos"]:loader["pos"] + bs]
        loader["pos"] += bs
        loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item()
        count += 1

        last = step == trainer.max_steps(hp.steps)
        if step % hp.report_every == 0 or last:
            metrics = {"loss": total / count}
            total, count = 0.0, 0
            diverged = not math.isfinite(metrics["loss"])
            if step % hp.eval_every == 0 or last or diverged:
                metrics["val_loss"], metrics["val_acc"] = evaluate()
            metrics["lr"] = opt.param_groups[0]["lr"]
            trainer.report(step, **metrics)
            trainer_torch.update(opt, sched, names=names)
            if diverged:
                print(f"mlp.py: loss is {metrics['loss']} at step {step}: diverged, stopping")
                break
            if trainer.should_stop():
                print(f"mlp.py: stopped at step {step}")
                break
            if hp.sleep > 0:
                time.sleep(hp.sleep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
