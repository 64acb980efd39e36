"""Importing an integration module imports no framework (nor the UI): only TunerCallback does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")   # trainer_torch, which the integrations build on


def test_the_integration_modules_import_no_framework_until_the_callback_is_used():
    code = ("import sys, json\n"
            "import tui_tuner.integrations.lightning as a, tui_tuner.integrations.hf as b\n"
            "a.ckpt_path(), b.resume_from_checkpoint(), b.output_dir('x')\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"lightning", "pytorch_lightning", "transformers", "accelerate", "textual", "rich"}


def test_without_the_framework_the_callback_says_which_extra_to_install():
    code = ("import sys\n"
            "sys.modules['lightning'] = sys.modules['pytorch_lightning'] = sys.modules['transformers'] = None\n"
            "from tui_tuner.integrations import hf, lightning\n"
            "for m in (lightning, hf):\n"
            "    try:\n"
            "        m.TunerCallback\n"
            "    except ImportError as e:\n"
            "        print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "tui_tuner.integrations.lightning needs PyTorch Lightning 2.x: pip install 'tui-tuner[lightning]'",
        "tui_tuner.integrations.hf needs transformers and accelerate: pip install 'tui-tuner[hf]'",
    ]
