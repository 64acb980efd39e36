"""The `tui-tuner` command line: the commands README.md lists under "Commands".

Every user error is one line on stderr (`tui-tuner: <message>`) and exit code 2; a traceback is a
bug, shown only with TUI_TUNER_DEBUG=1. `run`, `tune` and `demo` are hook points filled in by the
runtime and the app; `tui-tuner SPACE.toml [--study DIR]` is `tune`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from tui_tuner import __version__
from tui_tuner.cli.study import cmd_export, cmd_plot, cmd_recover, cmd_show
from tui_tuner.errors import TunerError
from tui_tuner.search import strategies
from tui_tuner.search.config import EARLY_STOP_RULES
from tui_tuner.search.pbt_config import AUTOPILOTS
from tui_tuner.search.space import Space, load_space

PROG = "tui-tuner"
COMMANDS = ("tune", "run", "demo", "sample", "show", "export", "recover", "plot")
DEBUG_ENV = "TUI_TUNER_DEBUG"
EXIT_USER = 2        # a TunerError or a usage error: the user can fix it
EXIT_BUG = 1         # anything unexpected


class UsageError(TunerError):
    """A command line that argparse refused."""

    title = "Usage"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one TunerError line instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= minimum, else one line saying so."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {n}")
        return n
    return parse


_count = _at_least(0)
_positive = _at_least(1)


def _parallel(text: str) -> int | str:
    """--parallel: a number of runs at once, or "auto" (auto-k chooses it from measured throughput)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 or auto, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 or auto, got {n}")
    return n


def _duration(text: str) -> str:
    from tui_tuner.search.budget import parse_duration

    try:
        parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _budget_options(parser: argparse.ArgumentParser) -> None:
    """--early-stop, --step-budget and --time-budget, for run (headless or not) and the app."""
    parser.add_argument("--early-stop", choices=EARLY_STOP_RULES, metavar="NAME",
                        help=f"stop hopeless trials early: {', '.join(EARLY_STOP_RULES)} (default: the space's; "
                             "kept in the study)")
    parser.add_argument("--early-stop-min-step", type=_positive, metavar="N",
                        help="the first step at which early stopping may stop a trial (default: a ninth of the "
                             "most steps)")
    parser.add_argument("--early-stop-max-step", type=_positive, metavar="N",
                        help="the most steps a trial runs (default: the trainer's max_steps, else the first "
                             "trial to finish)")
    parser.add_argument("--autopilot", choices=AUTOPILOTS, metavar="NAME",
                        help=f"replace the worst live runs by forks of the best (PBT): {', '.join(AUTOPILOTS)} "
                             "(default: the space's)")
    parser.add_argument("--step-budget", type=_positive, metavar="N",
                        help="end the study once all trials together reported N steps")
    parser.add_argument("--time-budget", type=_duration, metavar="T",
                        help="end the study T after it first started: 8h, 90m, 1h30m, 3600s or seconds")


def _trial_id(text: str) -> int:
    # Accept the run id as shown in tables and run dirs (t0003) as well as the number: ASCII digits
    # (int() would read "٥" as 5) and at most what the study's ids can be (a SQLite integer).
    s = text.strip()
    s = s[1:] if s[:1] in ("t", "T") else s
    if not (s.isascii() and s.isdigit() and len(s) <= 18 and int(s) > 0):
        raise argparse.ArgumentTypeError(f"must be a trial id like 3 or t0003, got {_cut(text)!r}")
    return int(s)


