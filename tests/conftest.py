"""What every test process and every process a test starts share: compiled modules kept, one thread
for the maths libraries.

The suite starts hundreds of Python processes (trainers, the launch shim, the CLI, the model
worker), four test workers beside them on two cores. Where the environment sets
PYTHONDONTWRITEBYTECODE (this box's does), each of them compiled tui_tuner and the tests from
source again, and pytest rewrote every test module's asserts in each worker: a tenth of the
suite's CPU. Torch and the BLAS libraries start a thread per core in each process, which on a
shared box only makes them wait on each other; the model worker pins itself to one thread for the
same reason. Both are set here, before the workers are started (they inherit this environment).
"""

from __future__ import annotations

import os
import sys

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
