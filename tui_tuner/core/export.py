"""Export a trial's setting as TOML that a training script reads with tomllib, as flags, or as the
whole command that reruns it.

- toml: one top-level key per parameter, with its type kept (an int stays an int, a bool a bool),
  and a [tuner] table of where it came from; for a zero-code study that table also holds the
  trial's argv.
- args: just the flags of the tuned parameters, shell-quoted, to append to a command of your own.
- command: the whole command, shell-quoted, ready to paste into a shell: `cd DIR && VAR=value
  INTERPRETER script.py --fixed flags --tuned flags`, with the interpreter that really ran and the
  directory and environment the run had (the directory only where it is not the current one), as
  the runner recorded them in the run's command.json.

A run changed live (adjust) ended with other values than it began with: the export has the values it
ended with, `as_started` those it began with; `warnings` says so for the args and command formats,
whose output carries no [tuner.started_with] table. The file is written by core/output_file.py:
whole or not at all, never over the study's own files, never into a device or FIFO.
"""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path
from typing import Any

import tomli_w

from tui_tuner.core.argv import command_argv, command_parts, expand, flag_args, format_value
from tui_tuner.core.formatting import short_value
from tui_tuner.core.output_file import write_output
from tui_tuner.core.run_setup import COMMAND_FILE, trial_env
from tui_tuner.core.study import Study, Trial
from tui_tuner.errors import StudyError
from tui_tuner.protocol import PARAMS, read_json

TUNER_TABLE = "tuner"
FORMATS = ("toml", "args", "command")
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


def export_document(study: Study, trial: Trial, now: dt.datetime | None = None, *,
                    as_started: bool = False) -> dict[str, Any]:
    """The TOML document of a trial: its parameters at the top level plus the [tuner] table.

    `as_started`: the values a run changed live began with (then [tuner.ended_with] has the others).
    """
    if not trial.params:
        raise StudyError(f"{study.dir}: trial {trial.id} has no settings to export")
    if TUNER_TABLE in trial.params:
        raise StudyError(f"{study.dir}: params.{TUNER_TABLE}: a parameter with this name would collide "
                         f"with the [{TUNER_TABLE}] table of the export; rename it")
    started = _started_with(study, trial)
    doc: dict[str, Any] = dict(trial.params)
    if as_started:
        doc.update(started)
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
    if started and as_started:
        meta["ended_with"] = {k: trial.params[k] for k in started}
    elif started:
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


def trial_args(study: Study, trial: Trial, values: dict[str, Any] | None = None) -> list[str]:
    """Just the flags that hand a trial's setting (or `values`) to the training script.

    Zero-code: the flags its runs got (flag style and booleans as in the space, {run_dir}/{trial}
    expanded for it). A trainer-API script: `--name=value` for each parameter, which
    trainer.params() reads standalone (booleans as True/False).
    """
    values = trial.params if values is None else values
    if study.config.zero_code:
        run_dir = study.run_dir(trial.id).resolve()
        return [expand(w, run_dir, trial.id) for w in flag_args(study.space, values)]
    return [f"--{name}={format_value(value)}" for name, value in values.items()]


def trial_values(study: Study, trial: Trial, *, as_started: bool = False) -> dict[str, Any]:
    """The setting an export gives: the values the run ended with, or (`as_started`) began with."""
    return {**trial.params, **_started_with(study, trial)} if as_started else dict(trial.params)


