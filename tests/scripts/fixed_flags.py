"""A zero-code training script, as public ones are: fixed flags it cannot run without, a data file
read from its working directory, an environment variable, and one line per batch.

    python fixed_flags.py --epochs 3 --data data.txt --lr 0.1 [--batch 16]

Its numbers depend on every one of those (and on nothing else), so a rerun that gets one wrong prints
other numbers. It also prints the interpreter, directory and note it ran with.
"""

import argparse
import os
import random
import sys

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, required=True)
p.add_argument("--data", required=True)
p.add_argument("--lr", type=float, required=True)
p.add_argument("--batch", type=int, default=16)
args = p.parse_args()
scale = float(os.environ["LOSS_SCALE"])
with open(args.data) as f:
    rng = random.Random(f.read())
print(f"python {sys.executable}")
print(f"cwd {os.getcwd()}")
print(f"note {os.environ.get('RUN_NOTE', '-')}")
x, samples = 1.0, 0
for _epoch in range(args.epochs):
    for _batch in range(64 // args.batch):
        samples += args.batch
        x = x * (1 - args.lr) + rng.random() * 0.01
        print(f"samples {samples}: loss {x * scale:.12f}")
print(f"val_loss {x * scale:.12f}")
