#!/usr/bin/env python3
"""Core benchmark: forward pass vs hand-written NumPy gradient vs ``symdiff.grad``.

For each workload this script, in one process:

1. checks (untimed) that symdiff's gradient matches the hand-written one
   (``np.testing.assert_allclose``, rtol=1e-6) and has the argument's type and shape;
2. times the plain loss (forward), the hand-written gradient and the symdiff gradient with
   ``timeit``: each function gets its own loop count N (chosen so one repeat takes about
   0.15 s), the repeats of the three functions are interleaved (rotating order), and the
   best (min) repeat is kept;
3. times "time to first gradient": constructing a fresh ``symdiff.grad(...)`` object and
   making its first call (parse + lower + reverse + codegen + compile + one evaluation).

It prints a Markdown table, and writes it with a machine header to ``--output`` (default
``benchmarks/RESULTS.md`` when run without ``--quick``).

    python benchmarks/bench_core.py            # full run, writes benchmarks/RESULTS.md
    python benchmarks/bench_core.py --quick    # smoke test, writes nothing
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import signal
import subprocess
import sys
import time
import timeit
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

import symdiff

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "RESULTS.md"
RTOL = 1e-6

# ============================================================================ workloads
# The loss functions are what symdiff differentiates (it reads their source, so they must
# stay plain top-level functions in this file). Each ``*_grad_hand`` is the gradient as a
# careful person writes it: one forward pass keeping the intermediates it needs, the usual
# closed forms (sigmoid' = s(1-s), d BCE/dlogit = p - y, d softmax-CE/dz = softmax - Y),
# no loss value computed, no in-place/``out=`` tricks.


# ---- (a) XOR: 2-2-1 sigmoid MLP, binary cross-entropy on the 4 XOR points

def xor_loss(W1, b1, W2, b2, X, y):
    h = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    p = 1.0 / (1.0 + np.exp(-(h @ W2 + b2)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def xor_grad_hand(W1, b1, W2, b2, X, y):
    h = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    p = 1.0 / (1.0 + np.exp(-(h @ W2 + b2)))
    dz2 = (p - y) / y.shape[0]                 # d loss / d output logit
    dz1 = (dz2[:, None] * W2) * (h * (1.0 - h))  # back through W2 and the hidden sigmoid
    return X.T @ dz1, dz1.sum(axis=0), dz2 @ h, dz2.sum(keepdims=True)


def make_xor(rng: np.random.Generator) -> tuple:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    W1 = rng.normal(size=(2, 2))
    b1 = rng.normal(size=2) * 0.1
    W2 = rng.normal(size=2)
    b2 = np.array([0.1])
    return W1, b1, W2, b2, X, y


# ---- (b) MLP 4096x256 -> 512 (tanh) -> 10, softmax cross-entropy with one-hot labels
# symdiff has no derivative rule for np.max, so log-softmax is computed without the max
# shift (safe here: the logits of this small random init are O(1)).

def mlp_loss(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / X.shape[0]


def mlp_grad_hand(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    e = np.exp(h @ W2 + b2)
    dz = (e / e.sum(axis=1, keepdims=True) - Y) / X.shape[0]  # (softmax - Y) / n
    da = (dz @ W2.T) * (1.0 - h * h)                           # back through tanh
    return X.T @ da, da.sum(axis=0), h.T @ dz, dz.sum(axis=0)


# ---- (b') the same MLP with a ReLU hidden layer, np.maximum(z, 0)

def mlp_relu_loss(W1, b1, W2, b2, X, Y):
    h = np.maximum(X @ W1 + b1, 0.0)
    z = h @ W2 + b2
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / X.shape[0]


def mlp_relu_grad_hand(W1, b1, W2, b2, X, Y):
    h = np.maximum(X @ W1 + b1, 0.0)
    e = np.exp(h @ W2 + b2)
    dz = (e / e.sum(axis=1, keepdims=True) - Y) / X.shape[0]
    da = (dz @ W2.T) * (h > 0.0)
    return X.T @ da, da.sum(axis=0), h.T @ dz, dz.sum(axis=0)


def make_mlp(rng: np.random.Generator, n: int = 4096, d: int = 256, hidden: int = 512,
             classes: int = 10) -> tuple:
    X = rng.normal(size=(n, d))
    labels = rng.integers(0, classes, size=n)
    Y = np.eye(classes)[labels]                       # one-hot, (n, classes)
    W1 = rng.normal(size=(d, hidden)) / math.sqrt(d)
    b1 = rng.normal(size=hidden) * 0.01
    W2 = rng.normal(size=(hidden, classes)) / math.sqrt(hidden)
    b2 = rng.normal(size=classes) * 0.01
    return W1, b1, W2, b2, X, Y


# ---- (c) Rosenbrock on Python floats

def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def rosenbrock_grad_hand(x, y):
    t = 200.0 * (y - x * x)
    return -2.0 * (1.0 - x) - 2.0 * x * t, t


@dataclass
class Workload:
    key: str
    name: str
    loss: Callable
    hand: Callable
    argnums: tuple
    make_args: Callable[[np.random.Generator], tuple]
    target: float  # symdiff/hand-written ratio we are tracking
    large: bool = False  # slow per call: fewer repeats


WORKLOADS = [
    Workload("a", "(a) XOR 2-2-1 sigmoid MLP, BCE", xor_loss, xor_grad_hand, (0, 1, 2, 3),
             make_xor, 1.5),
    Workload("b", "(b) MLP 4096x256-512(tanh)-10, softmax CE", mlp_loss, mlp_grad_hand,
             (0, 1, 2, 3), make_mlp, 1.1, large=True),
    Workload("b'", "(b') MLP 4096x256-512(relu)-10, softmax CE", mlp_relu_loss,
             mlp_relu_grad_hand, (0, 1, 2, 3), make_mlp, 1.1, large=True),
    Workload("c", "(c) Rosenbrock on Python floats", rosenbrock, rosenbrock_grad_hand, (0, 1),
             lambda rng: (-1.2, 1.0), 1.5),
]

# ============================================================================ timing


def make_timer(fn: Callable, args: tuple) -> timeit.Timer:
    """A Timer for ``fn(a0, a1, ...)`` with the arguments as globals (no ``*args`` or lambda
    overhead, which would blur the comparison on microsecond workloads)."""
    names = [f"a{i}" for i in range(len(args))]
    namespace: dict[str, Any] = dict(zip(names, args))
    namespace["fn"] = fn
    return timeit.Timer(f"fn({', '.join(names)})", globals=namespace)


def calibrate(timer: timeit.Timer, target: float, min_number: int = 1) -> int:
    """Loop count N (at least ``min_number``) so that one repeat of N calls takes about
    ``target`` seconds."""
    timer.timeit(1)  # warm-up (first-touch allocations, caches)
    n = 1
    while True:
        t = timer.timeit(n)
        if t >= target / 5:
            return max(min_number, round(n * target / t))
        n *= 2 if t <= 0 else min(10, max(2, math.ceil(target / 5 / t)))


def measure(timers: dict[str, timeit.Timer], repeats: int, target: float,
            min_number: int = 1) -> tuple[dict, dict]:
    """Best seconds per call of each timer; the repeats of all timers are interleaved, in an
    order that rotates every repeat."""
    numbers = {k: calibrate(t, target, min_number) for k, t in timers.items()}
    best = {k: math.inf for k in timers}
    keys = list(timers)
    for r in range(repeats):
        shift = r % len(keys)
        for k in keys[shift:] + keys[:shift]:
            best[k] = min(best[k], timers[k].timeit(numbers[k]) / numbers[k])
    return best, numbers


def first_gradient(w: Workload, args: tuple) -> tuple[float, Any, Any]:
    """Seconds to construct a fresh ``symdiff.grad`` and make its first call."""
    t0 = time.perf_counter()
    g = symdiff.grad(w.loss, argnums=w.argnums)
    out = g(*args)
    return time.perf_counter() - t0, g, out


class CompileTimeout(Exception):
    pass


def with_timeout(seconds: float, fn: Callable, *args: Any) -> Any:
    """``fn(*args)``, raising CompileTimeout after ``seconds`` (SIGALRM; no limit where that is
    unavailable). Keeps a symdiff that loops while compiling from hanging the whole run."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        return fn(*args)

    def expire(signum: int, frame: Any) -> None:
        raise CompileTimeout(f"no gradient after {seconds:g} s (symdiff.grad + first call); "
                             "stopped (see --compile-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ============================================================================ checking


def check_gradients(got: Any, expected: Any, args: tuple, argnums: tuple) -> None:
    """symdiff's gradients equal the hand-written ones and have their arguments' types/shapes."""
    if not isinstance(got, tuple) or len(got) != len(expected):
        raise AssertionError(f"expected a tuple of {len(expected)} gradients, got {type(got).__name__}")
    for i, (g, e, argnum) in enumerate(zip(got, expected, argnums)):
        arg = args[argnum]
        if isinstance(arg, np.ndarray):
            if not isinstance(g, np.ndarray) or g.shape != arg.shape:
                raise AssertionError(f"gradient {i}: expected ndarray of shape {arg.shape}, got "
                                     f"{type(g).__name__} {np.shape(g)}")
        elif type(g) is not type(arg):
            raise AssertionError(f"gradient {i}: expected {type(arg).__name__}, got {type(g).__name__}")
        np.testing.assert_allclose(g, e, rtol=RTOL, err_msg=f"gradient {i} (argnum {argnum})")


def _same(fn: Callable, args: tuple, reference: Any) -> bool:
    try:
        out = fn(*args)
        return all(np.array_equal(a, b) for a, b in zip(out, reference))
    except Exception:  # noqa: BLE001 - diagnostic only
        return False


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ============================================================================ running


@dataclass
class Row:
    workload: Workload
    forward: float = math.nan
    hand: float = math.nan
    symdiff: float = math.nan
    direct: float = math.nan  # the generated function (from .source) called without dispatch
    first: float = math.nan  # warm: min over fresh grad objects
    first_cold: float = math.nan  # the very first grad object for this workload in the process
    loops: dict = field(default_factory=dict)
    error: str | None = None


def run_workload(w: Workload, quick: bool, rng: np.random.Generator, compile_timeout: float = 30.0) -> Row:
    row = Row(w)
    args = w.make_args(rng)
    if quick:
        repeats, target, first_repeats, min_number = 2, 0.01, 1, 1
    elif w.large:  # ~50 ms per gradient: 7 repeats of a few (>= 3) calls
        repeats, target, first_repeats, min_number = 7, 0.15, 3, 3
    else:
        repeats, target, first_repeats, min_number = 7, 0.15, 5, 1

    # Correctness first, untimed (apart from the cold time-to-first-gradient it yields).
    value = w.loss(*args)
    if not np.isfinite(value):
        raise RuntimeError(f"{w.name}: the loss is not finite ({value})")
    expected = w.hand(*args)
    g = None
    try:
        row.first_cold, g, got = with_timeout(compile_timeout, first_gradient, w, args)
        check_gradients(got, expected, args, w.argnums)
    except Exception as exc:  # noqa: BLE001 - report any failure in the table, keep going
        row.error = one_line(exc)
        g = None

    timers = {"forward": make_timer(w.loss, args), "hand": make_timer(w.hand, args)}
    if g is not None:
        timers["symdiff"] = make_timer(g, args)
        compiled = _compiled_function(g, w.loss)
        if compiled is not None and _same(compiled, args, got):
            timers["direct"] = make_timer(compiled, args)
    best, row.loops = measure(timers, repeats, target, min_number)
    row.forward, row.hand = best["forward"], best["hand"]
    row.symdiff = best.get("symdiff", math.nan)
    row.direct = best.get("direct", math.nan)
    if g is not None:
        row.first = min(first_gradient(w, args)[0] for _ in range(first_repeats))
    row.loops = {k: (n, repeats) for k, n in row.loops.items()}
    return row


def _compiled_function(g: Any, loss: Callable) -> Callable | None:
    """The generated gradient as a plain function, rebuilt from the public ``g.source`` (for the
    dispatch-overhead diagnostic); None if that is not possible."""
    source = getattr(g, "source", None)
    if not isinstance(source, str):
        return None
    try:
        tree = compile(source, "<symdiff source>", "exec")
        namespace = dict(loss.__globals__)  # names the source lists as "from your code"
        exec(tree, namespace)  # noqa: S102 - symdiff's own generated code
        fn = namespace.get(getattr(g, "__name__", None)) or namespace.get(f"grad_{loss.__name__}")
        return fn if callable(fn) else None
    except Exception:  # noqa: BLE001 - diagnostic only
        return None


# ============================================================================ reporting


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError


def fmt_share(seconds: float) -> str:
    return fmt_time(seconds) if seconds > 0 else "within noise"


def table(rows: list[Row]) -> str:
    lines = ["| workload | forward | hand-written grad | symdiff grad | symdiff / hand-written "
             "| symdiff / forward | time to first grad |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        w = r.workload
        if r.error is not None:
            failed = "FAILED: " + r.error.replace("|", "\\|")
            cells = [w.name, fmt_time(r.forward), fmt_time(r.hand), failed, "FAILED", "—", "—"]
        else:
            ratio = r.symdiff / r.hand
            verdict = "PASS" if ratio <= w.target else "MISS"
            cells = [w.name, fmt_time(r.forward), fmt_time(r.hand), fmt_time(r.symdiff),
                     f"{ratio:.2f}x {verdict} (target ≤ {w.target}x)",
                     f"{r.symdiff / r.forward:.2f}x", fmt_time(r.first)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list[Row], quick: bool) -> str:
    out = ["Notes:",
           "- Times are per call: best of R repeats of N calls each (`timeit`, repeats of the "
           "functions interleaved); N×R per workload (forward / hand / symdiff): "
           + "; ".join(f"{r.workload.key}: " + " / ".join(f"{n}×{rep}" for n, rep in
                                                          (r.loops[k] for k in ("forward", "hand", "symdiff")
                                                           if k in r.loops)) for r in rows) + ".",
           f"- All symdiff gradients were checked against the hand-written ones "
           f"(`assert_allclose`, rtol={RTOL:g}) before timing; rows marked FAILED did not pass.",
           "- Time to first grad: `symdiff.grad(loss, argnums=...)` on a fresh object plus its first "
           "call (parse, IR, reverse mode, codegen, `compile`, one evaluation); best over fresh "
           "objects. Cold (first object in the process) / compile share (first grad minus one "
           "steady-state call): "
           + "; ".join(f"{r.workload.key}: {fmt_time(r.first_cold)} / {fmt_share(r.first - r.symdiff)}"
                       for r in rows if r.error is None) + ".",
           "- The symdiff column calls what `symdiff.grad` returns (argument-type dispatch, then the "
           "generated function). The generated function alone (`.source` compiled and called "
           "directly) takes: "
           + "; ".join(f"{r.workload.key}: {fmt_time(r.direct)} ({r.direct / r.hand:.2f}x hand-written)"
                       for r in rows if r.error is None and math.isfinite(r.direct)) + "."]
    if quick:
        out.append("- QUICK MODE (--quick): few, short repeats; numbers are noisy, for smoke testing only.")
    return "\n".join(out)


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return -1.0


LOAD_AT_START = _load()


def git_state() -> str:
    """``git describe`` of the checkout symdiff is imported from."""
    where = Path(symdiff.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(where), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "not a git checkout"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_header() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    blas = "unknown"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version')}"
    except Exception:  # noqa: BLE001 - older NumPy: leave it out
        pass
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = f"{LOAD_AT_START:.2f} at start, {_load():.2f} at end" if LOAD_AT_START >= 0 else "unknown"
    return "\n".join([
        "# symdiff core benchmark",
        "",
        f"- date: {now}",
        f"- machine: {platform.platform()} ({platform.machine()}), CPU: {cpu or 'unknown'}",
        f"- CPU count: {os.cpu_count()} (usable by this process: {usable}); "
        f"1-minute load average: {load}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- NumPy: {np.__version__} (BLAS: {blas})",
        f"- symdiff: {getattr(symdiff, '__version__', '?')} from "
        f"{Path(symdiff.__file__).resolve().parent} (git: {git_state()})",
        f"- command: `python {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="few short repeats (smoke test); writes no file unless --output is given")
    parser.add_argument("--output", metavar="PATH", type=Path, default=None,
                        help=f"also write the table with a machine header here "
                             f"(default without --quick: {DEFAULT_OUTPUT.relative_to(HERE.parent)})")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the workloads' data")
    parser.add_argument("--compile-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="mark a workload FAILED if symdiff.grad + its first call take longer "
                             "(default 30; 0 = no limit)")
    opts = parser.parse_args(argv)
    output = opts.output if opts.output is not None else (None if opts.quick else DEFAULT_OUTPUT)

    if LOAD_AT_START > 0.5 * (os.cpu_count() or 1):
        print(f"warning: the machine is busy (load average {LOAD_AT_START:.2f}); timings will be noisy",
              file=sys.stderr)
    rng = np.random.default_rng(opts.seed)
    rows = []
    for w in WORKLOADS:
        print(f"running {w.name} ...", file=sys.stderr, flush=True)
        rows.append(run_workload(w, opts.quick, rng, opts.compile_timeout))

    text = table(rows) + "\n\n" + notes(rows, opts.quick)
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(machine_header() + "\n\n" + text + "\n", encoding="utf-8")
        print(f"\nwrote {output}", file=sys.stderr)
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
