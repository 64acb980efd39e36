"""The LCBench surrogate (YAHPO Gym), read fast enough to call once per trial process.

yahpo-gym is the authority on how a configuration becomes the ONNX model's input, but importing it
(pandas, ConfigSpace, scipy) costs 3 to 6 s of CPU on this box, once per trial. So the layout it uses
(input names, column order, task codes, output names, the surrogate's ranges) is read from yahpo-gym
once, written to a JSON file in the cache dir, and trials evaluate the same model.onnx with
onnxruntime alone (under 1 s to import). `check_against_yahpo` proves the two paths agree; the bench
runs it before every table.

Where things are:
- data: the folder that holds model.onnx (YAHPO's lcbench/): $LCBENCH_DATA, else shared/lcbench/ in
  the folder above the repository root (../shared/lcbench in CI) or above one of its parents.
- cache: $LCBENCH_CACHE, else $XDG_CACHE_HOME/tui-tuner/lcbench (default ~/.cache/...). yahpo-gym's
  own settings file goes there too ($YAHPO_LOCAL_CONFIG), not into ~/.config.

This module imports only the standard library at import time; numpy and onnxruntime load on use.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 52
OBJECTIVE = "val_accuracy"
# The surrogate's names of the hyperparameters (ours are the same except lr -> learning_rate).
HP_NAMES = ("batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units",
            "max_dropout")
INT_HPS = ("batch_size", "num_layers", "max_units")


class LcbenchError(Exception):
    """A setup problem (data or package missing) told as one line."""


def data_dir() -> Path:
    """The folder holding the surrogate's model.onnx: $LCBENCH_DATA, else shared/lcbench above the repo."""
    env = os.environ.get("LCBENCH_DATA")
    if env:
        path = Path(env).expanduser().resolve()
        if not (path / "model.onnx").is_file():
            raise LcbenchError(f"LCBENCH_DATA={env}: no model.onnx there (point it at YAHPO's lcbench/ folder)")
        return _named_lcbench(path)
    for base in REPO.parents:
        path = base / "shared" / "lcbench"
        if (path / "model.onnx").is_file():
            return _named_lcbench(path.resolve())
    raise LcbenchError(f"no shared/lcbench/model.onnx above {REPO}: set LCBENCH_DATA to YAHPO's lcbench/ folder")


def _named_lcbench(path: Path) -> Path:
    # yahpo-gym looks for <data_path>/lcbench/, so the folder must carry that name.
    if path.name != "lcbench":
        raise LcbenchError(f"{path}: yahpo-gym needs the surrogate's folder to be named lcbench/")
    return path


def cache_dir() -> Path:
    """Where references, the layout and yahpo-gym's settings are cached (created on demand)."""
    env = os.environ.get("LCBENCH_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "tui-tuner" / "lcbench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_digest(data: Path) -> str:
    """The first 16 hex digits of model.onnx's sha256: cache keys change when the model does."""
    return hashlib.sha256((data / "model.onnx").read_bytes()).hexdigest()[:16]


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a temp file renamed over the target), so a killed run leaves no half file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


# -- yahpo-gym (slow import) -----------------------------------------------------------------------


def yahpo_benchmark(data: Path, instance: str | None = None) -> Any:
    """A yahpo_gym BenchmarkSet on `data`, its settings file kept in the cache dir."""
    settings = cache_dir() / "yahpo_local_config.yaml"
    os.environ["YAHPO_LOCAL_CONFIG"] = str(settings)
    try:
        from yahpo_gym import benchmark_set, local_config
    except ImportError as e:
        raise LcbenchError(f"yahpo-gym is not installed ({e}): pip install -e '.[bench]'") from None
    local_config.settings_path = settings   # in case yahpo_gym was imported before the variable was set
    local_config.init_config()
    local_config.set_data_path(str(data.parent))   # also updates its cached settings, if any
    # BenchmarkSet prints its citations to stdout (they are in SOURCE.txt and the bench's docstring).
    with contextlib.redirect_stdout(io.StringIO()):
        return benchmark_set.BenchmarkSet("lcbench", instance=instance, check=False, multithread=False)


def layout_from_yahpo(data: Path) -> dict[str, Any]:
    """How yahpo-gym feeds the model: input names, column order, task codes, outputs, ranges."""
    b = yahpo_benchmark(data)
    cfg = b.config
    if list(cfg.cat_names) != ["OpenML_task_id"] or cfg.drop_predict:
        raise LcbenchError(f"unexpected yahpo-gym lcbench layout: cat_names={cfg.cat_names}")
    inputs = [i.name for i in b.session.get_inputs()]   # yahpo feeds x_cat first, x_cont second
    bounds = {}
    for name in HP_NAMES:
        hp = b.config_space.get_hyperparameter(name)
        bounds[name] = [hp.lower, hp.upper]
    import yahpo_gym

    return {
        "model": str(data / "model.onnx"), "digest": model_digest(data),
        "yahpo_gym": getattr(yahpo_gym, "__version__", "?"),
        "input_cat": inputs[0], "input_cont": inputs[1], "output": b.session.get_outputs()[0].name,
        "cont_names": list(cfg.cont_names), "y_names": list(cfg.y_names),
        "task_codes": dict(b.encoding["OpenML_task_id"]), "bounds": bounds,
        "tasks": [str(t) for t in b.instances],
    }