def _cut(text: str, n: int = 60) -> str:
    """A long name or value for a one-line message: its start and end, and how long it was."""
    return text if len(text) <= n else f"{text[:n // 2]}…{text[-n // 4:]} ({len(text)} characters)"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every subcommand, including the hooks for run/tune/demo)."""
    p = _Parser(prog=PROG, description="Keyboard-driven hyperparameter tuning in a terminal. "
                "`tui-tuner SPACE.toml` opens the app on a study of that space.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("tune", help="open the app on a new or existing study (also: tui-tuner SPACE.toml)")
    t.add_argument("space", nargs="?", help="the search space file (optional when --study holds one)")
    t.add_argument("--study", metavar="DIR", help="study directory (default: ./studies/<study name>/)")
    t.add_argument("--seed", type=_count, help="seed of a new study (default: the space's, else random)")
    t.add_argument("--strategy", choices=strategies.names(), help="how settings are chosen (default: the space's)")
    _budget_options(t)
    t.set_defaults(func=cmd_tune)

    r = sub.add_parser("run", help="run the tuning loop (--headless: without the app)")
    r.add_argument("space", help="the search space file")
    r.add_argument("--headless", action="store_true", help="no app: print one line per finished trial")
    r.add_argument("--trials", type=_positive, metavar="N", help="the study's total budget of trials")
    r.add_argument("--parallel", type=_parallel, metavar="K",
                   help="runs at once, or auto (raised while the runs' total steps/s rises)")
    r.add_argument("--strategy", choices=strategies.names(), help="how settings are chosen")
    r.add_argument("--seed", type=_count, help="seed of a new study")
    r.add_argument("--study", metavar="DIR", help="study directory (default: ./studies/<study name>/)")
    _budget_options(r)
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="the app on the bundled example, nothing else needed")
    d.add_argument("--study", metavar="DIR", help="study directory for the demo")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("sample", help="print the first N settings `run --seed S` would queue, as JSON lines")
    s.add_argument("space", help="the search space file")
    s.add_argument("-n", type=_count, default=10, metavar="N", help="how many settings (default 10)")
    s.add_argument("--seed", type=_count, help="seed (same seed, same output; default: the space's, else random)")
    # These shape the scheduler's batches, so they must match the run's for the same settings.
    s.add_argument("--strategy", choices=strategies.names(), help="as for run (default: the space's)")
    s.add_argument("--trials", type=_positive, metavar="N", help="the budget, as for run (default: the space's)")
    s.add_argument("--parallel", type=_parallel, metavar="K",
                   help="runs at once, as for run (default: the space's; auto starts at 1)")
    s.set_defaults(func=cmd_sample)

    w = sub.add_parser("show", help="print a study's trials, best first, as a plain table")
    w.add_argument("study", metavar="STUDY", help="the study directory")
    w.add_argument("--json", action="store_true", help="one JSON object per trial instead of a table")
    w.set_defaults(func=cmd_show)

    e = sub.add_parser("export", help="write a trial's setting as TOML")
    e.add_argument("study", metavar="STUDY", help="the study directory")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--trial", type=_trial_id, metavar="ID", help="the trial to export (3 or t0003)")
    which.add_argument("--best", action="store_true", help="the best done trial (the default)")
    e.add_argument("-o", "--output", metavar="FILE.toml",
                   help="where to write; - for standard output (default: STUDY/export-tNNNN.toml; "
                        "with --format args or command, standard output)")
    e.add_argument("--format", choices=("toml", "args", "command"), default="toml",
                   help="toml (default); args: just the tuned flags, shell-quoted on one line, for $(...) after "
                        "your own command; command: the whole command that reruns the trial, to paste into a shell")
    e.add_argument("--as-started", action="store_true",
                   help="a run changed while it trained (adjust): the values it began with, not those it ended with")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("recover", help="rebuild a missing or empty study.db from space.toml and runs/")
    v.add_argument("study", metavar="STUDY", help="the study directory")
    v.set_defaults(func=cmd_recover)
    g = sub.add_parser("plot", help="draw the app's pictures of a study: all learning curves, or the search "
                                    "scatter with its zoom boxes (to the terminal, or -o FILE)")
    g.add_argument("study", metavar="STUDY", help="the study directory")
    g.add_argument("--metric", metavar="M", help="the curves' metric (default: the objective)")
    g.add_argument("--search", nargs=2, metavar=("X", "Y"),
                   help="the search scatter of parameters X and Y instead of the curves")
    g.add_argument("--log", action="store_true", help="a log y axis for the curves")
    g.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE: .png, .svg or .pdf (needs matplotlib: the plot extra), or .txt; "
                        "- for the text picture on standard output")
    g.set_defaults(func=cmd_plot)
    return p


def _route(argv: list[str]) -> list[str]:
    """Make the bare form `tui-tuner SPACE.toml [--study DIR]` (or `tui-tuner --study DIR`) mean `tune`."""
    if not argv:
        return argv
    first = argv[0]
    if first in COMMANDS or first in ("-h", "--help", "--version"):
        return argv
    if first.startswith("-") or first.endswith(".toml") or Path(first).exists():
        return ["tune", *argv]
    return argv


def study_dir(space: Space, given: str | None) -> Path:
    """The study directory a command uses: --study DIR, else ./studies/<study name>/."""
    from tui_tuner.study.study import default_dir

    return Path(given) if given else default_dir(space)


# -- commands ---------------------------------------------------------------------------------------


def cmd_tune(args: argparse.Namespace) -> int:
    """Open the app on a new or existing study; a bad space file or a locked study exits before it starts."""
    from tui_tuner.study.study import Study

    space = load_space(args.space) if args.space else None
    if space is None and not args.study:
        raise UsageError("give a space file (tui-tuner SPACE.toml) or an existing study (--study DIR)")
    directory = study_dir(space, args.study) if space is not None else Path(args.study)
    study = Study.open(directory, space, seed=getattr(args, "seed", None))
    # `run SPACE` without --headless: the app with the same overrides the headless loop takes.
    overrides = {key: getattr(args, attr, None) for key, attr in OVERRIDES.items()}
    try:
        _check_overrides(study, overrides)
    except BaseException:
        study.close()
        raise
    from tui_tuner.ui.app import run_app  # textual loads only once the study is open

    return run_app(study, overrides=overrides)


# The settings a flag gives (kept in the study: study/settings.py) -> the argparse attribute.
OVERRIDES = {"budget": "trials", "parallel": "parallel", "strategy": "strategy", "early_stop": "early_stop",
             "early_stop_min_step": "early_stop_min_step", "early_stop_max_step": "early_stop_max_step",
             "autopilot": "autopilot", "step_budget": "step_budget", "time_budget": "time_budget"}


def _check_overrides(study: Any, overrides: dict[str, Any]) -> None:
    """Refuse, before the app starts, settings that cannot work: a model-based strategy without its
    packages, a bad combination of early-stop steps (the app would only say so once it runs)."""
    from tui_tuner.study.settings import configured, kept

    config = configured(study.space.config, {**kept(study), **{k: v for k, v in overrides.items() if v is not None}})
    if strategies.get(config.strategy).model:
        from tui_tuner.search.optuna_search import OptunaSearch
        from tui_tuner.search.state import SearchState

        OptunaSearch(study.space, SearchState(stage=config.stage), 0, [], strategy=config.strategy)


def cmd_run(args: argparse.Namespace) -> int:
    """The tuning loop, headless or in the app."""
    if args.headless:
        from tui_tuner.runtime.headless import run_headless

        return run_headless(args.space, args.study, args.trials, args.parallel, args.strategy, args.seed,
                            early_stop=args.early_stop, step_budget=args.step_budget, autopilot=args.autopilot,
                            time_budget=args.time_budget, early_stop_min_step=args.early_stop_min_step,
                            early_stop_max_step=args.early_stop_max_step)
    return cmd_tune(args)


def demo_root() -> Path:
    """The repository holding the bundled example (spaces/ and trainers/)."""
    import tui_tuner

    return Path(tui_tuner.__file__).resolve().parent.parent


def cmd_demo(args: argparse.Namespace) -> int:
    """The app on the bundled example: spaces/mlp.toml, its trainer run from the repository root.

    The study goes to --study DIR, else ./studies/<study name>/ of the directory the command ran in.
    """
    import importlib.util

    from tui_tuner.study.study import Study

    root = demo_root()
    space = load_space(root / "spaces" / "mlp.toml")
    if importlib.util.find_spec("torch") is None:
        raise UsageError("the demo trains a small PyTorch model: install torch first")
    study = Study.open(study_dir(space, args.study), space)
    from tui_tuner.ui.app import run_app

    return run_app(study, cwd=str(root))


def cmd_sample(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the first N settings `run` with the same seed, strategy, trials and parallel queues."""
    out = out or sys.stdout
    space = load_space(args.space)
    seed = args.seed if args.seed is not None else space.config.seed
    cfg = space.config
    strategy = args.strategy or cfg.strategy
    budget = args.trials or cfg.budget
    parallel = args.parallel or cfg.parallel
    parallel = 1 if parallel == "auto" else parallel   # auto-k starts at one run
    chosen = strategies.get(strategy)
    settings = chosen.preview(space, args.n, seed, budget=budget, parallel=max(1, parallel))
    note = chosen.preview_note(args.n, budget, parallel, cfg.round_size)
    if note:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    for setting in settings:
        out.write(json.dumps(setting) + "\n")
    out.flush()
    return 0


