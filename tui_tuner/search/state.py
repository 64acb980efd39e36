"""Where a search stands: the priority stage, frozen and anchored values, and the zoom stack.

Everything happens in each parameter's unit space (see `Param.to_unit`): a zoom level is a sub-box
of [0, 1] per numeric parameter and a subset of each choice's values. A `SearchState` is plain
data, persisted by the study as JSON; the moves that change it are in search/region.py.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from tui_tuner.errors import SpaceError
from tui_tuner.formatting import show_value
from tui_tuner.search.param import Param
from tui_tuner.search.space import Space

FULL = (0.0, 1.0)


@dataclass
class ZoomLevel:
    """One level of the zoom stack: a full snapshot of the allowed region, not a change to the last one."""

    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # numeric: unit box in [0, 1]
    choices: dict[str, list] = field(default_factory=dict)  # choice params: values still allowed
    trials: list[int] = field(default_factory=list)  # trial ids the zoom was taken from
    kind: str = "zoom"  # "zoom" (coarse-to-fine) or "stage" (boxed around the best when the stage rose)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"bounds": {k: [float(lo), float(hi)] for k, (lo, hi) in self.bounds.items()},
                "choices": {k: list(v) for k, v in self.choices.items()},
                "trials": [int(t) for t in self.trials], "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ZoomLevel:
        """Inverse of to_dict."""
        return cls(bounds={k: (float(v[0]), float(v[1])) for k, v in d.get("bounds", {}).items()},
                   choices={k: list(v) for k, v in d.get("choices", {}).items()},
                   trials=[int(t) for t in d.get("trials", [])], kind=str(d.get("kind", "zoom")))


@dataclass
class SearchState:
    """Where the search stands: stage, frozen and anchored values, and the zoom stack ([] = full space)."""

    stage: int = 4
    frozen: dict[str, Any] = field(default_factory=dict)
    anchor: dict[str, Any] = field(default_factory=dict)
    levels: list[ZoomLevel] = field(default_factory=list)

    # -- queries --------------------------------------------------------------------------------

    def is_searched(self, space: Space, name: str) -> bool:
        """True when the parameter is sampled now (its tier <= stage and it is not frozen)."""
        return space[name].tier <= self.stage and name not in self.frozen

    def searched(self, space: Space) -> list[str]:
        """Names searched now (tier <= stage and not frozen), in priority order."""
        return [n for n in space.params if self.is_searched(space, n)]

    def box(self, space: Space, name: str) -> tuple[float, float]:
        """Current unit-space box of a numeric parameter ((0, 1) when not zoomed)."""
        return current_box(self, name)

    def allowed(self, space: Space, name: str) -> list:
        """Current allowed values of a choice parameter (all of them when not zoomed)."""
        return current_values(self, space[name])

    def fixed_value(self, space: Space, name: str) -> Any:
        """The value an un-searched parameter takes: frozen, else anchored, else its default."""
        p = space[name]
        if name in self.frozen:
            return p.check(self.frozen[name])
        if name in self.anchor:
            try:
                return p.check(self.anchor[name])
            except SpaceError:
                return p.default  # an anchor from an older space edit: fall back rather than fail
        return p.default

    def fixed(self, space: Space) -> dict[str, Any]:
        """Values of every parameter not searched now."""
        return {n: self.fixed_value(space, n) for n in space.params if not self.is_searched(space, n)}

    def ranges(self, space: Space) -> dict[str, str]:
        """Display text of each parameter's current range, in value space, in priority order.

        "[0.0012, 0.0087]" for a zoomed numeric, "{2, 3}" for choices, "= 0.9 (frozen)",
        "= 0.003 (anchored)" or "= 0.01 (default)" for one that is not searched.
        """
        out: dict[str, str] = {}
        for name, p in space.params.items():
            if not self.is_searched(space, name):
                why = "frozen" if name in self.frozen else "anchored" if name in self.anchor else "default"
                out[name] = f"= {show_value(self.fixed_value(space, name))} ({why})"
            elif p.type == "choice":
                out[name] = "{" + ", ".join(show_value(v) for v in self.allowed(space, name)) + "}"
            else:
                lo, hi = self.box(space, name)
                if (lo, hi) == FULL:
                    out[name] = p.range_label()
                elif p.type == "int":
                    # The ints whose cells reach inside the box (a box edge on a cell edge would
                    # otherwise show a neighbour that is never drawn).
                    tiny = 1e-9 * (hi - lo)
                    out[name] = f"[{p.from_unit(lo + tiny)}, {p.from_unit(hi - tiny)}]"
                else:
                    out[name] = "[{}, {}]".format(*_pair(p.value_at(lo), p.value_at(hi), p.low, p.high))
        return out

    # -- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"stage": self.stage, "frozen": dict(self.frozen), "anchor": dict(self.anchor),
                "levels": [lv.to_dict() for lv in self.levels]}

    def to_json(self) -> str:
        """JSON text (the study stores it)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, s: str | dict) -> SearchState:
        """Rebuild a state from to_json() text (or its dict)."""
        d = json.loads(s) if isinstance(s, str) else s
        return cls(stage=int(d.get("stage", 4)), frozen=dict(d.get("frozen", {})),
                   anchor=dict(d.get("anchor", {})),
                   levels=[ZoomLevel.from_dict(x) for x in d.get("levels", [])])

    def copy(self) -> SearchState:
        """A deep copy (states are treated as values)."""
        return copy.deepcopy(self)


def _pair(a: float, b: float, low: float, high: float) -> tuple[str, str]:
    """Two range ends with just enough significant digits to tell them apart and to stay inside
    [low, high] (β near 1 needs more: 0.999 must not show as 1, which is off the 1-β scale)."""
    for digits in range(2, 9):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb and low <= float(sa) <= high and low <= float(sb) <= high:
            return sa, sb
    return f"{a:.9g}", f"{b:.9g}"


def current_box(state: SearchState, name: str) -> tuple[float, float]:
    """A numeric parameter's unit-space box at the current zoom level ((0, 1) when not zoomed)."""
    return tuple(state.levels[-1].bounds.get(name, FULL)) if state.levels else FULL  # type: ignore[return-value]


def current_values(state: SearchState, p: Param) -> list:
    """A choice parameter's values still allowed at the current zoom level."""
    if state.levels and p.name in state.levels[-1].choices:
        return list(state.levels[-1].choices[p.name])
    return list(p.values)
