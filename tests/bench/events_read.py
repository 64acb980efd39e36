"""CPU a line of the runner's reading of events.jsonl (not collected by pytest).

    .venv/bin/python tests/bench/events_read.py

Writes 80,000 metrics lines as the trainer API writes them (loss, val_loss, wall), then reads them
back through RunReader into a RunState in poll-sized chunks (8 KB, about 50 ms of a run reporting
1,000 steps a second), and prints the best of three: microseconds of CPU a line. With 8 runs at
1,000 steps/s the runner reads 8,000 lines a second, so 1 us a line is 0.8 % of a core.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_tuner.runtime.reader import RunReader  # noqa: E402
from tui_tuner.runtime.run_state import Objective, RunState  # noqa: E402

LINES = 80_000


def main() -> int:
    """Write the lines, read them three times, print the best figure."""
    with tempfile.TemporaryDirectory(prefix="events-read-") as d:
        run_dir = Path(d)
        with open(run_dir / "events.jsonl", "w") as f:
            for i in range(1, LINES + 1):
                loss = 1.0 / (1.0 + 0.01 * i) + 0.01 * math.sin(i)
                f.write(json.dumps({"step": i, "metrics": {"loss": loss, "val_loss": loss * 1.1,
                                                           "wall": 1.7e9 + i / 1000}, "t": 1.7e9 + i / 1000},
                                   separators=(",", ":")) + "\n")
        best = math.inf
        for _ in range(3):
            state = RunState(1, Objective("val_loss", lambda a, b: a < b), {})
            reader = RunReader(run_dir)
            reader.events.max_bytes = 8 << 10
            t0 = time.thread_time()
            while True:
                reader.read(state, 0.0)
                if not reader.events.behind:
                    break
            best = min(best, time.thread_time() - t0)
            assert state.reports == LINES
    print(f"{best / LINES * 1e6:.2f} us of CPU a line ({LINES:,} lines, best of 3); "
          f"8 runs at 1,000 steps/s: {best / LINES * 8000 * 100:.1f} % of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
