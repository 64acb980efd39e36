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
TRAINER_SIDE = ["tui_tuner.trainer", "tui_tuner.trainer.settings", "tui_tuner.trainer.events",
                "tui_tuner.trainer.checkpoints", "tui_tuner.trainer.steps", "tui_tuner.trainer.control", "tui_tuner.trainer.protocol", "tui_tuner.trainer.tailing"]


def imported_after(module: str) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout)}


def test_core_and_runtime_never_import_textual():
    assert "tui_tuner.search.space" in NON_UI
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
    """pyproject's [tool.importlinter] contracts: cli > ui > runtime > pictures > study > search > launch >
    trainer > formatting/printable/errors, and a light trainer side. lint-imports reads the source, so an absent torch extra cannot fail it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_import_linter_catches_a_broken_layer(tmp_path):
    """The contract is not vacuous: a search module importing the runtime breaks it."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    copy = tmp_path / "repo"
    shutil.copytree(root / "tui_tuner", copy / "tui_tuner", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", copy / "pyproject.toml")
    with open(copy / "tui_tuner" / "search" / "space.py", "a") as f:
        f.write("\nfrom tui_tuner.runtime import scheduler  # noqa\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(copy)}
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()"], cwd=copy, capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "tui_tuner.search.space -> tui_tuner.runtime.scheduler" in out.stdout


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_anywhere_in_tui_tuner():
    """No two modules import each other, even only for type checking (a circle is a seam in the wrong place).

    Package __init__ modules are left out: importing a submodule imports its package."""
    import grimp

    graph = grimp.build_graph("tui_tuner")
    packages = {m for m in graph.modules if graph.find_children(m)}
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("tui_tuner") and i not in packages}
             for m in graph.modules if m not in packages}
    assert cycles(edges) == []


def test_the_circle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