# -- entry point --------------------------------------------------------------------------------


def _error_line(message: str) -> None:
    from tui_tuner.printable import printable

    # One line, and nothing a file or trainer put in a name (escapes, control characters) reaches the terminal.
    line = printable(" ".join(str(message).split("\n")).strip())
    print(f"{PROG}: {line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error, 1 unexpected)."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(_route(args_in))
        if getattr(args, "func", None) is None:
            parser.print_help()
            return EXIT_USER
        return int(args.func(args) or 0)
    except SystemExit as e:  # --help and --version exit through argparse
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_BUG)
    except TunerError as e:
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        _error_line(e.message)
        return EXIT_USER
    except KeyboardInterrupt:
        _error_line("interrupted")
        return 130
    except RecursionError:
        # A file nested thousands deep ([[[[...) that a reader did not refuse by itself.
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        _error_line("a file it read is nested too deeply to be read (rerun with "
                    f"{DEBUG_ENV}=1 to see which)")
        return EXIT_USER
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BUG
    except OSError as e:
        # The system refused a path (a name too long, no permission, a full disk): one line naming it.
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        where = f"{_cut(os.fsdecode(e.filename))}: " if e.filename is not None else ""
        _error_line(f"{where}{e.strerror or e}")
        return EXIT_USER
    except Exception as e:  # noqa: BLE001 - a bug still gets one line; the traceback is opt-in
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        _error_line(f"unexpected error: {type(e).__name__}: {e} (rerun with {DEBUG_ENV}=1 for a traceback)")
        return EXIT_BUG
