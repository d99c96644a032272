#!/usr/bin/env python3
"""The gradient of the logistic loss on dask arrays: NumPy in memory against dask on a local
cluster of 1 and 2 workers, the size of the task graph of the gradients, and symdiff's time
over a hand-written dask gradient (target: at most 1.2x).

Data: X of ``--rows`` x 20 float64 (10^7 rows, 1.6 GB, by default), y of 0/1 labels, generated
in chunks of ``--chunk`` rows by ``da.random`` and persisted on the workers (the time measured is
the gradient's, not the data's), and gathered once for the NumPy run. Parameters are NumPy
arrays. A dask gradient's time is ``dask.compute(*grad(w, b, X, y))``: building the graph (the
call of the generated code) plus computing both gradients as one graph; the median of
``--repeat`` runs after one warm-up.

    python3 benchmarks/bench_dask.py                    # 10^7 rows (about a minute, 4 GB of memory)
    python3 benchmarks/bench_dask.py --rows 1000000     # a quick run
    python3 benchmarks/bench_dask.py --write            # and put the tables in benchmarks/RESULTS.md

``--write`` replaces this script's section of ``benchmarks/RESULTS.md`` (between its marker
comments; ``bench_suite.py`` keeps it when it rewrites the file), or appends one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

import symdiff

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_suite import git_state, write_section  # noqa: E402  (a sibling script, not a package)

SECTION = "bench_dask.py"
COLS = 20
OVERHEAD_TARGET = 1.2


def logistic_loss(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


def hand_gradient(w, b, X, y):
    """The gradient of :func:`logistic_loss` as a person writes it (NumPy API: NumPy or dask)."""
    z = X @ w + b
    r = (1.0 / (1.0 + np.exp(-z)) - y) / y.shape[0]
    return r @ X, r.sum()


def hand_gradient_stable(w, b, X, y):
    """The same, with the sigmoid written to be safe from overflow as JAX's and autograd's rules of
    ``np.logaddexp`` write it (``exp(z - logaddexp(0, z))``), which costs a ``logaddexp`` more per
    element than ``1 / (1 + exp(-z))``. (symdiff's rule is ``1 / (1 + exp(min(-z, 88)))``: safe too,
    at the cost of the hand-written one.)"""
    z = X @ w + b
    r = (np.exp(z - np.logaddexp(0.0, z)) - y) / y.shape[0]
    return r @ X, r.sum()


def timed(runs: list[Callable[[], object]], repeat: int) -> list[float]:
    """The median seconds of ``repeat`` runs of each of ``runs`` after one untimed warm-up,
    taking turns (a change in the machine's load falls on all of them alike)."""
    for run in runs:
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for run, spent in zip(runs, times):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def graph_sizes(results: tuple) -> tuple[int, int]:
    """The number of tasks in the graph of ``results`` (dask collections) as built, and after ``dask.optimize``."""
    import dask

    def tasks(collections: tuple) -> int:
        merged: dict = {}
        for collection in collections:  # (the graphs of two results share the forward sweep's keys)
            merged.update(dict(collection.__dask_graph__()))
        return len(merged)

    return tasks(results), tasks(dask.optimize(*results))


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def numpy_row(grad: Callable, w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray, repeat: int) -> tuple:
    """The table row of the NumPy run (the data in memory) and symdiff's time."""
    mine, hand, stable = timed([lambda: grad(w, b, X, y), lambda: hand_gradient(w, b, X, y),
                                lambda: hand_gradient_stable(w, b, X, y)], repeat)
    got, want = grad(w, b, X, y), hand_gradient(w, b, X, y)
    assert np.allclose(got[0], want[0], rtol=1e-9) and np.isclose(got[1], want[1], rtol=1e-9)
    return (f"| NumPy in memory | {_ms(mine)} | {_ms(hand)} | {mine / hand:.2f}x | {_ms(stable)} | "
            f"{mine / stable:.2f}x | | |"), mine


def dask_row(grad: Callable, w: np.ndarray, b: float, X: object, y: object, repeat: int, workers: int) -> tuple:
    """The table row of a dask run, symdiff's time, and whether its overhead met the target."""
    import dask

    call, = timed([lambda: grad(w, b, X, y)], repeat)
    mine, hand, stable = timed([lambda: dask.compute(*grad(w, b, X, y)),
                                lambda: dask.compute(*hand_gradient(w, b, X, y)),
                                lambda: dask.compute(*hand_gradient_stable(w, b, X, y))], repeat)
    sizes, hand_sizes = graph_sizes(grad(w, b, X, y)), graph_sizes(hand_gradient(w, b, X, y))
    got, want = dask.compute(grad(w, b, X, y), hand_gradient(w, b, X, y))
    assert np.allclose(got[0], want[0], rtol=1e-9) and np.isclose(got[1], want[1], rtol=1e-9)
    ratio = mine / hand
    verdict = "PASS" if ratio <= OVERHEAD_TARGET else "**MISS**"
    row = (f"| dask, {workers} worker{'s' if workers > 1 else ''} | {_ms(mine)} | {_ms(hand)} | "
           f"{ratio:.2f}x {verdict} (≤ {OVERHEAD_TARGET}x) | {_ms(stable)} | {mine / stable:.2f}x | {_ms(call)} | "
           f"{sizes[0]} / {sizes[1]}, {hand_sizes[0]} / {hand_sizes[1]} |")
    return row, mine, ratio <= OVERHEAD_TARGET


def run(rows: int, chunk: int, repeat: int, worker_counts: list[int]) -> tuple[str, bool]:
    """Measure everything; the Markdown tables and whether every overhead met its target."""
    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    grad = symdiff.grad(logistic_loss, argnums=(0, 1))
    w, b = np.linspace(-0.5, 0.5, COLS), 0.1
    lines = ["| run | symdiff grad | hand-written grad | symdiff / hand-written | hand-written, sigmoid by logaddexp "
             "| symdiff / that | graph call | tasks (built / optimized): symdiff, hand |",
             "|---|---:|---:|---|---:|---|---:|---|"]
    ok, numpy_time, dask_time = True, None, None
    for workers in worker_counts:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=False, dashboard_address=None) \
                as cluster, Client(cluster):
            rs = da.random.RandomState(0)
            X = rs.standard_normal((rows, COLS), chunks=(chunk, COLS))
            y = (rs.random_sample(rows, chunks=chunk) < 0.5).astype(float)
            X, y = dask.persist(X, y)
            if numpy_time is None:  # the same data, in memory
                row, numpy_time = numpy_row(grad, w, b, *dask.compute(X, y), repeat)
                lines.append(row)
            row, dask_time, met = dask_row(grad, w, b, X, y, repeat, workers)
            lines.append(row)
            ok = ok and met
    lines += ["", f"dask with {worker_counts[-1]} worker(s) takes {dask_time / numpy_time:.2f}x the time of NumPy "
              "in memory (symdiff's gradient)."]
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10 ** 7)
    parser.add_argument("--chunk", type=int, default=None, help="rows per chunk (default rows / 10)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--write", action="store_true", help="replace this script's section of --output")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md", metavar="PATH")
    opts = parser.parse_args(argv)
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        print("bench_dask.py needs dask: pip install 'dask[array,distributed]'", file=sys.stderr)
        return 0
    import dask

    chunk = opts.chunk or max(opts.rows // 10, 1)
    load_at_start = os.getloadavg()[0]
    text, ok = run(opts.rows, chunk, opts.repeat, [int(n) for n in opts.workers.split(",")])
    header = (f"## Gradients on dask arrays (`benchmarks/bench_dask.py`)\n\n"
              f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; symdiff git commit {git_state()}\n"
              f"- machine: {platform.platform()}, {os.cpu_count()} cores, 1-minute load average "
              f"{load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end; Python {platform.python_version()}, "
              f"NumPy {np.__version__}, dask {dask.__version__}\n"
              f"- command: `python benchmarks/bench_dask.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n"
              f"- workload: the gradient (w, b) of the logistic loss `np.mean(np.logaddexp(0.0, z) - y * z)`, "
              f"`z = X @ w + b`, X {opts.rows:,} x {COLS} float64 ({opts.rows * COLS * 8 / 1e9:.2f} GB) in chunks of "
              f"{chunk:,} rows, persisted on a `LocalCluster(threads_per_worker=1, processes=False)`; w, b NumPy; "
              f"median of {opts.repeat} runs. A dask time is `dask.compute(*grad(w, b, X, y))` (both gradients, "
              f"one graph); \"graph call\" is the call alone, which builds the graph and computes nothing; "
              f"tasks: the graph of both gradients, as built and after `dask.optimize`. The hand-written gradient "
              f"takes the sigmoid as `1 / (1 + np.exp(-z))`, and symdiff's rule of `np.logaddexp` as "
              f"`1 / (1 + np.exp(np.minimum(-z, 88.0)))` (no overflow); a second hand-written gradient takes it "
              f"as `np.exp(z - np.logaddexp(0.0, z))`, as JAX's and autograd's rules do\n")
    print(header + "\n" + text)
    if opts.write:
        write_section(opts.output, SECTION, header + "\n" + text)
        print(f"\nwrote {opts.output}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