def layout_path(data: Path | None = None) -> Path:
    """The cached layout file for this model (built with yahpo-gym when missing)."""
    data = data or data_dir()
    path = cache_dir() / f"layout-{model_digest(data)}.json"
    if not path.is_file():
        write_json(path, layout_from_yahpo(data))
    return path


# -- the fast path ---------------------------------------------------------------------------------


class Surrogate:
    """Evaluates LCBench curves with onnxruntime alone, in the layout yahpo-gym uses."""

    def __init__(self, layout: Mapping[str, Any] | str | Path) -> None:
        if not isinstance(layout, Mapping):
            layout = json.loads(Path(layout).read_text())
        self.layout = dict(layout)
        try:
            import onnxruntime as rt
        except ImportError as e:
            raise LcbenchError(f"onnxruntime is not installed ({e}): pip install -e '.[bench]'") from None
        opts = rt.SessionOptions()
        # Two cores shared by everyone, trials two at a time: one thread each.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = rt.InferenceSession(self.layout["model"], sess_options=opts,
                                           providers=["CPUExecutionProvider"])
        self.tasks = list(self.layout["tasks"])

    def config(self, hp: Mapping[str, Any]) -> dict[str, float]:
        """Our parameter names to the surrogate's, clipped into the surrogate's ranges."""
        cfg = {name: hp[name] for name in HP_NAMES if name in hp}
        if "lr" in hp:
            cfg["learning_rate"] = hp["lr"]
        missing = [n for n in HP_NAMES if n not in cfg]
        if missing:
            raise LcbenchError(f"configuration lacks {', '.join(missing)}")
        out = {}
        for name in HP_NAMES:
            lo, hi = self.layout["bounds"][name]
            out[name] = min(max(float(cfg[name]), lo), hi)
        return out

    def evaluate(self, task: str, configs: Sequence[Mapping[str, Any]], epochs: Iterable[int]) -> Any:
        """All outputs for every (config, epoch), one batch: array [configs, epochs, outputs]."""
        import numpy as np

        task = str(task)
        code = self.layout["task_codes"].get(task)
        if code is None or task not in self.tasks:
            raise LcbenchError(f"unknown OpenML task {task} (LCBench has {', '.join(self.tasks)})")
        ep = np.asarray(list(epochs), dtype=np.float32)
        rows = [self.config(c) for c in configs]
        cols = self.layout["cont_names"]
        base = np.array([[r.get(n, 0.0) for n in cols] for r in rows], dtype=np.float32)
        x = np.repeat(base, len(ep), axis=0)
        x[:, cols.index("epoch")] = np.tile(ep, len(rows))
        cat = np.full((len(x), 1), code, dtype=np.int32)
        y = self.session.run([self.layout["output"]],
                             {self.layout["input_cat"]: cat, self.layout["input_cont"]: x})[0]
        return y.reshape(len(rows), len(ep), -1)

    def curves(self, task: str, hp: Mapping[str, Any], epochs: int = EPOCHS) -> dict[str, list[float]]:
        """One configuration's learning curve, epochs 1..epochs: output name -> values."""
        y = self.evaluate(task, [hp], range(1, epochs + 1))[0]
        return {name: [float(v) for v in y[:, i]] for i, name in enumerate(self.layout["y_names"])}

    def accuracy(self, task: str, configs: Sequence[Mapping[str, Any]], epoch: int = EPOCHS) -> Any:
        """Validation accuracy (percent) of each configuration at one epoch, as a numpy array."""
        y = self.evaluate(task, configs, [epoch])
        return y[:, 0, self.layout["y_names"].index(OBJECTIVE)]


def check_against_yahpo(surrogate: Surrogate, data: Path, configs: Sequence[Mapping[str, Any]],
                        tasks: Sequence[str], epochs: Sequence[int] = (1, 7, 26, EPOCHS)) -> float:
    """Largest difference between the fast path and yahpo-gym's objective_function; raises above 1e-3."""
    worst = 0.0
    bench = yahpo_benchmark(data)
    for task in tasks:
        bench.set_instance(str(task))
        fast = surrogate.evaluate(task, configs, epochs)
        slow = bench.objective_function([dict(surrogate.config(c), epoch=int(e))
                                         for c in configs for e in epochs])
        for k, res in enumerate(slow):
            row = fast[k // len(epochs), k % len(epochs)]
            for i, name in enumerate(surrogate.layout["y_names"]):
                worst = max(worst, abs(float(row[i]) - float(res[name])))
    if worst > 1e-3:
        raise LcbenchError(f"the fast surrogate path differs from yahpo-gym by {worst:.3g}: "
                           f"delete {cache_dir()}/layout-*.json and rerun")
    return worst
