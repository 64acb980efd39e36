"""The project's one error type: a title and a one-line message, never a traceback for the user."""

from __future__ import annotations


class TunerError(Exception):
    """An error the user can act on; the CLI prints `message` on one line, the UI shows it with `title`."""

    title = "Error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class SpaceError(TunerError):
    """A search space file (or a setting checked against it) breaks a rule.

    Made with `at(where, rule)`, it keeps the key (`where`, e.g. "study.early_stop_min_step") and the
    rule apart, so whoever adds the file's name does so without parsing the message back.
    """

    title = "Search space"

    def __init__(self, message: str, *, title: str | None = None, where: str | None = None,
                 rule: str | None = None) -> None:
        super().__init__(message, title=title)
        self.where = where
        self.rule = rule

    @classmethod
    def at(cls, where: str, rule: str) -> SpaceError:
        """The error 'WHERE: RULE', its key and rule kept apart."""
        return cls(f"{where}: {rule}", where=where, rule=rule)


class StudyError(TunerError):
    """A study directory cannot be opened or changed as asked (locked, mismatched space, unknown trial)."""

    title = "Study"


class RunError(TunerError):
    """A run cannot be started or controlled as asked."""

    title = "Run"


class InputError(TunerError):
    """What was typed into a dialog cannot be used (a count, a stage, a path, a parameter's value)."""

    title = "Input"


class PlotError(TunerError):
    """A picture cannot be drawn as asked (an unknown metric or parameter, a missing library)."""

    title = "Plot"


class ZoomTooFewError(SpaceError):
    """A zoom refused for too few finished trials; the UI asks whether to force it, with these numbers."""

    def __init__(self, message: str, *, have: int, need: int, searched: int) -> None:
        super().__init__(message)
        self.have = have            # finished trials with a finite objective
        self.need = need            # what a sound zoom needs (region.zoom_minimum)
        self.searched = searched    # the parameters searched now
