"""`tui_tuner.trainer_torch`, kept importable: the PyTorch helpers live in tui_tuner/integrations/torch.py.

This name is the same module object, so what a script reads or patches here is the helpers' own.
"""

import sys

from tui_tuner.integrations import torch as _torch_helpers

sys.modules[__name__] = _torch_helpers
