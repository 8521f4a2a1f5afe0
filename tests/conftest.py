"""Shared fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One thread for TensorFlow's op kernels in each process (the test workers and the processes
# they start inherit it): the suite runs one worker per core, and the tensors here are small, so
# a second thread per worker only contends for the other worker's core (the whole suite took 15%
# less CPU time and wall time with one). The inter-op pool keeps its default: a multi-worker
# server needs more than one thread there, or it can wait forever for one.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
# The suite sees optreg's own plugins only, whatever is installed on the machine; tests of
# installed plugins run them in virtual environments of their own.
os.environ["OPTREG_DISABLE_PLUGIN_AUTOLOAD"] = "1"
for variable in ("OPTREG_PLUGINS", "OPTREG_SPEC_PATH", "OPTREG_STRICT_PLUGINS", "OPTREG_DEBUG"):
    os.environ.pop(variable, None)

from collections import Counter

import numpy as np
import pytest

from tests.helpers import SEED

#: The files that take longest, longest first (seconds of one worker: ``--durations=0`` of a
#: whole run on the shared 2-core machine, scaled to its unloaded speed). Under
#: ``--dist loadfile`` a worker takes whole files in collection order (``--no-loadscope-reorder``
#: in pyproject.toml), so these start first and the short files fill in at the end: no worker
#: is left running one long file while the other sits idle. Files not named here follow, most
#: tests first (xdist's own order).
LONGEST_FIRST = (
    "test_optimizers.py",  # ~140 s for 65 optimizers: references, XLA against op by op, bench sweeps
    "test_optimizer_protocol.py",  # ~110 s: the protocol for every built-in
    "test_checkpoint.py",  # ~105 s
    "test_keras_models.py",  # ~75 s
    # ~70 s, mostly two processes that train every built-in (~180 s while each step made a
    # distributed iterator: estimated from its CPU time, 2.9x less in its module fixture)
    "test_distribute.py",
    "test_nonfinite.py",  # ~50 s
    "test_sparse.py",  # ~40 s (estimated), a MirroredStrategy process
    # ~32 s (~38 s while the gather check of every built-in compiled XLA twice per optimizer:
    # that check took 35-40 CPU seconds, now 11-13, with -n 0 on the loaded machine)
    "test_options.py",
    "test_plugin_install.py",  # ~25 s, builds two venvs
    # ~25 s, a two-process cluster and two more processes (its single-device runs, op by op:
    # 5.0 -> 1.2 CPU seconds of the test process, with -n 0 on the loaded machine)
    "test_multiworker.py",
    "test_muon.py",  # ~24 s
    "test_properties.py",  # ~22 s
    "test_keras.py",  # ~21 s
    "test_install.py",  # ~15 s, builds a venv
    "test_bench_rankings.py",  # ~15 s (estimated)
    "test_bench.py",  # ~14 s
    "test_bench_files.py",  # ~12 s (estimated)
    "test_bench_outputs.py",  # ~12 s
    "test_sweeps.py",  # ~12 s
    "test_slots_per_variable.py",  # ~10 s (estimated), two .keras fits
    "test_workloads.py",  # ~10 s (estimated), one bench through the command line
    "test_bench_statuses.py",  # ~8 s
    "test_lookahead.py",  # ~6 s (8.9 -> 6.9 CPU seconds with -n 0 on the loaded machine)
)


def pytest_collection_modifyitems(items):
    """Reorder whole files, longest first (:data:`LONGEST_FIRST`); the tests of a file keep
    their order."""
    counts = Counter(item.path.name for item in items)

    def rank(item):
        name = item.path.name
        place = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        return place, -counts[name], str(item.path)

    items.sort(key=rank)


@pytest.fixture
def rng():
    """A seeded NumPy generator, so every run sees the same random tensors."""
    return np.random.default_rng(SEED)
