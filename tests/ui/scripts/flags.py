"""A zero-code trainer for the UI tests: knows nothing of tui-tuner, takes flags, prints its metrics."""

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--steps", type=int, default=100000)
args = parser.parse_args()
x = 4.0
for step in range(1, args.steps + 1):
    x *= 1.0 - min(args.lr, 0.5)
    print(f"step {step} loss {0.05 + x * x:.6f}", flush=True)
    time.sleep(0.01)
