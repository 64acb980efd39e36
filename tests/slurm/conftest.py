"""The real single-node Slurm cluster the Slurm tests run against (.ci/slurm-cluster).

`slurm_cluster` (session) uses a cluster that is already up, or starts one (installing slurm-wlm and
munge from Debian if missing) and stops it at the end. Where it cannot (not root, no apt-get, a
daemon that will not start) every Slurm test skips with one line saying why, and the rest of the
suite runs; with TUI_TUNER_SLURM_REQUIRED=1 (for CI machines known to be able) it fails instead.
Select these tests with `-m slurm`, leave them out with `-m "not slurm"`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "slurm-cluster"
# Cold, the script installs the packages (a minute or two on a slow mirror); warm it takes seconds.
START_TIMEOUT = 280


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slurm: runs against a real single-node Slurm cluster (.ci/slurm-cluster)")


@dataclass(frozen=True)
class SlurmCluster:
    """A running test cluster: where its files are, and how to (re)start its daemons."""

    dir: Path
    conf: Path
    line: str  # what the script printed

    def pid(self, daemon: str) -> int:
        """The pid of one of the cluster's daemons (slurmctld, slurmd, munged)."""
        return int((self.dir / f"{daemon}.pid").read_text())

    def start(self) -> str:
        """Run the (idempotent) start again: it restarts whichever daemon is down and waits for the node."""
        r = _script("start", timeout=120)
        if r.returncode != 0:
            raise AssertionError(f".ci/slurm-cluster start failed: {_last_line(r)}")
        return r.stdout.strip()


def _env() -> dict[str, str]:
    return {**os.environ, "TUI_TUNER_SLURM_DIR": str(_dir())}


def _dir() -> Path:
    return Path(os.environ.get("TUI_TUNER_SLURM_DIR", "/tmp/tui-tuner-slurm"))


def _script(cmd: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), cmd], env=_env(), capture_output=True, text=True, timeout=timeout)


def _last_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = (r.stderr.strip() or r.stdout.strip() or f"exit status {r.returncode}").splitlines()
    return lines[-1]


def _cannot(why: str) -> None:
    if os.environ.get("TUI_TUNER_SLURM_REQUIRED") == "1":
        pytest.fail(f"Slurm cluster required but unavailable: {why}", pytrace=False)
    pytest.skip(f"no Slurm cluster: {why}")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A single-node Slurm cluster, up for the whole session; SLURM_CONF points every client at it."""
    if not sys.platform.startswith("linux"):
        _cannot("the test cluster runs on Linux only")
    if os.geteuid() != 0:
        _cannot("not root (slurmctld and slurmd run as root here)")
    started = False
    try:
        r = _script("status", timeout=60)
        if r.returncode != 0:
            r = _script("start", timeout=START_TIMEOUT)
            started = True
            if r.returncode != 0:
                _script("stop", timeout=60)  # whatever it did start
                _cannot(_last_line(r))
    except subprocess.TimeoutExpired as e:
        _cannot(f".ci/slurm-cluster took longer than {e.timeout:.0f}s")
    cluster = SlurmCluster(dir=_dir(), conf=_dir() / "slurm.conf", line=r.stdout.strip())
    with pytest.MonkeyPatch.context() as mp:
        # submitit and the tests call sbatch, squeue, scontrol and sacct as subprocesses: they inherit it.
        mp.setenv("SLURM_CONF", str(cluster.conf))
        yield cluster
    # A cluster someone else started (a developer's, or CI's) is theirs to stop.
    if started:
        _script("stop", timeout=60)
