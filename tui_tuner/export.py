"""Export a trial's setting as TOML that a training script reads with tomllib.

One top-level key per parameter, with its type kept (an int stays an int, a bool a bool), and a
[tuner] table of where it came from. The file appears whole or not at all (tmp + os.replace).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import tomli_w

from tui_tuner.errors import StudyError
from tui_tuner.protocol import PARAMS, read_json
from tui_tuner.store import write_atomic
from tui_tuner.study import Study, Trial

TUNER_TABLE = "tuner"


def default_path(study: Study, trial: Trial) -> Path:
    """Where an export goes when no path is given: STUDY/export-tNNNN.toml."""
    return study.dir / f"export-{trial.run_id}.toml"


def choose_trial(study: Study, trial_id: int | None = None) -> Trial:
    """The trial to export: the one asked for, or the best done trial; StudyError when there is none."""
    if trial_id is None:
        best = study.best(1)
        if not best:
            raise StudyError(f"{study.dir}: no finished trial with an objective yet, so there is no best "
                             f"to export (give --trial ID)")
        return best[0]
    return study.trial(trial_id)


def export_document(study: Study, trial: Trial, now: dt.datetime | None = None) -> dict[str, Any]:
    """The TOML document of a trial: its parameters at the top level plus the [tuner] table."""
    if not trial.params:
        raise StudyError(f"{study.dir}: trial {trial.id} has no settings to export")
    if TUNER_TABLE in trial.params:
        raise StudyError(f"{study.dir}: params.{TUNER_TABLE}: a parameter with this name would collide "
                         f"with the [{TUNER_TABLE}] table of the export; rename it")
    doc: dict[str, Any] = dict(trial.params)
    meta: dict[str, Any] = {
        "study": study.name,
        "study_dir": str(study.dir.resolve()),
        "trial": trial.id,
        "run": trial.run_id,
        "status": trial.status,
        "objective": study.config.objective,
        "direction": study.config.direction,
    }
    # TOML has no null: a trial without an objective simply has no objective_value.
    if trial.objective is not None:
        meta["objective_value"] = trial.objective
    if trial.step is not None:
        meta["step"] = trial.step
    meta["space"] = study.space_file
    meta["command"] = list(study.config.command)
    meta["time"] = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    if trial.parent is not None:
        meta["parent"] = trial.parent
        if trial.fork_step is not None:
            meta["fork_step"] = trial.fork_step
    started = _started_with(study, trial)
    if started:
        # A babysat run: the top-level values are what it trained with at the end; say what it began with.
        meta["started_with"] = started
    doc[TUNER_TABLE] = meta
    return doc


def _started_with(study: Study, trial: Trial) -> dict[str, Any]:
    """The values a run started with that live changes (adjust) replaced since: {} for most trials."""
    start = read_json(study.run_dir(trial.id) / PARAMS)
    params = start.get("params") if start else None
    if not isinstance(params, dict):
        return {}
    return {k: v for k, v in params.items() if k in trial.params and trial.params[k] != v}


def export_trial(study: Study, trial_id: int | None = None, path: str | Path | None = None) -> Path:
    """Write a trial's setting (None: the best trial) as TOML; returns the path written.

    The default path is STUDY/export-tNNNN.toml. The write is atomic: a reader sees the old file or
    the new one, never a part.
    """
    trial = choose_trial(study, trial_id)
    doc = export_document(study, trial)
    out = Path(path) if path is not None else default_path(study, trial)
    if out.is_dir():
        raise StudyError(f"{out}: is a directory; give a file name like {out / 'best.toml'}")
    if not out.parent.is_dir():
        raise StudyError(f"{out}: no such directory {out.parent}")
    try:
        write_atomic(out, tomli_w.dumps(doc).encode("utf-8"))
    except OSError as e:
        raise StudyError(f"{out}: cannot write: {e.strerror or e}") from None
    return out
