"""The layering rules hold: nothing outside tui_tuner/ui imports textual; the trainer side stays light."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import tui_tuner

NON_UI = sorted(
    m.name for m in pkgutil.walk_packages(tui_tuner.__path__, "tui_tuner.")
    if not m.name.startswith("tui_tuner.ui") and m.name not in ("tui_tuner.__main__", "tui_tuner.cli")
)
# Imported INSIDE the user's training process: neither the UI nor numpy nor torch may come along.
TRAINER_SIDE = ["tui_tuner.trainer", "tui_tuner.protocol"]


def imported_after(module: str) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout)}


def test_core_and_runtime_never_import_textual():
    assert "tui_tuner.core.space" in NON_UI
    code = (
        "import sys, json, importlib\n"
        f"for m in {NON_UI!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert "textual" not in loaded
    assert "rich" not in loaded


def test_trainer_side_imports_neither_textual_numpy_nor_torch():
    for module in TRAINER_SIDE:
        assert module in NON_UI
        loaded = imported_after(module)
        assert not loaded & {"textual", "numpy", "torch", "rich"}, module
