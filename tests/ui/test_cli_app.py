"""Starting the app from the command line: errors exit before it starts; the back end needs no textual."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from ui_helpers import open_study, space_text

from tui_tuner import cli
from tui_tuner.ui.gpu import GpuProbe

TUI_TUNER = str(Path(sys.executable).with_name("tui-tuner"))


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([TUI_TUNER, *args], cwd=cwd, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_a_bad_space_file_is_one_line_before_the_app_starts(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[study]\ncommand = ["python", "t.py"]\nobjective = "loss"\n'
                   '[params.lr]\ntype = "float"\nscale = "log"\nlow = 0\nhigh = 1\n')
    out = run([str(bad)], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"tui-tuner: {bad}: params.lr: log scale needs low > 0, got low=0"]
    assert "\x1b[" not in out.stderr + out.stdout      # no terminal escape: the app never started
    assert not (tmp_path / "studies").exists()


def test_a_study_in_use_is_refused_with_its_holder(study_dir, tmp_path):
    study = open_study(study_dir, space_text())
    try:
        out = run(["--study", str(study_dir)], tmp_path)
        assert out.returncode == 2
        line = out.stderr.strip()
        assert line.startswith("tui-tuner: ") and "in use by pid" in line and "\n" not in line
    finally:
        study.close()


def test_tune_needs_a_space_or_a_study(capsys):
    assert cli.main(["tune"]) == 2
    assert "give a space file" in capsys.readouterr().err


def test_demo_uses_the_bundled_space(tmp_path, monkeypatch):
    root = cli.demo_root()
    assert (root / "spaces" / "mlp.toml").is_file() and (root / "trainers").is_dir()
    opened = {}

    def fake_run_app(study, *, cwd=None, gpu=True):
        opened.update(dir=study.dir, cwd=cwd, name=study.name)
        study.close()
        return 0

    import tui_tuner.ui.app as app_module

    monkeypatch.setattr(app_module, "run_app", fake_run_app)
    monkeypatch.chdir(tmp_path)
    if __import__("importlib").util.find_spec("torch") is None:
        pytest.skip("the demo needs torch")
    assert cli.main(["demo"]) == 0
    assert opened["cwd"] == str(root)                              # trainers/ resolves there
    assert opened["dir"] == Path("studies") / "mlp-digits"         # ./studies/<name> of the cwd
    assert (tmp_path / "studies" / "mlp-digits" / "study.db").exists()


def test_the_back_end_modules_do_not_import_textual():
    code = ("import sys, json, tui_tuner.ui.backend, tui_tuner.ui.model, tui_tuner.ui.format, "
            "tui_tuner.ui.gpu; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "textual" not in {m.split(".")[0] for m in json.loads(out.stdout)}


def test_gpu_line_from_nvml_and_silence_without_it(monkeypatch):
    mem = types.SimpleNamespace(used=3 * 2**30, total=80 * 2**30)
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetMemoryInfo=lambda h: mem,
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=41))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert GpuProbe().read() == "GPU 41% 3.0/80G"

    def no_driver():
        raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", types.SimpleNamespace(nvmlInit=no_driver))
    probe = GpuProbe()
    assert probe.read() is None and probe.read() is None        # silent, and not retried
    monkeypatch.setitem(sys.modules, "pynvml", None)             # not installed
    assert GpuProbe().read() is None
