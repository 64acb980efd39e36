"""A detached tmux session on its own server socket, for the end-to-end tests: start a command,
type keys, read the screen, wait for what it shows."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from study_runs import kill_runs


class Tmux:
    """One detached tmux session on its own server socket (never the user's)."""

    def __init__(self, socket: Path, name: str = "e2e") -> None:
        self.base = ["tmux", "-S", str(socket)]
        self.name = name

    def start(self, command: str, cwd: Path, width: int = 100, height: int = 30,
              term: str = "xterm-256color") -> None:
        # TERM inside the pane is tmux's own unless the command sets it. A server still going away (its
        # last session just ended) refuses a new session for a moment: try again.
        argv = [*self.base, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                "-c", str(cwd), f"env TERM={term} {command}"]
        for _ in range(10):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode == 0:
                return
            time.sleep(0.3)
        raise AssertionError(f"tmux could not start a session: {done.stderr.strip()}")

    def screen_escapes(self) -> str:
        """The screen with its colour escapes."""
        return subprocess.run([*self.base, "capture-pane", "-p", "-e", "-t", self.name], capture_output=True,
                              text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        out = subprocess.run([*self.base, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-session", "-t", self.name], capture_output=True)

    def kill_server(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)

    def wait(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """Wait until the screen matches; fail with the last screen shown."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        text = ""
        while time.monotonic() < end:
            text = self.screen()
            m = rx.search(text)
            if m:
                return m
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {pattern!r}; the screen was:\n{text}")

    def wait_gone(self, pattern: str, timeout: float = 30.0) -> None:
        """Wait until the screen no longer matches (a dialog closed); fail with the last screen shown.

        After Escape, wait for this before the next key: a key sent while the terminal still holds
        the Escape reads as Alt+key.
        """
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        text = self.screen()
        while time.monotonic() < end:
            text = self.screen()
            if not rx.search(text):
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {pattern!r} to go; the screen was:\n{text}")


@contextlib.contextmanager
def terminal(tmp_path: Path, study_dir: Path, name: str = "e2e") -> Iterator[Tmux]:
    """A tmux session for a test; afterwards the terminal is gone and every run its study left is killed."""
    tmux = Tmux(tmp_path / "tmux.sock", name=name)
    try:
        yield tmux
    finally:
        tmux.kill()
        tmux.kill_server()
        kill_runs(study_dir)
