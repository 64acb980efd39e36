"""Search spaces: a Space (the [study] settings and the parameters in priority order), read from a file.

Loading validates the whole file: the [params.NAME] tables (search/space_params.py, into Params of
search/param.py) and the [study] table (search/config.py); every problem is one SpaceError line
naming the file, the key and the rule.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_tuner.errors import SpaceError
from tui_tuner.search.config import StudyConfig, build_study_config
from tui_tuner.search.param import Param
from tui_tuner.search.space_params import build_param

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Space:
    """A validated search space: the study settings and the parameters in priority order."""

    config: StudyConfig
    params: dict[str, Param]
    path: str = "<string>"
    text: str = ""

    def __iter__(self):
        return iter(self.params.values())

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def __contains__(self, name: str) -> bool:
        return name in self.params

    def by_priority(self) -> list[Param]:
        """Parameters in tier order (tier 1 first), file order within a tier."""
        return sorted(self.params.values(), key=lambda p: p.tier)

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.params.values()}

    def check_setting(self, setting: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
        """Check a whole setting (or, with partial, some parameters) against the space.

        Returns the coerced values in space order; missing ones are filled from the defaults
        unless partial. Unknown names are refused.
        """
        unknown = [k for k in setting if k not in self.params]
        if unknown:
            raise SpaceError(f"params.{unknown[0]}: no such parameter in {self.path}")
        out: dict[str, Any] = {}
        for p in self.params.values():
            if p.name in setting:
                out[p.name] = p.check(setting[p.name])
            elif not partial:
                out[p.name] = p.default
        return out

    def signature(self) -> str:
        """Canonical text of the parameter definitions: equal iff two spaces search the same thing."""
        return json.dumps({n: p.definition() for n, p in self.params.items()}, sort_keys=True)


# -- loading ------------------------------------------------------------------------------------


def load_space(path: str | Path) -> Space:
    """Read and validate a space file; every problem is a one-line SpaceError naming file and rule."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpaceError(f"{path}: cannot read: {e}") from None
    return parse_space(text, str(path), default_name=p.stem)


def parse_space(text: str, source: str = "<string>", *, default_name: str | None = None) -> Space:
    """Validate space-file text; `source` names the file in error messages (and the study by default)."""
    if default_name is None:
        default_name = Path(source).stem if not source.startswith("<") else "study"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpaceError(f"{source}: TOML syntax error: {e}") from None
    except Exception as e:  # noqa: BLE001 - odd input (e.g. lone surrogates) must still be one line
        raise SpaceError(f"{source}: cannot parse: {e}") from None
    return _build(data, source, default_name, text)


def _build(data: dict[str, Any], source: str, default_name: str, text: str) -> Space:
    def fail(where: str, rule: str) -> SpaceError:
        return SpaceError(f"{source}: {where}: {rule}", where=where, rule=rule)

    for key in data:
        if key not in ("study", "params"):
            raise fail(key, "unknown table (expected [study] and [params.NAME])")
    study_raw = data.get("study")
    if not isinstance(study_raw, dict):
        raise fail("study", "missing [study] table (it needs command and objective)")
    params_raw = data.get("params")
    if not isinstance(params_raw, dict) or not params_raw:
        raise fail("params", "no parameters: add at least one [params.NAME] table")

    params: dict[str, Param] = {}
    for name, raw in params_raw.items():
        params[name] = build_param(name, raw, fail)
    study = build_study_config(study_raw, params, fail, default_name)
    # Priority order is the app's order; keep it stable and explicit.
    ordered = dict(sorted(params.items(), key=lambda kv: kv[1].tier))
    return Space(config=study, params=ordered, path=source, text=text)
