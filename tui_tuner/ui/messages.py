"""Messages from the back end to the app (the widgets' own messages live in the widgets)."""

from __future__ import annotations

from textual.message import Message


class SnapshotReady(Message):
    """A new snapshot is ready; posted from the back end's view thread.

    Replaceable: if the app has not drawn the last one yet, the new one takes its place, so a burst
    of updates costs one frame.
    """

    def can_replace(self, message: Message) -> bool:
        """Any pending SnapshotReady is superseded by this one."""
        return isinstance(message, SnapshotReady)
