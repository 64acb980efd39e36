"""Search-space files for the tests: a [study] table and the parameters many tests share, as TOML text.

Tests that are about the file format itself keep their TOML literal; the rest build their space
here, so that the common parameters (lr on a log scale, momentum on 1-β log, hidden, layers) are
written once. A keyword set to None leaves that key out.
"""

from __future__ import annotations

from typing import Any

import tomli_w

# The smallest [study] table a space needs, written out (line numbers in parse errors count from it).
HEAD = """
[study]
command = ["python", "train.py"]
objective = "val_loss"
"""


def _without_none(table: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if v is not None}


def space_toml(params: dict[str, dict[str, Any]], **study: Any) -> str:
    """A space file: [study] (command train.py, objective val_loss, and `study`), then `params` in order."""
    head = _without_none({"command": ["python", "train.py"], "objective": "val_loss", **study})
    return tomli_w.dumps({"study": head, "params": params})


def param(kind: str, **fields: Any) -> dict[str, Any]:
    """One [params.NAME] table of this type."""
    return _without_none({"type": kind, **fields})


def lr(**fields: Any) -> dict[str, Any]:
    """A learning rate: log scale on [1e-4, 1], default 1e-2."""
    return param("float", **{"scale": "log", "low": 1e-4, "high": 1.0, "default": 1e-2, **fields})


def momentum(**fields: Any) -> dict[str, Any]:
    """A momentum: one_minus_log scale on [0.9, 0.999], default 0.9, tier 2."""
    return param("float", **{"scale": "one_minus_log", "low": 0.9, "high": 0.999, "default": 0.9, "tier": 2,
                             **fields})


def hidden(**fields: Any) -> dict[str, Any]:
    """A width: int on [50, 100], tier 2."""
    return param("int", **{"low": 50, "high": 100, "tier": 2, **fields})


def layers(**fields: Any) -> dict[str, Any]:
    """A depth: a choice of 2, 3 or 4, tier 3."""
    return param("choice", **{"values": [2, 3, 4], "tier": 3, **fields})


def switch(**fields: Any) -> dict[str, Any]:
    """An on/off choice (true, false), tier 4."""
    return param("choice", **{"values": [True, False], "tier": 4, **fields})
