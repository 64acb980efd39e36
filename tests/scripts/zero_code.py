"""A training script that knows nothing of tui-tuner: flags in, printed metrics out.

It prints its argv (so tests can check values arrive intact) and one line per step in the format
chosen by --fmt, like common training scripts do.
"""

import argparse
import json
import sys
import time


def str2bool(s: str) -> bool:
    return s.lower() in ("1", "true", "yes")


p = argparse.ArgumentParser()
p.add_argument("--trainer.learning_rate", dest="lr", type=float, default=0.1)
p.add_argument("--opt", default="sgd")
p.add_argument("--steps", type=int, default=20)
p.add_argument("--delay", type=float, default=0.01)
p.add_argument("--fmt", default="llmc")
p.add_argument("--crash", type=int, default=0)
p.add_argument("--amp", nargs="?", const=True, default=False, type=str2bool)
args = p.parse_args()
print("ARGV " + json.dumps(sys.argv[1:]), flush=True)
x = 10.0
for step in range(1, args.steps + 1):
    x -= args.lr * x
    loss = x * x
    if args.fmt == "llmc":
        print(f"step {step} | loss {loss:.6f} | step time 13.24ms")
    elif args.fmt == "nanogpt":
        print(f"iter {step}: train loss {loss:.5f}")
    elif args.fmt == "mnist":
        print(f"Train Epoch:  1 [ {step * 64:5d}/ 50000 (89%)]\tLearning rate: {args.lr:.4f}\tLoss: {loss:.6f}")
    elif args.fmt == "wlm":
        print(f"| epoch   1 | {step:5d}/   29 batches | lr {args.lr:.2f} | ms/batch 32.44 | loss {loss:5.2f} | ppl {loss * 3:8.2f}")
    sys.stdout.flush()
    if args.crash and step == args.crash:
        print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr)
        sys.exit(1)
    time.sleep(args.delay)