def trial_command(study: Study, trial: Trial, values: dict[str, Any] | None = None) -> tuple[str, list[str]]:
    """The shell command that reruns a trial, and warnings about what it cannot promise.

    From the run's command.json: the command words as spawned, the interpreter that ran (absolute,
    for a leading python), the directory (a `cd` unless it is the current one) and the space's
    [study.env] as `NAME=value` words. A run from before command.json was recorded gets today's
    command and environment, and a warning.
    """
    values = trial.params if values is None else values
    run_dir = study.run_dir(trial.id).resolve()
    rec = read_json(study.run_dir(trial.id) / COMMAND_FILE)
    warnings: list[str] = []
    if _usable_record(rec):
        command = list(rec["command"])
        if rec.get("python") and isinstance(rec.get("executable"), str):
            command[0] = rec["executable"]
        cwd: str | None = rec["cwd"]
        env = dict(rec["env"])
    else:
        command = command_parts(study.space, values, run_dir=run_dir, trial=trial.id)[0]
        cwd = None
        env = trial_env(study.config.env, run_dir, trial.id)
        warnings.append(f"trial {trial.id}: its run did not record how it was started ({COMMAND_FILE}), so "
                        f"the command has today's interpreter and no working directory: run it where the "
                        f"tuner ran")
    words = [f"{name}={shlex.quote(value)}" for name, value in env.items()]
    words += [shlex.quote(w) for w in command + trial_args(study, trial, values)]
    line = " ".join(words)
    if cwd is not None and Path(cwd) != Path.cwd().resolve():
        line = f"cd {shlex.quote(cwd)} && {line}"
    return line, warnings


def _usable_record(rec: Any) -> bool:
    return (isinstance(rec, dict) and isinstance(rec.get("command"), list) and bool(rec["command"])
            and all(isinstance(w, str) for w in rec["command"]) and isinstance(rec.get("cwd"), str)
            and isinstance(rec.get("env"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in rec["env"].items()))


def warnings(study: Study, trial: Trial, fmt: str = "toml", *, as_started: bool = False) -> list[str]:
    """What the user should know about an export, for standard error: a run changed live exports
    the values it ended with (args and command formats; the TOML says so in [tuner.started_with]),
    and a command that could not be read from the run's records."""
    out: list[str] = []
    started = _started_with(study, trial)
    if started and not as_started and fmt in ("args", "command"):
        changes = ", ".join(f"{k} {short_value(v)} → {short_value(trial.params[k])}" for k, v in started.items())
        out.append(f"trial {trial.id} was changed while it ran ({changes}): these are the values it ended "
                   f"with; --as-started exports those it began with")
    if fmt == "command":
        out += trial_command(study, trial)[1]
    return out


def export_text(study: Study, trial: Trial, fmt: str = "toml", *, as_started: bool = False) -> str:
    """The export of a trial as text: the TOML document, or (fmt "args") one shell-quoted line of
    flags, or (fmt "command") the whole shell-quoted command."""
    if fmt in ("args", "command"):
        if not trial.params:
            raise StudyError(f"{study.dir}: trial {trial.id} has no settings to export")
        values = trial_values(study, trial, as_started=as_started)
        if fmt == "command":
            return trial_command(study, trial, values)[0] + "\n"
        return shlex.join(trial_args(study, trial, values)) + "\n"
    if fmt != "toml":
        raise StudyError(f"unknown export format {fmt!r} (allowed: {', '.join(FORMATS)})")
    return tomli_w.dumps(export_document(study, trial, as_started=as_started))


def output_rules(study: Study) -> dict[str, Any]:
    """Where an export may go (see core/output_file.py): never over the study's own files or its space
    file; inside the study directory only its top-level export*.toml files, where exports go by default."""
    return {"study_dir": study.dir, "allowed_in_study": ("export*.toml",), "protected": (study.space_file,)}


def export_trial(study: Study, trial_id: int | None = None, path: str | Path | None = None, *,
                 fmt: str = "toml", as_started: bool = False) -> Path:
    """Write a trial's setting (None: the best trial) as TOML (or flags); returns the path written.

    The default path is STUDY/export-tNNNN.toml. The write is atomic: a reader sees the old file or
    the new one, never a part; a target inside the study (other than STUDY/export*.toml) is refused.
    """
    trial = choose_trial(study, trial_id)
    text = export_text(study, trial, fmt, as_started=as_started)
    out = Path(path) if path is not None else default_path(study, trial)
    write_output(out, text.encode("utf-8"), **output_rules(study))
    return out
