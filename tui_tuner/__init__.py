"""tui-tuner: keyboard-driven hyperparameter tuning for one GPU box, in a terminal."""

__version__ = "0.1.0"
