#!/usr/bin/env python3
"""Compile-time scaling: how the time to a first gradient grows with the size of the function.

The script generates Python functions of N statements (N in 20, 50, 100, 200, 500, 1000, 2000,
5000) in three families, registers their source with ``linecache`` (symdiff reads a function's
source, and these have no file), and times a fresh ``symdiff.grad(f, argnums=(0, 1))`` plus its
first call -- parsing, lowering, the passes, reverse mode, code generation, ``compile`` and one
evaluation -- in a process that has compiled one small function of each family before:

* ``straight``: straight-line array code on ``x, y`` of shape (5,), ``a1 = np.sin(a0) * x``,
  ``a2 = a1 + np.tanh(y)``, ... (ufuncs mixed with arithmetic, each reading the previous value);
* ``if``: ``if s > c: s = s * 0.9 + math.sin(x)`` / ``else: s = s + y * 0.1`` on Python floats,
  each branch reading the previous result;
* ``loops``: blocks of ``for i in range(3): for j in range(2): s = s + np.sin(x * i + j) * y``
  followed by ``s = s * 0.5``, on arrays.

For each size it prints the time, the milliseconds per statement and the growth ratio
``(time(N) / time(N_prev)) / (N / N_prev)`` (1.0 is linear), as a Markdown table, against the
targets: at most 1 ms per statement, growth at most 1.3.

    python benchmarks/compile_scaling.py                  # every size up to 5000 (a few minutes)
    python benchmarks/compile_scaling.py --quick          # 20 to 500: a smoke test
    python benchmarks/compile_scaling.py --max 1000       # sizes up to 1000
    python benchmarks/compile_scaling.py --only straight,if
    python benchmarks/compile_scaling.py --write          # and put the table in benchmarks/RESULTS.md

``--write`` replaces this script's section of ``benchmarks/RESULTS.md`` (between its marker
comments; ``bench_suite.py`` keeps it when it rewrites the file), or appends one.
"""

from __future__ import annotations

import argparse
import gc
import linecache
import math
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

DEFAULT_OUTPUT = HERE / "RESULTS.md"
SECTION = "compile_scaling.py"
SIZES = (20, 50, 100, 200, 500, 1000, 2000, 5000)
QUICK_SIZES = (20, 50, 100, 200, 500)
PER_STATEMENT_TARGET = 1e-3  # seconds per statement
GROWTH_TARGET = 1.3  # (time ratio) / (size ratio) between consecutive sizes


def straight_line(n: int) -> list[str]:
    """The body of a straight-line array function of ``n`` statements: each reads the last."""
    lines = ["a0 = x * y"]
    for i in range(1, n - 1):
        j = i - 1
        lines.append(f"a{i} = " + (f"np.sin(a{j}) * x", f"a{j} + np.tanh(y)", f"a{j} * 0.5 + x",
                                   f"np.exp(-a{j} * a{j})")[i % 4])
    lines.append(f"return np.sum(a{n - 2})")
    return lines


def if_chain(n: int) -> list[str]:
    """The body of a function of ``n`` lines: a chain of ``if``/``else`` on a Python float."""
    lines = ["s = x * y"]
    k = 0
    while len(lines) + 4 < n:
        lines += [f"if s > {(k % 7) / 7 - 0.5:.2f}:", "    s = s * 0.9 + math.sin(x)", "else:",
                  "    s = s + y * 0.1"]
        k += 1
    lines.append("return s")
    return lines


def nested_loops(n: int) -> list[str]:
    """The body of a function of ``n`` lines: blocks of two nested ``for`` loops over arrays."""
    lines = ["s = x * 0.0"]
    while len(lines) + 4 < n:
        lines += ["for i in range(3):", "    for j in range(2):", "        s = s + np.sin(x * i + j) * y",
                  "    s = s * 0.5"]
    lines.append("return np.sum(s)")
    return lines


FAMILIES: dict[str, tuple[str, Callable[[int], list[str]], Callable[[], tuple]]] = {
    "straight": ("straight-line array code", straight_line,
                 lambda: (np.linspace(0.0, 1.0, 5), np.linspace(1.0, 2.0, 5))),
    "if": ("if/else chain on Python floats", if_chain, lambda: (0.3, 0.7)),
    "loops": ("nested for loops on arrays", nested_loops,
              lambda: (np.linspace(0.0, 1.0, 5), np.linspace(1.0, 2.0, 5))),
}


