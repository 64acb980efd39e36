"""The one executor: carries out every decision (and its undo) step by step, never waiting.

A decision is a list of steps (`Step`: checkpoint, fork, stop, set, max_steps, pin, setting, k),
written to the study's decision log *before* the first is taken. Each step taken is recorded on the
decision's row (`progress`: how many are done and what each gave: a checkpoint's seq, a fork's
child); a command sent to a run carries the decision's id and step ("decision", "part") in its
control.jsonl line, and a
fork's child is recorded in the transaction that adds it. So a tuner killed between a step and its
record finds, on restart, what was already done, and finishes the rest or gives up with a reason
("void") when the run it was about has ended meanwhile. A fork needs its parent's checkpoint: that
step waits (returns, and a later tick tries again) until the checkpoint is written, so nothing on
the command thread ever waits for a trainer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui_tuner.errors import TunerError
from tui_tuner.runtime.runner import Runner
from tui_tuner.study import pins
from tui_tuner.study.decision_log import DONE, PENDING, USER, VOID, Decision, DecisionLog
from tui_tuner.study.study import Study

Step = dict[str, Any]   # {"op": ..., what it acts on}; JSON, kept on the decision's row


@dataclass(frozen=True)
class Action:
    """A decision to carry out: its kind, the trial it is about, what it says, its numbers, its steps.

    `also(db)` writes more in the transaction that keeps the decision (a decider's history, so a
    restarted tuner does not decide the same again)."""

    kind: str
    trial_id: int | None
    message: str
    steps: list[Step]
    data: Mapping[str, Any] = field(default_factory=dict)
    by: str = "auto"
    also: Callable[[Any], None] | None = None


class Void(Exception):
    """A step that cannot be taken any more (its run ended): the decision is not carried out."""


class Wait(Exception):
    """A step that cannot be taken yet (a checkpoint not written): a later tick tries again."""


class Executor:
    """Carries out actions and their undos; `publish(decision)` is told each one as it begins and ends.

    `hooks` carry out the steps that belong to a policy: "setting" (key, value) and "k" (data).
    """

    def __init__(self, study: Study, runner: Runner, log: DecisionLog, publish: Callable[[Decision], None],
                 hooks: Mapping[str, Callable[[Step], Any]] | None = None) -> None:
        self.study = study
        self.runner = runner
        self.log = log
        self.publish = publish
        self.hooks = dict(hooks or {})
        self.on_pins: Callable[[], None] = lambda: None   # the pins changed: policies read them again
        self._waiting: set[int] = set()                    # decisions whose next step waits

    # -- forward ------------------------------------------------------------------------------------

    def begin(self, action: Action) -> Decision:
        """Keep the decision (pending), then carry out as much of it as can be done now."""
        data = {**action.data, "steps": action.steps}
        d = self.log.add(action.kind, action.trial_id, action.message, data, state=PENDING, by=action.by,
                         also=action.also)
        self.publish(d)
        return self.advance(d)

    def advance(self, d: Decision, *, resumed: bool = False) -> Decision:
        """Take the decision's next steps until it is done, void, or a step must wait."""
        return self._run(d, d.data.get("steps") or [], dict(d.progress), undo=False, resumed=resumed)

    def waiting(self) -> list[Decision]:
        """The decisions (or undos) a step of which is waiting, oldest first."""
        return [self.log.get(i) for i in sorted(self._waiting)]

    # -- undo -----------------------------------------------------------------------------------------

    def begin_undo(self, d: Decision, steps: list[Step], message: str) -> Decision:
        """Keep the undo's steps on the decision's row (the undo has begun), then carry them out."""
        assert d.id is not None
        self.log.update_undo(d.id, {"steps": steps, "message": message, "done": 0, "out": {}})
        return self.advance_undo(self.log.get(d.id))

    def advance_undo(self, d: Decision, *, resumed: bool = False) -> Decision:
        """Take the undo's next steps; the decision is marked undone once they are all taken."""
        prog = dict(d.undo_progress or {})
        return self._run(d, prog.get("steps") or [], prog, undo=True, resumed=resumed)

    # -- the steps --------------------------------------------------------------------------------------

    def _run(self, d: Decision, steps: list[Step], prog: dict[str, Any], *, undo: bool, resumed: bool) -> Decision:
        assert d.id is not None
        done = int(prog.get("done", 0))
        out: dict[str, Any] = dict(prog.get("out") or {})
        while done < len(steps):
            try:
                result = self._step(d, done, steps[done], out, undo=undo, resumed=resumed)
            except Wait:
                self._waiting.add(d.id)
                if "since" not in prog:
                    prog["since"] = time.time()
                    self._record(d, {"since": prog["since"]}, undo)
                return self.log.get(d.id)
            except Void as e:
                self._waiting.discard(d.id)
                return self._void(d, str(e), undo)
            out[str(done)] = result
            if steps[done]["op"] == "fork" and isinstance(result, int):
                out["child"] = result
            done += 1
            self._record(d, {"done": done, "out": out}, undo)
        self._waiting.discard(d.id)
        if undo:
            message = str((self.log.get(d.id).undo_progress or {}).get("message") or "undone")
            final = self.log.mark_undone(d.id, self._fill(message, out))
        else:
            self.log.update(d.id, state=DONE, message=self._fill(d.message, out))
            final = self.log.get(d.id)
        self.publish(final)
        return final

    def _fill(self, message: str, out: Mapping[str, Any]) -> str:
        """A message with CHILD and AT replaced by the fork its steps made and its step, once made."""
        said = [v for k, v in sorted(out.items()) if k.isdigit() and isinstance(v, str)]
        message = message.replace(RESULT, said[-1] if said else "done")
        child = out.get("child")
        if not isinstance(child, int):
            return message
        step = self.study.trial(child).fork_step
        return message.replace(CHILD, f"#{child}").replace(AT, str(step) if step is not None else "its start")

    def _record(self, d: Decision, progress: dict[str, Any], undo: bool) -> None:
        assert d.id is not None
        if undo:
            self.log.update_undo(d.id, progress)
        else:
            self.log.update(d.id, progress=progress)

    def _void(self, d: Decision, why: str, undo: bool) -> Decision:
        assert d.id is not None
        if undo:
            # An undo that cannot finish is recorded as what it did: the decision stays undone-or-not as the
            # steps taken say (the first steps of an undo are the ones that matter: a resumed run).
            final = self.log.mark_undone(d.id, f"undo stopped: {why}")
        else:
            self.log.update(d.id, state=VOID, progress={"void": why}, message=f"{d.message} — not carried out: {why}")
            final = self.log.get(d.id)
        self.publish(final)
        return final

    def _tag(self, d: Decision, i: int, undo: bool) -> dict[str, Any]:
        return {"decision": d.id, "part": i, **({"undo": True} if undo else {})}

    def _sent(self, trial: int, tag: dict[str, Any], resumed: bool) -> dict[str, Any] | None:
        """The command this step already sent (a tuner died before recording it), when resuming."""
        return self.runner.commands.tagged(trial, tag) if resumed else None

    def _step(self, d: Decision, i: int, step: Step, out: dict[str, Any], *, undo: bool, resumed: bool) -> Any:
        op = step["op"]
        tag = self._tag(d, i, undo)
        if op in self.hooks:
            return self.hooks[op](step)
        if op == "pin":
            tid = step["trial"] if "trial" in step else out.get(str(step["trial_from"]))
            if isinstance(tid, int):
                pins.set_pinned(self.study, tid, bool(step.get("pin", True)))
                self.on_pins()
            return tid
        if op == "fork":
            return self._fork(d, i, step, out, undo)
        tid = int(step["trial"])
        sent = self._sent(tid, tag, resumed)
        if sent is not None:
            return sent.get("seq")
        if op == "checkpoint":
            if not self.runner.queries.is_live(tid):
                if step.get("required"):
                    raise Void(f"#{tid} ended before its checkpoint")
                return None
            if not self.runner.commands.can_adjust(tid):
                return None   # zero-code: no checkpoint (a resume restarts it from scratch)
            return self.runner.commands.checkpoint(tid, tag)
        if op == "stop":
            if not self.runner.queries.is_live(tid):
                if step.get("required"):
                    raise Void(f"#{tid} ended ({self.study.trial(tid).status}) before it was stopped")
                return None
            self.runner.commands.stop(tid, step.get("reason"), tag)
            return True
        if op in ("set", "max_steps"):
            if not self.runner.queries.is_live(tid) or self.runner.queries.latest(tid).get("ending", False):
                raise Void(f"#{tid} is not running any more")
            try:
                if op == "set":
                    return self.runner.commands.set(tid, dict(step["params"]), tag)
                return self.runner.commands.set_max_steps(tid, int(step["steps"]), tag)
            except TunerError as e:
                raise Void(e.message) from None
        raise Void(f"unknown step {op!r}")

    def _fork(self, d: Decision, i: int, step: Step, out: dict[str, Any], undo: bool) -> int:
        """Start the fork of a step once its parent's checkpoint is written (Wait until then)."""
        assert d.id is not None
        row = self.log.get(d.id)
        prog = (row.undo_progress or {}) if undo else row.progress
        child = (prog.get("out") or {}).get(str(i))
        if isinstance(child, int):
            # Added before a tuner died, maybe not started: start it now (unless the queue already did).
            if self.study.trial(child).status == "queued":
                self.runner.start(self.study.trial(child))
            return child
        parent = int(step["trial"])
        unless = step.get("unless_ended")
        if isinstance(unless, int) and not self.runner.queries.is_live(unless):
            raise Void(f"#{unless} ended on its own first")
        seq = out.get(str(step["from"])) if "from" in step else step.get("seq")
        ev = None
        if isinstance(seq, int):
            ev = self.runner.commands.checkpoint_event(parent, seq)
            if ev is None:
                if not self.runner.queries.is_live(parent):
                    raise Void(f"#{parent} ended before its checkpoint was written")
                since = prog.get("since") or time.time()
                if time.time() - float(since) > self.runner.checkpoint_timeout:
                    raise Void(f"no checkpoint from #{parent} within {self.runner.checkpoint_timeout:g}s "
                               f"(does its trainer call trainer.on_checkpoint?)")
                raise Wait()
            if ev.get("error"):
                raise Void(f"the checkpoint of #{parent} failed: {ev['error']}")
        elif step.get("needs_checkpoint") and self.runner.commands.can_adjust(parent):
            raise Void(f"#{parent} has no checkpoint to continue from")

        def keep(db: Any, tid: int) -> None:
            current = {"out": {**(prog.get("out") or {}), **out, str(i): tid, "child": tid}}
            if undo:
                self.log.update_undo(d.id, current, db=db)   # type: ignore[arg-type]
            else:
                self.log.update(d.id, progress=current, db=db)   # type: ignore[arg-type]

        try:
            child_trial = self.runner.commands.fork_at(parent, dict(step.get("changes") or {}), ev, also=keep)
        except TunerError as e:
            raise Void(e.message) from None
        return child_trial.id


CHILD = "{child}"   # in a decision's message: the fork its steps made, once made
AT = "{at}"         # ... and the step that fork starts from
RESULT = "{result}"  # ... or what its last step said (an undo a policy carries out itself)


def is_user(d: Decision) -> bool:
    """True for a decision the user made with a key."""
    return d.by == USER


__all__ = ["AT", "CHILD", "DONE", "RESULT", "Action", "Executor", "Step", "Void", "Wait"]
