"""Framework callbacks on top of the trainer API: one callback babysits a whole `fit()` or `train()`.

- `tui_tuner.integrations.lightning.TunerCallback` for PyTorch Lightning 2.x (``lightning`` or the
  ``pytorch_lightning`` import name), extra ``tui-tuner[lightning]``;
- `tui_tuner.integrations.hf.TunerCallback` for the Hugging Face `transformers.Trainer`, extra
  ``tui-tuner[hf]``.

Each reports the framework's metrics with its global step, applies live changes of lr, momentum, betas,
eps and weight decay to the optimizer (an LR scheduler continues from the new value), pauses, stops,
and answers checkpoint requests with the framework's own full checkpoint, so that a fork resumes
through the framework's own resume (``ckpt_path=`` / ``resume_from_checkpoint=``). Outside the tuner
the callbacks do nothing. Importing this package imports no framework.
"""
