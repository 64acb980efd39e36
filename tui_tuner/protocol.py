"""`tui_tuner.protocol`, kept importable: the run-directory protocol lives in tui_tuner/trainer/protocol.py.

This name is the same module object, so what a script reads or patches here is the protocol itself.
"""

import sys

from tui_tuner.trainer import protocol as _protocol

sys.modules[__name__] = _protocol