def make_function(family: str, n: int, serial: int) -> Callable:
    """A fresh function ``f(x, y)`` of ``family`` with ``n`` statements (counting ``def`` and
    ``return``), its source registered with ``linecache`` under a name of its own."""
    body = FAMILIES[family][1](n)
    source = "\n".join(["def f(x, y):"] + ["    " + line for line in body]) + "\n"
    filename = f"<compile_scaling {family} {n} #{serial}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace = {"np": np, "math": math}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- generated benchmark code
    return namespace["f"]


def first_gradient(family: str, n: int, repeats: int) -> float:
    """Median seconds of a fresh ``symdiff.grad(f, argnums=(0, 1))`` and its first call."""
    args = FAMILIES[family][2]()
    times = []
    for r in range(repeats):
        f = make_function(family, n, r)
        gc.collect()
        start = time.perf_counter()
        symdiff.grad(f, argnums=(0, 1))(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def repeats_for(n: int) -> int:
    """More repeats of the small sizes, where one run is short and noisy."""
    return 5 if n <= 100 else 3 if n <= 500 else 1


def measure(family: str, sizes: list[int]) -> list[tuple[int, float | None, str]]:
    """``(n, seconds, error)`` per size; after an error the larger sizes are skipped."""
    rows: list[tuple[int, float | None, str]] = []
    for n in sizes:
        print(f"{family} {n} ...", file=sys.stderr, flush=True)
        try:
            rows.append((n, first_gradient(family, n, repeats_for(n)), ""))
        except Exception as error:  # noqa: BLE001 -- reported in the table
            rows.append((n, None, f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"))
            break
    return rows


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


def table(results: dict[str, list[tuple[int, float | None, str]]]) -> str:
    """One Markdown table of every family and size."""
    out = ["| family | statements | time to first gradient | ms / statement | growth vs previous size |",
           "|---|---:|---:|---:|---|"]
    for family, rows in results.items():
        previous: tuple[int, float] | None = None
        for n, seconds, error in rows:
            name = FAMILIES[family][0]
            if seconds is None:
                out.append(f"| {name} | {n} | FAILED: {error} | | |")
                continue
            per = seconds / n
            growth = ""
            if previous is not None:
                ratio = (seconds / previous[1]) / (n / previous[0])
                growth = f"{ratio:.2f} {verdict(ratio <= GROWTH_TARGET)}"
            out.append(f"| {name} | {n} | {seconds * 1e3:.1f} ms "
                       f"| {per * 1e3:.3f} {verdict(per <= PER_STATEMENT_TARGET)} | {growth} |")
            previous = (n, seconds)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, and with ``--write`` put it in RESULTS.md; 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes " + ", ".join(map(str, QUICK_SIZES)))
    parser.add_argument("--max", type=int, default=None, metavar="N", help="only sizes up to N")
    parser.add_argument("--only", default=None, metavar="FAMILIES",
                        help="comma-separated families (" + ", ".join(FAMILIES) + ")")
    parser.add_argument("--write", action="store_true", help="replace this script's section of --output")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="PATH",
                        help="the file --write writes (default benchmarks/RESULTS.md)")
    opts = parser.parse_args(argv)
    families = opts.only.split(",") if opts.only else list(FAMILIES)
    if set(families) - set(FAMILIES):
        parser.error(f"unknown families: {', '.join(sorted(set(families) - set(FAMILIES)))}")
    sizes = [n for n in (QUICK_SIZES if opts.quick else SIZES) if opts.max is None or n <= opts.max]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))  # (the default: symdiff must cope with it)
    for family in families:  # (untimed: the first compile in a process also fills symdiff's tables)
        first_gradient(family, 20, 1)
    load_at_start = os.getloadavg()[0]
    results = {family: measure(family, sizes) for family in families}
    text = table(results)
    print(text)
    if opts.write:
        header = (f"## Compile-time scaling (`benchmarks/compile_scaling.py`)\n\n"
                  f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; symdiff git commit {git_state()}\n"
                  f"- machine: {platform.platform()}, {os.cpu_count()} cores, 1-minute load average "
                  f"{load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end; Python {platform.python_version()}\n"
                  f"- command: `python benchmarks/compile_scaling.py {' '.join(argv or sys.argv[1:])}`\n"
                  f"- time to first gradient: a fresh `symdiff.grad(f, argnums=(0, 1))` and its first call "
                  f"(median of 5 runs up to 100 statements, 3 up to 500, then 1); targets: ≤ 1 ms per "
                  f"statement, growth ≤ {GROWTH_TARGET} (time ratio over size ratio, 1.0 is linear)\n")
        write_section(opts.output, SECTION, header + "\n" + text)
        print(f"\nwrote {opts.output}", file=sys.stderr)
    missed = any(seconds is None or seconds / n > PER_STATEMENT_TARGET for rows in results.values()
                 for n, seconds, _ in rows)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
