"""The one-line status: study, trial counts, zoom and stage, GPU when one is visible."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui_tuner.ui.model import Snapshot


def status_text(snap: Snapshot | None) -> Text:
    """'mlp-digits  running 2  queued 5  done 7  failed 1  10/20 started  k 2 auto · 1,810 steps/s  zoom 1
    stage 4  GPU 41% 3.1/80G' (k only when auto-k chooses it or it was fixed by hand)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if snap is None:
        text.append("opening study…", style="dim")
        return text
    text.append(f" {snap.name} ", style="bold reverse")
    running, paused = snap.count("running"), snap.count("paused")
    text.append(f"  running {running}", style="bold green" if running else "")
    if paused:
        text.append(f" paused {paused}", style="bold yellow")
    text.append(f"  queued {snap.count('queued')}  done {snap.count('done')}")
    failed = snap.count("failed") + snap.count("diverged")
    if failed:
        text.append(f"  failed {failed}", style="bold red")
    started = sum(n for _, n in snap.counts) - snap.count("queued")
    text.append(f"  {started}/{snap.budget} started", style="dim")
    if snap.k:
        text.append(f"  {snap.k}", style="bold magenta")
    text.append(f"  zoom {snap.zoom}  stage {snap.stage}")
    if snap.gpu:
        text.append(f"  {snap.gpu}", style="cyan")
    return text


class StatusLine(Static):
    """The status line at the top of the main screen."""

    def show(self, snap: Snapshot | None) -> None:
        """Draw the status of this snapshot."""
        text = status_text(snap)
        if text != self.content:
            self.update(text, layout=False)
