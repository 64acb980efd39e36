"""A small character-level transformer on Python's own standard-library source: the GPU-sized example.

Nothing is downloaded: the text is the .py files next to the running interpreter's `os` module, read
as bytes (a 256-symbol vocabulary). The model is a GPT-style decoder (pre-norm blocks, causal
scaled-dot-product attention, tied embeddings) trained with AdamW, warm-up then cosine decay.
It reports loss, val_loss (bits are val_loss / ln 2), tok_per_s, and obeys the tuner like
trainers/mlp.py: live lr / momentum (AdamW's beta1) / beta2 / eps, checkpoints, forks.

    python trainers/charlm.py                               # cuda when available, else cpu
    python trainers/charlm.py --device cpu --d_model 64 --layers 1 --context 32 --batch_size 8 --steps 50
    tui-tuner spaces/charlm.toml                            # tuned (several runs share one GPU)

On a GPU it trains in bfloat16 autocast; `--compile true` adds torch.compile (slow to start).
"""

from __future__ import annotations

import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from tui_tuner import trainer, trainer_torch  # the public paths a training script imports

DEFAULTS = dict(
    lr=1e-3, momentum=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1,
    d_model=256, layers=4, context=128, batch_size=64, dropout=0.1,
    warmup=100, min_lr_frac=0.1, grad_clip=1.0,
    steps=3000, eval_every=100, report_every=10, eval_batches=8,
    seed=0, device="auto", threads=1, compile=False, corpus_mb=2.0,
)
HEAD_DIM = 64


def load_corpus(megabytes: float) -> torch.Tensor:
    """The standard library's top-level .py files, in name order, as one uint8 tensor."""
    root = os.path.dirname(os.__file__)
    limit = int(megabytes * 1e6)
    chunks, size = [], 0
    for name in sorted(os.listdir(root)):
        if not name.endswith(".py"):
            continue
        try:
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
        except OSError:
            continue
        chunks.append(data)
        size += len(data)
        if size >= limit:
            break
    text = b"".join(chunks)[:limit]
    if len(text) < 10_000:
        raise SystemExit(f"charlm.py: found only {len(text)} bytes of text under {root}")
    return torch.frombuffer(bytearray(text), dtype=torch.uint8)


class Block(nn.Module):
    """A pre-norm transformer block: causal self-attention and an MLP, each with a residual."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.mlp(self.ln2(x)))


class CharLM(nn.Module):
    """A GPT-style byte-level language model."""

    def __init__(self, d: int, layers: int, context: int, dropout: float) -> None:
        super().__init__()
        self.tok = nn.Embedding(256, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, max(1, d // HEAD_DIM), dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)
        for m in self.modules():   # GPT-2's small init: with tied embeddings, N(0, 1) logits start huge
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device)))
        for blk in self.blocks:
            x = blk(x)
        return self.ln(x) @ self.tok.weight.T   # tied input/output embeddings


def main() -> int:
    """Train, report, obey the tuner; return the exit status."""
    hp = trainer.params(DEFAULTS)
    device = hp.device if hp.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("charlm.py: --device cuda asked for, but torch sees no GPU", file=sys.stderr)
        return 2
    if hp.d_model % max(1, hp.d_model // HEAD_DIM):
        print(f"charlm.py: d_model {hp.d_model} must divide into {hp.d_model // HEAD_DIM} heads", file=sys.stderr)
        return 2
    torch.set_num_threads(hp.threads)
    torch.manual_seed(hp.seed)
    cuda = device.startswith("cuda")
    if cuda:
        torch.set_float32_matmul_precision("high")

    data = load_corpus(hp.corpus_mb)
    n_val = len(data) // 10
    train_data, val_data = data[:-n_val], data[-n_val:]
    offsets = torch.arange(hp.context + 1)

    def batch(src: torch.Tensor, gen: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Windows are drawn on the CPU with our own generator, so the data order is the same on any
        # device and is saved in checkpoints.
        ix = torch.randint(len(src) - hp.context - 1, (size,), generator=gen)
        w = src[ix[:, None] + offsets].long()
        if cuda:
            w = w.pin_memory().to(device, non_blocking=True)
        return w[:, :-1], w[:, 1:]

    model = CharLM(hp.d_model, hp.layers, hp.context, hp.dropout).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=hp.lr, betas=(hp.momentum, hp.beta2), eps=hp.eps, fused=cuda)

    def schedule(step: int) -> float:
        if step < hp.warmup:
            return (step + 1) / hp.warmup
        frac = min(1.0, (step - hp.warmup) / max(1, hp.steps - hp.warmup))
        return hp.min_lr_frac + (1 - hp.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    # weight_decay applies to the first group only, so the generic helper must not set it everywhere.
    names = {"weight_decay": None}
    gen = torch.Generator().manual_seed(hp.seed)
    try:
        start = trainer_torch.attach(model, opt, sched, generators=[gen], names=names)
    except RuntimeError as e:
        print(f"charlm.py: cannot resume from {trainer.resume_path()}: {str(e).splitlines()[0]}",
              file=sys.stderr)
        return 2
    opt.param_groups[0]["weight_decay"] = hp.weight_decay
    fwd = torch.compile(model) if hp.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)

    @torch.no_grad()
    def evaluate() -> float:
        model.eval()
        g = torch.Generator().manual_seed(12345)   # the same validation windows every time
        total = 0.0
        for _ in range(hp.eval_batches):
            x, y = batch(val_data, g, hp.batch_size)
            with autocast:
                total += F.cross_entropy(fwd(x).float().view(-1, 256), y.reshape(-1)).item()
        model.train()
        return total / hp.eval_batches

    total, count, t0, tokens = 0.0, 0, time.perf_counter(), 0
    loss_sum = torch.zeros((), device=device)
    step = start.step
    while step < trainer.max_steps(hp.steps):   # read each step: "train longer" extends it (at the final lr)
        step += 1
        x, y = batch(train_data, gen, hp.batch_size)
        with autocast:
            loss = F.cross_entropy(fwd(x).float().view(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if hp.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
        opt.step()
        sched.step()
        loss_sum += loss.detach()   # summed on the device: one sync per report, not per step
        count += 1
        tokens += x.numel()

        last = step == trainer.max_steps(hp.steps)
        if step % hp.report_every == 0 or last:
            total = loss_sum.item() / count
            loss_sum.zero_()
            now = time.perf_counter()
            metrics = {"loss": total, "lr": opt.param_groups[0]["lr"], "tok_per_s": tokens / (now - t0)}
            t0, tokens, count = now, 0, 0
            diverged = not math.isfinite(total)
            if step % hp.eval_every == 0 or last or diverged:
                metrics["val_loss"] = evaluate()
            trainer.report(step, **metrics)
            trainer_torch.update(opt, sched, names=names)
            if diverged:
                print(f"charlm.py: loss is {total} at step {step}: diverged, stopping")
                break
            if trainer.should_stop():
                print(f"charlm.py: stopped at step {step}")
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
