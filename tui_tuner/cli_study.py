"""The commands that read a study outside the tuning loop: show, export, recover and plot.

Each opens the study read-only (recover: with its lock, to rebuild study.db) and writes to `out`
(standard output by default); errors are TunerErrors, which the command line prints as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from tui_tuner.core.formatting import show_value
from tui_tuner.core.printable import printable

REASON_WIDTH = 60   # the `show` table's reason column: the first line of a reason, cut here


def trial_table(study: Any) -> list[str]:
    """The `show` table: one aligned line per trial, best first, with a header line.

    The reason column holds why a trial ended otherwise than done (the first line of its reason,
    capped); `show --json` and the app's `v` key have the whole text.
    """
    from tui_tuner.core.store import first_line

    rows = [["id", "status", "objective", "step", "fork", "reason", "params"]]
    for t in study.trials("best"):
        fork = "-" if t.parent is None else f"{t.parent}@{show_value(t.fork_step)}"
        params = " ".join(f"{k}={show_value(v)}" for k, v in t.params.items())
        rows.append([str(t.id), t.status, show_value(t.objective), show_value(t.step), fork,
                     first_line(t.reason, REASON_WIDTH) or "-", params])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    # Left-aligned text, right-aligned numbers would be prettier but harder to cut(1); keep it plain.
    return [("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]).rstrip()
            for r in rows]


def cmd_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print a study's trials, best first: an aligned table, or JSON lines with --json."""
    from tui_tuner.core.study import Study

    out = out or sys.stdout
    with Study.open(args.study, lock=False) as study:
        if args.json:
            for t in study.trials("best"):
                out.write(json.dumps({
                    "id": t.id, "status": t.status, "objective": t.objective, "step": t.step,
                    "parent": t.parent, "fork_step": t.fork_step, "source": t.source,
                    "reason": t.reason, "params": t.params,
                }) + "\n")
        else:
            for line in trial_table(study):
                out.write(printable(line) + "\n")
    out.flush()
    return 0


def cmd_export(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Write the chosen trial (default: the best) as TOML and print the path written.

    `-o -` writes the export itself to standard output; so do `--format args` and `--format command`
    without -o. What the user should know about it (a run changed live) goes to standard error.
    """
    from tui_tuner.core.export import STDOUT, choose_trial, export_text, export_trial, warnings
    from tui_tuner.core.study import Study

    out = out or sys.stdout
    err = err or sys.stderr
    fmt = getattr(args, "format", "toml")
    as_started = getattr(args, "as_started", False)
    with Study.open(args.study, lock=False) as study:
        trial = choose_trial(study, args.trial)
        for line in warnings(study, trial, fmt, as_started=as_started):
            err.write(f"tui-tuner: warning: {line}\n")
        if args.output == STDOUT or (fmt in ("args", "command") and args.output is None):
            out.write(export_text(study, trial, fmt, as_started=as_started))
            out.flush()
            return 0
        path = export_trial(study, trial.id, args.output, fmt=fmt, as_started=as_started)
    out.write(f"{path}\n")
    out.flush()
    return 0


def cmd_recover(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Rebuild the study's database from its run directories and say what could not come back."""
    from tui_tuner.runtime.recover import recover

    out = out or sys.stdout
    for line in recover(args.study).lines():
        out.write(printable(line) + "\n")
    out.flush()
    return 0


def cmd_plot(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Draw the curves or the search scatter of a study, to the terminal or to a file."""
    from tui_tuner.runtime.pictures import plot_study

    return plot_study(args.study, metric=args.metric, search=args.search, output=args.output, log=args.log,
                      out=out)
