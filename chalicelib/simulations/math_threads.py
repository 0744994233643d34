"""Numerical libraries run one thread per process wherever a simulation runs.

numpy's OpenBLAS starts a thread per core it sees, and a simulation's vector products
(``np.dot`` in option_pricing) then keep a second core spinning: measured here, 20 points of
200,000 paths took 0.10 s of wall time either way, but 0.20 s of CPU with two threads against
0.10 s with one. The local stage already runs one worker process per core, so extra threads
only oversubscribe it; a Lambda worker at 1,769 MB has the equivalent of one vCPU, and how many
cores its OpenBLAS sees there is not documented, so pinning one thread makes its billed time
the single-threaded time whichever way Lambda answers. ``sweep estimate`` times points under
the same rule, so its CPU seconds predict the workers' seconds.

Importing this module sets the variables, for this process and the children it starts; they
take effect only where numpy is not loaded yet: the local stage's worker processes (forked
from a fork server, or spawned, started after ``fanout.local_lambda`` imported this),
``sweeps.estimate`` (which imports this first), and each deployed function (the same
variables are in ``.chalice/config.json``, checked by a test). A variable the user has set
wins.
"""

from __future__ import annotations

import os

VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

for _name in VARIABLES:
    os.environ.setdefault(_name, "1")
