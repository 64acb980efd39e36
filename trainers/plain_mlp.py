"""A plain training script that knows nothing of tui-tuner: argparse flags in, printed metrics out.

The zero-code example: spaces/plain_mlp.toml passes its settings as flags and reads the metrics from
lines like ``step 500 | loss 0.2413 | val_loss 0.2510`` through [study.metrics] patterns. Pausing it
is SIGSTOP/SIGCONT of its process group; it cannot be adjusted live.

    python trainers/plain_mlp.py --lr 0.05 --hidden 80 --layers 3 --batch-size 64
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import math
import os
import sys

import torch
import torch.nn.functional as F


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The script's flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--hidden", type=int, default=64, help="units per hidden layer")
    p.add_argument("--layers", type=int, default=2, help="linear layers (layers - 1 hidden)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size")
    p.add_argument("--steps", type=int, default=1500, help="training steps")
    p.add_argument("--eval-every", type=int, default=50, help="steps between validation passes")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return p.parse_args(argv)


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits, from the CSV it ships (no scikit-learn import, no download)."""
    spec = importlib.util.find_spec("sklearn")
    for root in list(spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(root, "datasets", "data", "digits.csv.gz")
        if os.path.exists(path):
            with gzip.open(path, "rt") as f:
                t = torch.tensor([[float(v) for v in line.split(",")] for line in f if line.strip()])
            return t[:, :-1] / 16.0, t[:, -1].long()
    from sklearn.datasets import load_digits as sk_load

    d = sk_load()
    return torch.tensor(d.data, dtype=torch.float32) / 16.0, torch.tensor(d.target).long()


def main(argv: list[str] | None = None) -> int:
    """Train and print one line of metrics every 10 steps."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    x, y = load_digits()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    n_val = len(x) // 5
    x_va, y_va, x_tr, y_tr = x[perm[:n_val]], y[perm[:n_val]], x[perm[n_val:]], y[perm[n_val:]]

    mods: list[torch.nn.Module] = []
    width = x.shape[1]
    for _ in range(args.layers - 1):
        mods += [torch.nn.Linear(width, args.hidden), torch.nn.ReLU()]
        width = args.hidden
    model = torch.nn.Sequential(*mods, torch.nn.Linear(width, 10))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)

    total, count = 0.0, 0
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(x_tr), (args.batch_size,))
        loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item()
        count += 1
        if step % 10 == 0 or step == args.steps:
            line = f"step {step} | loss {total / count:.4f}"
            diverged = not math.isfinite(total)
            if step % args.eval_every == 0 or step == args.steps or diverged:
                with torch.no_grad():
                    line += f" | val_loss {F.cross_entropy(model(x_va), y_va).item():.4f}"
            print(line, flush=True)
            total, count = 0.0, 0
            if diverged:
                print(f"diverged at step {step}", file=sys.stderr)   # the nan val_loss tells the tuner
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
