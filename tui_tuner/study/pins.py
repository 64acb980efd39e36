"""Pins: the trials no automatic decision touches (never stopped early, never replaced by the autopilot).

One store, the study's meta "pinned" (a sorted list of trial ids), read by every policy and written
only by the automation loop when a pin decision is carried out: the user's pin key, a run adjusted,
forked or extended by hand, a run resumed by an undo.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tui_tuner.study.store import Store

META = "pinned"


def pinned(study: Any) -> set[int]:
    """The pinned trial ids."""
    return {int(i) for i in study.meta(META, []) or []}


def set_pinned(study: Any, trial_id: int, pin: bool = True, db: sqlite3.Connection | None = None) -> set[int]:
    """Pin (or unpin) a trial; returns the pins now. `db`: inside that transaction."""
    ids = pinned(study)
    ids = ids | {int(trial_id)} if pin else ids - {int(trial_id)}
    if db is not None:
        Store.write_meta(db, {META: sorted(ids)})
    else:
        study.set_meta(META, sorted(ids))
    return ids
