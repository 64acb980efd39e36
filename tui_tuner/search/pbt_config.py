"""The autopilot's settings ([study] autopilot, autopilot_interval, ..._fraction, ..._resample), validated.

Apart from core of PBT (search/pbt.py) so that the space's [study] table can check them without
importing what PBT decides with.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_tuner.errors import SpaceError

AUTOPILOTS = ("pbt", "none")
FACTORS = (0.8, 1.25)          # the explore step, as in the PBT paper and Ray Tune
RESAMPLE = 0.25                # Ray Tune's default resample_probability
FRACTION = 0.25                # Ray Tune's default quantile_fraction
INTERVAL = 100                 # steps between judgements of a run, when the space does not say


@dataclass(frozen=True)
class PbtConfig:
    """The validated autopilot settings ([study] autopilot, autopilot_interval, ..._fraction, ..._resample)."""

    rule: str = "none"
    interval: int = INTERVAL
    fraction: float = FRACTION
    resample: float = RESAMPLE
    where: str = "study"

    def __post_init__(self) -> None:
        w = self.where
        if self.rule not in AUTOPILOTS:
            raise SpaceError.at(f"{w}.autopilot", f"must be one of {', '.join(AUTOPILOTS)}, got {self.rule!r}")
        if isinstance(self.interval, bool) or not isinstance(self.interval, int) or self.interval < 1:
            raise SpaceError.at(f"{w}.autopilot_interval", f"must be an integer >= 1 (steps between two "
                             f"judgements of a run), got {self.interval!r}")
        f = self.fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 0.5:
            raise SpaceError.at(f"{w}.autopilot_fraction", f"must be a number in (0, 0.5] (the share of live "
                             f"runs that is bottom, and top), got {f!r}")
        r = self.resample
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r <= 1:
            raise SpaceError.at(f"{w}.autopilot_resample", f"must be a probability in [0, 1], got {r!r}")

    @property
    def active(self) -> bool:
        """False for "none": nothing is ever exploited."""
        return self.rule != "none"


def pbt_config(rule: str, interval: int | None = None, fraction: float | None = None,
               resample: float | None = None, where: str = "study") -> PbtConfig:
    """A PbtConfig with the defaults for what is not given (SpaceError "WHERE.KEY: rule" when bad)."""
    return PbtConfig(rule, INTERVAL if interval is None else interval, FRACTION if fraction is None else fraction,
                     RESAMPLE if resample is None else resample, where)
