#!/usr/bin/env python3
"""Core benchmark: Rosenbrock on Python floats, the XOR 2-2-1 MLP and the 4096x256-512-10
softmax-CE MLPs (tanh and ReLU) -- a subset of the suite in ``bench_suite.py``, which holds
the workloads and the timing code (same options; writes no file unless ``--output`` is given).

    python benchmarks/bench_core.py            # the four core workloads, printed
    python benchmarks/bench_core.py --quick    # smoke test
"""

import sys

from bench_suite import main

CORE = "rosen-scalar,xor,mlp,mlp-relu"

if __name__ == "__main__":
    sys.exit(main(["--only", CORE, *sys.argv[1:]], title="symdiff core benchmark"))
