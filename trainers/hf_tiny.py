"""A tiny BERT, built from a config with random weights, classifying scikit-learn's digits with the
Hugging Face Trainer, babysat by tui-tuner through one callback. Nothing is downloaded.

Each 8x8 digit is read as a sequence of 64 tokens (its pixel intensities, 0..16), so the model is a
one-layer transformer encoder with a 17-token vocabulary; a run takes seconds on one CPU thread.
The tuner-specific lines are hf.TunerCallback() in the callbacks, hf.output_dir() and
hf.resume_from_checkpoint(); the rest is an ordinary Trainer script.

    python trainers/hf_tiny.py                              # standalone (the callback does nothing)
    python trainers/hf_tiny.py --learning_rate 0.003 --max_steps 200
    tui-tuner spaces/hf_tiny.toml                           # tuned
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

# Never reach for the hub: the model is built from a config, the data ships with scikit-learn.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp import load_digits, split  # noqa: E402  (the raw-loop example's data)

from tui_tuner import trainer  # noqa: E402
from tui_tuner.integrations import hf  # noqa: E402

DEFAULTS = dict(
    learning_rate=2e-3, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
    hidden=32, layers=1, heads=2, dropout=0.1, batch_size=32, lr_scheduler="constant", warmup_steps=0,
    max_steps=300, eval_every=50, log_every=10, seed=0, sleep=0.0,
)


class Digits(torch.utils.data.Dataset):
    """Digits as token sequences: input_ids are the 64 pixel intensities (0..16), labels the digit."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.ids = (x * 16).round().long()
        self.labels = y

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


class Pace(TrainerCallback):
    """Sleep after each step: slows a demo run down enough to babysit it by hand."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        time.sleep(self.seconds)


def main() -> int:
    """Train, under the tuner or standalone; return the exit status."""
    hp = trainer.params(DEFAULTS)
    torch.set_num_threads(1)   # parallel runs share few cores; one thread each is fastest overall
    hf_logging.set_verbosity_error()
    x_tr, y_tr, x_va, y_va = split(*load_digits())
    config = BertConfig(
        vocab_size=17, hidden_size=hp.hidden, num_hidden_layers=hp.layers, num_attention_heads=hp.heads,
        intermediate_size=2 * hp.hidden, max_position_embeddings=64, type_vocab_size=1, num_labels=10,
        hidden_dropout_prob=hp.dropout, attention_probs_dropout_prob=hp.dropout,
    )
    torch.manual_seed(hp.seed)
    model = BertForSequenceClassification(config)   # random init: never from_pretrained
    args = TrainingArguments(
        output_dir=hf.output_dir(os.path.join(tempfile.gettempdir(), "tui-tuner-hf_tiny")),
        learning_rate=hp.learning_rate, weight_decay=hp.weight_decay, adam_beta1=hp.adam_beta1,
        adam_beta2=hp.adam_beta2, adam_epsilon=hp.adam_epsilon, optim="adamw_torch",
        lr_scheduler_type=hp.lr_scheduler, warmup_steps=hp.warmup_steps,
        per_device_train_batch_size=hp.batch_size, per_device_eval_batch_size=512, max_steps=hp.max_steps,
        eval_strategy="steps", eval_steps=hp.eval_every, logging_steps=hp.log_every,
        save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, seed=hp.seed,
        full_determinism=True, dataloader_num_workers=0,
    )
    callbacks: list[TrainerCallback] = [hf.TunerCallback()]
    if hp.sleep > 0:
        callbacks.append(Pace(hp.sleep))
    t = Trainer(model=model, args=args, train_dataset=Digits(x_tr, y_tr), eval_dataset=Digits(x_va, y_va),
                callbacks=callbacks)
    t.train(resume_from_checkpoint=hf.resume_from_checkpoint())   # the Trainer prints its logs
    return 0


if __name__ == "__main__":
    sys.exit(main())
