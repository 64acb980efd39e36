"""Reading what a run writes into its RunState: events.jsonl for a trainer-API run, output.log
(through the study's metric patterns) for a zero-code one. Files in, RunEvents out; no lock, no study."""

from __future__ import annotations

from pathlib import Path

from tui_tuner import protocol
from tui_tuner.runtime.adapters import LineTail, MetricParser
from tui_tuner.runtime.run_state import RunEvent, RunState
from tui_tuner.tailing import JsonlTail


class RunReader:
    """Follows one run directory from the start and feeds what is new to a RunState."""

    def __init__(self, run_dir: Path, patterns: dict[str, str] | None = None) -> None:
        """`patterns`: the zero-code study's [study.metrics] (None: read the trainer's events.jsonl)."""
        self.readable = run_dir.is_dir()    # a stray file in its place has nothing to read
        self.events = JsonlTail(run_dir / protocol.EVENTS)
        self.output = LineTail(run_dir / protocol.OUTPUT)
        self.parser = MetricParser(patterns) if patterns is not None else None

    def read(self, state: RunState, now: float, *, final: bool = False, whole: bool = False) -> list[RunEvent]:
        """Apply what the run wrote since the last call; the events that happened, in order.

        A live poll reads one bounded chunk; `whole` reads on to the end of what is there (settling
        or replaying a run). `final`: the writer has ended, so an unterminated last line counts too.
        """
        out: list[RunEvent] = []
        if not self.readable:
            return out
        while True:
            behind = self._read_some(state, now, final, out)
            if not (behind and whole):
                return out

    def _read_some(self, state: RunState, now: float, final: bool, out: list[RunEvent]) -> bool:
        if self.parser is not None:
            lines = self.output.read_new(final=final)
            if lines:
                out += state.activity(now)
            for line in lines:
                ev = self.parser.feed(line)
                if ev is None:
                    continue
                if "bad" in ev:
                    out += state.bad_event(ev["bad"])
                else:
                    out += state.apply_metrics(ev["step"], ev["metrics"])
            return self.output.behind
        objs, garbage = self.events.read_new(final=final)
        out += state.apply_garbage(garbage, now)
        out += state.apply_lines(objs, now)
        return self.events.behind
