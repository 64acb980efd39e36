"""Export a trial's setting as TOML that a training script reads with tomllib, or as flags.

One top-level key per parameter, with its type kept (an int stays an int, a bool a bool), and a
[tuner] table of where it came from; for a zero-code study that table also holds the trial's argv,
ready to run. The file is written by core/output_file.py: whole or not at all, never over the study's
own files, never into a device or FIFO.
"""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path
from typing import Any

import tomli_w

from tui_tuner.core.argv import command_argv, expand, flag_args, format_value
from tui_tuner.core.output_file import write_output
from tui_tuner.core.study import Study, Trial
from tui_tuner.errors import StudyError
from tui_tuner.protocol import PARAMS, read_json

TUNER_TABLE = "tuner"
FORMATS = ("toml", "args")
STDOUT = "-"   # `-o -`: write to standard output


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
    if study.config.zero_code:
        # What to run to train with this setting: the command as the space writes it (a leading
        # "python" stays "python"), the flags, and {run_dir}/{trial} expanded as they were for it.
        meta["argv"] = trial_argv(study, trial)
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


def trial_argv(study: Study, trial: Trial) -> list[str]:
    """The argv a zero-code trial ran: the study command and its flags, placeholders expanded for it."""
    return command_argv(study.space, trial.params, run_dir=study.run_dir(trial.id).resolve(),
                        trial=trial.id, python=False)


def trial_args(study: Study, trial: Trial) -> list[str]:
    """Just the flags that hand a trial's setting to the training script.

    Zero-code: the flags its runs got (flag style and booleans as in the space, {run_dir}/{trial}
    expanded for it). A trainer-API script: `--name=value` for each parameter, which
    trainer.params() reads standalone (booleans as True/False).
    """
    if study.config.zero_code:
        run_dir = study.run_dir(trial.id).resolve()
        return [expand(w, run_dir, trial.id) for w in flag_args(study.space, trial.params)]
    return [f"--{name}={format_value(value)}" for name, value in trial.params.items()]


def export_text(study: Study, trial: Trial, fmt: str = "toml") -> str:
    """The export of a trial as text: the TOML document, or (fmt "args") one shell-quoted line of flags."""
    if fmt == "args":
        if not trial.params:
            raise StudyError(f"{study.dir}: trial {trial.id} has no settings to export")
        return shlex.join(trial_args(study, trial)) + "\n"
    if fmt != "toml":
        raise StudyError(f"unknown export format {fmt!r} (allowed: {', '.join(FORMATS)})")
    return tomli_w.dumps(export_document(study, trial))


def output_rules(study: Study) -> dict[str, Any]:
    """Where an export may go (see core/output_file.py): never over the study's own files or its space
    file; inside the study directory only its top-level export*.toml files, where exports go by default."""
    return {"study_dir": study.dir, "allowed_in_study": ("export*.toml",), "protected": (study.space_file,)}


def export_trial(study: Study, trial_id: int | None = None, path: str | Path | None = None, *,
                 fmt: str = "toml") -> Path:
    """Write a trial's setting (None: the best trial) as TOML (or flags); returns the path written.

    The default path is STUDY/export-tNNNN.toml. The write is atomic: a reader sees the old file or
    the new one, never a part; a target inside the study (other than STUDY/export*.toml) is refused.
    """
    trial = choose_trial(study, trial_id)
    text = export_text(study, trial, fmt)
    out = Path(path) if path is not None else default_path(study, trial)
    write_output(out, text.encode("utf-8"), **output_rules(study))
    return out
