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
TRAINER_SIDE = ["tui_tuner.trainer", "tui_tuner.trainer_settings", "tui_tuner.trainer_events",
                "tui_tuner.trainer_checkpoints", "tui_tuner.trainer_steps", "tui_tuner.trainer_control", "tui_tuner.protocol", "tui_tuner.tailing"]


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


def test_import_linter_contracts_hold():
    """pyproject's [tool.importlinter] contracts: ui > runtime > core > launch > protocol/errors, and a
    light trainer side. lint-imports reads the source, so an absent torch extra cannot fail it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_import_linter_catches_a_broken_layer(tmp_path):
    """The contract is not vacuous: a core module importing the runtime breaks it."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    copy = tmp_path / "repo"
    shutil.copytree(root / "tui_tuner", copy / "tui_tuner", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", copy / "pyproject.toml")
    with open(copy / "tui_tuner" / "core" / "space.py", "a") as f:
        f.write("\nfrom tui_tuner.runtime import scheduler  # noqa\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(copy)}
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()"], cwd=copy, capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "tui_tuner.core.space -> tui_tuner.runtime.scheduler" in out.stdout
