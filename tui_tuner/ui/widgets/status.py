"""The one-line status: study, trial counts, budget, what runs on its own, zoom and stage, GPU when one is visible."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui_tuner.ui.model import Snapshot

WIDE = 120   # columns from which the line spells out "started"
COUNTS = (("running", "bold green"), ("paused", "bold yellow"), ("queued", ""), ("done", ""), ("stopped", ""))


def status_text(snap: Snapshot | None, width: int = WIDE) -> Text:
    """'mlp-digits  running 2  waiting 1  queued 5  done 7  stopped 3  failed 1  10/20 started  early stop asha 11·33·99
    · autopilot off  k 2 auto · 1,810 steps/s  zoom 1  stage 4  GPU 41% 3.1/80G'.

    With `[study] devices`, each device's runs/k ('GPU 0:2/2 1:1/2'; from 120 columns with its memory,
    'GPU 0:2/2 5.3/80G 1:1/2 2.0/80G') come after k and stand for the GPU part at the end.

    Counts of zero are left out. What runs on its own (early stopping, the autopilot, a fork waiting for
    its checkpoint) comes before k, zoom, stage and GPU: at 80 columns the end of the line is what is
    cut. k only when auto-k chooses it or it was fixed by hand.
    """
    text = Text(no_wrap=True, overflow="ellipsis")
    if snap is None:
        text.append("opening study…", style="dim")
        return text
    text.append(f" {snap.name} ", style="bold reverse")
    # A cluster job in Slurm's queue is a running trial that has not started yet: counted apart.
    waiting = sum(1 for t in snap.trials if t.waiting)
    for status, style in COUNTS:
        n = snap.count(status) - (waiting if status == "running" else 0)
        if n:
            text.append(f"  {status} {n}", style=style)
        if status == "running" and waiting:
            text.append(f"  waiting {waiting}", style="yellow")
    failed = snap.count("failed") + snap.count("diverged")
    if failed:
        text.append(f"  failed {failed}", style="bold red")
    started = sum(n for _, n in snap.counts) - snap.count("queued")
    text.append(f"  {started}/{snap.budget}" + (" started" if width >= WIDE else ""), style="dim")
    # Always shown: the user must never wonder whether something acts on the runs by itself.
    text.append("  early stop ", style="dim")
    text.append(snap.early_stop, style="bold cyan" if snap.early_stop != "off" else "")
    text.append(" · autopilot ", style="dim")
    text.append(snap.autopilot, style="bold cyan" if snap.autopilot != "off" else "")
    for pending in snap.pending:
        text.append(f"  {pending}…", style="bold yellow")
    if snap.k:
        text.append(f"  {snap.k}", style="bold magenta")
    if snap.devices:
        # Each device's runs/k, and its memory on a wide terminal: the GPU part, device by device.
        each = " ".join(d.text(memory=width >= WIDE) for d in snap.devices)
        text.append(f"  GPU {each}", style="cyan")
    text.append(f"  zoom {snap.zoom}  stage {snap.stage}")
    if snap.gpu and not snap.devices:
        text.append(f"  {snap.gpu}", style="cyan")
    return text


class StatusLine(Static):
    """The status line at the top of the main screen."""

    def show(self, snap: Snapshot | None) -> None:
        """Draw the status of this snapshot."""
        text = status_text(snap, self.size.width or WIDE)
        if text != self.content:
            self.update(text, layout=False)
