#!/usr/bin/env python3
"""Second-order benchmarks: ``symdiff.hvp`` (Hessian-vector products) against ``symdiff.grad``, a
hand-written NumPy Hessian-vector product, JAX and autograd; and ``symdiff.hessian`` (the full
Hessian) against a hand-written one, ``jax.hessian`` and ``autograd.hessian``.

Same method as ``bench_suite.py`` (whose timing and reporting code this reuses): every result is
checked against the hand-written one before timing, then every implementation is timed with
``timeit``, repeats interleaved, best of 9; time to first Hessian-vector product is a fresh
``symdiff.hvp(...)`` plus its first call.

    python benchmarks/bench_hessian.py            # full run (a few minutes), writes its section of RESULTS.md
    python benchmarks/bench_hessian.py --quick    # smoke test, writes nothing
    python benchmarks/bench_hessian.py --only hvp:logreg-large,hessian:rosen-10
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import bench_suite
import numpy as np
from bench_suite import (
    LOAD_AT_START,
    WORKLOADS,
    autograd,
    blocking,
    fmt_ratio,
    fmt_share,
    fmt_time,
    jax,
    logreg,
    logreg_hand,
    machine_header,
    make_logreg,
    make_mlp,
    make_rosen_nd,
    make_timer,
    measure,
    mlp_hand,
    one_line,
    pin_malloc,
    rebind,
    rosen_nd,
    rosen_nd_hand,
    verdict,
    with_timeout,
)

import symdiff

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "RESULTS.md"  # a section of it, after bench_suite.py's tables
RTOL = 1e-6
GRAD_TARGET = 4.0       # symdiff hvp / symdiff grad
HAND_TARGET = 1.5       # symdiff hvp / hand-written hvp
FIRST_TARGET = 50e-3    # time to first Hessian-vector product, seconds

# ============================================================================ workloads
# Loss functions as a user writes them (symdiff reads their source); the n-dim Rosenbrock and
# logistic regression are bench_suite's. Each ``*_hvp_hand`` is the Hessian-vector product as
# a careful person writes it in NumPy: the gradient's formula differentiated along v by hand.


# ---- Rosenbrock on a pair of Python floats (one argument, so the Hessian is all of it)

def rosen_pair(p):
    x, y = p
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def rosen_pair_grad(p):
    x, y = p
    t = 200.0 * (y - x * x)
    return -2.0 * (1.0 - x) - 2.0 * x * t, t


def rosen_pair_hvp_hand(p, v):
    x, y = p
    vx, vy = v
    hxy = -400.0 * x
    return (2.0 - 400.0 * (y - x * x) + 800.0 * x * x) * vx + hxy * vy, hxy * vx + 200.0 * vy


def rosen_pair_hessian_hand(p):
    x, y = p
    hxy = -400.0 * x
    return np.array([[2.0 - 400.0 * (y - x * x) + 800.0 * x * x, hxy], [hxy, 200.0]])


# ---- n-dimensional Rosenbrock

def rosen_nd_hvp_hand(x, v):
    xm, vm = x[:-1], v[:-1]
    t = 200.0 * (x[1:] - xm * xm)
    dt = 200.0 * (v[1:] - 2.0 * xm * vm)
    hv = np.zeros_like(x)
    hv[:-1] = 2.0 * vm - 2.0 * vm * t - 2.0 * xm * dt
    hv[1:] += dt
    return hv


def rosen_nd_hessian_hand(x):
    xm = x[:-1]
    t = 200.0 * (x[1:] - xm * xm)
    off = -400.0 * xm
    diagonal = np.zeros_like(x)
    diagonal[:-1] = 2.0 - 2.0 * t + 800.0 * xm * xm
    diagonal[1:] += 200.0
    return np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)


# ---- logistic regression, L2-regularised (bench_suite's ``logreg``); labels y in {-1, 1}

def logreg_hvp_hand(w, X, y, lam, v):
    e = np.exp(-y * (X @ w))
    q = e / ((1.0 + e) * (1.0 + e))  # sigmoid' of the margin
    return (q * (X @ v)) @ X / X.shape[0] + (2.0 * lam) * v


def logreg_hessian_hand(w, X, y, lam):
    e = np.exp(-y * (X @ w))
    q = e / ((1.0 + e) * (1.0 + e))
    return (X.T * q) @ X / X.shape[0] + (2.0 * lam) * np.eye(w.shape[0])


# ---- MLP 4096x256 -> 512 (tanh) -> 10, softmax cross-entropy (bench_suite's ``mlp_loss``),
# its parameters in one dict so that the Hessian-vector product is with respect to all of them

def mlp_params_loss(params, X, Y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    z = h @ params["W2"] + params["b2"]
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / X.shape[0]


def mlp_params_grad(params, X, Y):
    dW1, db1, dW2, db2 = mlp_hand(params["W1"], params["b1"], params["W2"], params["b2"], X, Y)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_params_hvp_hand(params, X, Y, v):
    """Pearlmutter's R-operator by hand: the forward pass with the directional derivative of
    each intermediate alongside, then the backward pass and its directional derivative."""
    W1, W2 = params["W1"], params["W2"]
    V1, c1, V2, c2 = v["W1"], v["b1"], v["W2"], v["b2"]
    n = X.shape[0]
    h = np.tanh(X @ W1 + params["b1"])
    dh_da = 1.0 - h * h
    rh = dh_da * (X @ V1 + c1)
    z = h @ W2 + params["b2"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    rz = rh @ W2 + h @ V2 + c2
    dz = (p - Y) / n
    rdz = p * (rz - np.sum(p * rz, axis=1, keepdims=True)) / n
    dh = dz @ W2.T
    rda = (rdz @ W2.T + dz @ V2.T) * dh_da - 2.0 * dh * h * rh
    return {"W1": X.T @ rda, "b1": rda.sum(axis=0), "W2": rh.T @ dz + h.T @ rdz, "b2": rdz.sum(axis=0)}


def make_mlp_params(rng: np.random.Generator) -> tuple:
    W1, b1, W2, b2, X, Y = make_mlp(rng)
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, X, Y


@dataclass
class HvpWorkload:
    key: str
    name: str
    kind: str  # "scalar", "small" or "large" (large: fewer, longer repeats; † on the first-call target)
    loss: Callable
    hand_grad: Callable  # the gradient with respect to argument 0, to check symdiff.grad
    hand_hvp: Callable  # hand_hvp(*args, v)
    make_args: Callable[[np.random.Generator], tuple]
    data: str  # bench_suite workload whose random data this uses ("" for none)


@dataclass
class HessianWorkload:
    key: str
    name: str
    kind: str
    loss: Callable
    hand_hessian: Callable
    make_args: Callable[[np.random.Generator], tuple]
    data: str


HVP_WORKLOADS = [
    HvpWorkload("rosen-scalar", "Rosenbrock, a pair of Python floats", "scalar", rosen_pair, rosen_pair_grad,
                rosen_pair_hvp_hand, lambda rng: ((-1.2, 1.0),), ""),
    HvpWorkload("rosen-10", "Rosenbrock n-dim, n=10", "small", rosen_nd, rosen_nd_hand, rosen_nd_hvp_hand,
                make_rosen_nd(10), "rosen-10"),
    HvpWorkload("rosen-1e5", "Rosenbrock n-dim, n=100,000", "large", rosen_nd, rosen_nd_hand,
                rosen_nd_hvp_hand, make_rosen_nd(100_000), "rosen-1e5"),
    HvpWorkload("logreg-large", "logistic regression + L2, X 100,000×50", "large", logreg, logreg_hand,
                logreg_hvp_hand, make_logreg(100_000, 50), "logreg-large"),
    HvpWorkload("mlp", "MLP 4096×256-512(tanh)-10, softmax CE, all 4 parameters (a dict)", "large",
                mlp_params_loss, mlp_params_grad, mlp_params_hvp_hand, make_mlp_params, "mlp"),
]

HESSIAN_WORKLOADS = [
    HessianWorkload("rosen-scalar", "Rosenbrock, a pair of Python floats (2×2)", "scalar", rosen_pair,
                    rosen_pair_hessian_hand, lambda rng: ((-1.2, 1.0),), ""),
    HessianWorkload("rosen-10", "Rosenbrock n-dim, n=10 (10×10)", "small", rosen_nd, rosen_nd_hessian_hand,
                    make_rosen_nd(10), "rosen-10"),
    HessianWorkload("logreg-large", "logistic regression + L2, X 100,000×50 (50×50)", "large", logreg,
                    logreg_hessian_hand, make_logreg(100_000, 50), "logreg-large"),
]


def data_rng(seed: int, data: str, fallback: int) -> np.random.Generator:
    """bench_suite's generator for workload ``data`` (the same arrays as there), else one of our own."""
    keys = [w.key for w in WORKLOADS]
    return np.random.default_rng([seed, keys.index(data) if data else 1000 + fallback])


def direction(x: Any, rng: np.random.Generator) -> Any:
    """A random direction of the structure of ``x`` (floats, arrays, tuples, dicts)."""
    if isinstance(x, dict):
        return {k: direction(v, rng) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(direction(v, rng) for v in x)
    if isinstance(x, np.ndarray):
        return rng.normal(size=x.shape)
    return float(rng.normal())


# ============================================================================ checking


def leaves(x: Any) -> list:
    if isinstance(x, dict):
        return [leaf for k in sorted(x) for leaf in leaves(x[k])]
    if isinstance(x, (tuple, list)):
        return [leaf for v in x for leaf in leaves(v)]
    return [x]


def flat(x: Any) -> np.ndarray:
    """All the numbers in ``x``, in order (a Hessian as nested tuples or as one array alike)."""
    return np.concatenate([np.ravel(np.asarray(leaf, dtype=float)) for leaf in leaves(x)])


def structure(x: Any) -> Any:
    """What a derivative of ``x`` must look like: containers, Python floats, array shapes."""
    if isinstance(x, dict):
        return {k: structure(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(structure(v) for v in x)
    if isinstance(x, np.ndarray):
        return ("ndarray", x.shape)
    return type(x).__name__


def check(got: Any, expected: Any, like: Any | None = None) -> None:
    """``got`` equals ``expected`` (rtol 1e-6, number by number); with ``like`` (symdiff), it also has
    the structure of ``like`` (a Python float where it is one, an ndarray of its shape)."""
    if like is not None and structure(got) != structure(like):
        raise AssertionError(f"expected the structure {structure(like)}, got {structure(got)}")
    got_flat, expected_flat = flat(got), flat(expected)
    atol = 1e-12 * max(1.0, float(np.max(np.abs(expected_flat), initial=0.0)))
    np.testing.assert_allclose(got_flat, expected_flat, rtol=RTOL, atol=atol)


# ============================================================================ other AD tools


def to_jax(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: to_jax(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(to_jax(v) for v in x)
    return bench_suite.jnp.asarray(x) if isinstance(x, np.ndarray) else x


def jax_hvp(loss: Callable) -> Callable:
    """``jax.jvp(jax.grad(f), (x,), (v,))[1]`` with the other arguments passed through (not
    closed over, so that jit does not bake the data in as constants)."""
    grad = jax.grad(loss)

    def hvp(x: Any, *rest: Any) -> Any:
        *data, v = rest
        return jax.jvp(lambda x: grad(x, *data), (x,), (v,))[1]
    return hvp


def autograd_hvp(loss: Callable) -> Callable:
    """autograd's ``make_hvp`` (the VJP of the gradient), built at the point and applied to v."""
    make = autograd.make_hvp(loss)

    def hvp(*args: Any) -> Any:
        return make(*args[:-1])[0](args[-1])
    return hvp


def tools(loss: Callable, kind: str) -> dict[str, Callable]:
    """autograd's and JAX's Hessian-vector product (``kind == "hvp"``) or Hessian of ``loss``."""
    out: dict[str, Callable] = {}
    if autograd is not None:
        ag_loss = rebind(loss, bench_suite.anp)
        out["autograd"] = autograd_hvp(ag_loss) if kind == "hvp" else autograd.hessian(ag_loss)
    if jax is not None:
        j_loss = rebind(loss, bench_suite.jnp)
        out["jax-jit"] = blocking(jax.jit(jax_hvp(j_loss) if kind == "hvp" else jax.hessian(j_loss)))
    return out


# ============================================================================ running


@dataclass
class Row:
    workload: Any
    times: dict = field(default_factory=dict)
    loops: dict = field(default_factory=dict)
    first: float = math.nan      # symdiff: fresh object + first call, median
    first_cold: float = math.nan
    compile: float = math.nan    # first call minus the same object's second call, median
    jit_first: float = math.nan  # JAX: first call of the jitted function
    error: str | None = None
    tool_errors: dict = field(default_factory=dict)

    def t(self, key: str) -> float:
        return self.times.get(key, math.nan)


def settings(kind: str, quick: bool) -> tuple[int, float, int, int]:
    """repeats, seconds per repeat, fresh objects for the first-call time, least N."""
    if quick:
        return 2, 0.01, 1, 1
    return (9, 0.15, 5, 3) if kind == "large" else (9, 0.15, 5, 1)


def fresh(fn: Callable) -> Callable:
    """A new function object with ``fn``'s code: symdiff keeps what it compiled for a function
    (``symdiff.hvp(f)`` twice compiles once), so each first-call measurement gets its own."""
    return types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def first_call(make: Callable, loss: Callable, args: tuple) -> tuple[float, Any, Any]:
    """Seconds to make a fresh symdiff object (``make(loss)``, of a fresh copy of ``loss``) and
    call it once."""
    loss = fresh(loss)
    t0 = time.perf_counter()
    fn = make(loss)
    out = fn(*args)
    return time.perf_counter() - t0, fn, out


def generated(fn: Any, loss: Callable, args: tuple, reference: Any) -> Callable | None:
    """The generated code of ``fn`` as a plain function, rebuilt from ``fn.source`` (to show what
    the call around it costs), if it gives ``reference`` on ``args``; else None."""
    direct = bench_suite._compiled_function(fn, loss)
    try:
        same = direct is not None and all(np.array_equal(a, b) for a, b in
                                          zip(leaves(direct(*args)), leaves(reference)))
    except Exception:  # noqa: BLE001 - diagnostic only
        same = False
    return direct if same else None


def run_row(w: Any, kind: str, quick: bool, rng: np.random.Generator, compile_timeout: float) -> Row:
    """Check, then time, one hvp (``kind == "hvp"``) or Hessian workload."""
    row = Row(w)
    repeats, target, first_repeats, min_number = settings(w.kind, quick)
    args = w.make_args(rng)
    if kind == "hvp":
        args = (*args, direction(args[0], np.random.default_rng(1)))
        make: Callable = symdiff.hvp
        hand = w.hand_hvp
    else:
        make = symdiff.hessian
        hand = w.hand_hessian
    expected = hand(*args)
    timers = {"hand": make_timer(hand, args)}
    try:
        row.first_cold, fn, got = with_timeout(compile_timeout, first_call, make, w.loss, args)
        check(got, expected, like=args[0] if kind == "hvp" else None)
        timers["symdiff"] = make_timer(fn, args)
        if kind == "hvp":  # the generated code alone, and the gradient it is a derivative of
            direct = generated(fn, w.loss, args, got)
            if direct is not None:
                timers["direct"] = make_timer(direct, args)
            grad = symdiff.grad(w.loss)
            check(grad(*args[:-1]), w.hand_grad(*args[:-1]), like=args[0])
            timers["grad"] = make_timer(grad, args[:-1])
    except Exception as exc:  # noqa: BLE001 - report any failure in the table, keep going
        row.error = one_line(exc)
    for name, fn in tools(w.loss, kind).items():
        targs = tuple(to_jax(a) for a in args) if name == "jax-jit" else args
        try:
            t0 = time.perf_counter()
            out = fn(*targs)
            if name == "jax-jit":
                row.jit_first = time.perf_counter() - t0
            check(out, expected)
            timers[name] = make_timer(fn, targs)
        except Exception as exc:  # noqa: BLE001
            row.tool_errors[name] = one_line(exc, 160)

    row.times, numbers = measure(timers, repeats, target, min_number)
    row.loops = {k: (n, repeats) for k, n in numbers.items()}
    if row.error is None:
        firsts, shares = [], []
        for _ in range(first_repeats):
            first, fn, _ = first_call(make, w.loss, args)
            t0 = time.perf_counter()
            fn(*args)
            firsts.append(first)
            shares.append(first - (time.perf_counter() - t0))
        row.first, row.compile = float(np.median(firsts)), float(np.median(shares))
    return row


# ============================================================================ reporting


def first_cell(r: Row) -> str:
    """Time to first hvp (compile share) against the 50 ms target; where one call alone takes
    half of that or more, the compile share is judged instead (†)."""
    text = f"{fmt_time(r.first)} (compile {fmt_share(r.compile)})"
    if r.t("symdiff") >= FIRST_TARGET / 2:
        return f"{text} {verdict(r.compile <= FIRST_TARGET)}†"
    return f"{text} {verdict(r.first <= FIRST_TARGET)}"


def failed(message: str) -> str:
    return "FAILED: " + message.replace("|", "\\|")


def hvp_table(rows: list[Row]) -> str:
    lines = ["| workload | kind | symdiff grad | symdiff hvp | hvp / grad | hand-written hvp | "
             "symdiff / hand-written | time to first hvp (compile share) |",
             "|---|---|---:|---:|---|---:|---|---|"]
    for r in rows:
        cells = [r.workload.name, r.workload.kind]
        if r.error is not None:
            cells += [failed(r.error), "FAILED", "—", fmt_time(r.t("hand")), "—", "—"]
        else:
            by_grad, by_hand = r.t("symdiff") / r.t("grad"), r.t("symdiff") / r.t("hand")
            cells += [fmt_time(r.t("grad")), fmt_time(r.t("symdiff")),
                      f"{by_grad:.2f}x {verdict(by_grad <= GRAD_TARGET)} (≤ {GRAD_TARGET:g}x)",
                      fmt_time(r.t("hand")), f"{by_hand:.2f}x {verdict(by_hand <= HAND_TARGET)} (≤ {HAND_TARGET:g}x)",
                      first_cell(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hessian_table(rows: list[Row]) -> str:
    lines = ["| workload | hand-written Hessian | symdiff.hessian | symdiff / hand-written | "
             "time to first Hessian (compile share) |", "|---|---:|---:|---|---|"]
    for r in rows:
        cells = [r.workload.name, fmt_time(r.t("hand"))]
        if r.error is not None:
            cells += [failed(r.error), "—", "—"]
        else:
            cells += [fmt_time(r.t("symdiff")), fmt_ratio(r.t("symdiff") / r.t("hand")),
                      f"{fmt_time(r.first)} (compile {fmt_share(r.compile)})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tools_table(rows: list[Row], what: str) -> str:
    titles = {"autograd": {"hvp": "autograd make_hvp", "hessian": "autograd.hessian"}[what],
              "jax-jit": {"hvp": "JAX jit(jvp(grad))", "hessian": "JAX jit(hessian)"}[what]}
    return bench_suite.tools_table(rows, titles, "hand-written", "symdiff hvp" if what == "hvp" else "symdiff.hessian")


def loops(rows: list[Row], prefix: str) -> str:
    order = ("grad", "symdiff", "direct", "hand", "autograd", "jax-jit")
    return "; ".join(f"{prefix}:{r.workload.key}: " + " / ".join(f"{r.loops[k][0]}×{r.loops[k][1]}"
                                                                for k in order if k in r.loops) for r in rows)


def notes(hvp_rows: list[Row], hessian_rows: list[Row], quick: bool) -> str:
    out = [
        "Notes:",
        f"- Targets: symdiff hvp / symdiff grad ≤ {GRAD_TARGET:g}x; symdiff hvp / hand-written hvp ≤ "
        f"{HAND_TARGET:g}x; time to first hvp ≤ {FIRST_TARGET * 1e3:g} ms (†: one steady-state hvp call "
        f"alone takes ≥ {FIRST_TARGET * 1e3 / 2:g} ms there, so the compile share is judged instead). "
        "The Hessian rows have no targets.",
        "- symdiff hvp: `symdiff.hvp(loss)` (argnums=0), called as `hvp_loss(*args, v)` with a fixed random "
        "direction v of argument 0's structure; symdiff grad: `symdiff.grad(loss)` on the same arguments. "
        "symdiff.hessian: `symdiff.hessian(loss)(*args)`.",
        "- Times are per call: best of R repeats of N calls each (`timeit`, the repeats of all "
        "implementations interleaved, rotating order). N×R (grad / symdiff / direct / hand / autograd / jax-jit): "
        + loops(hvp_rows, "hvp") + "; " + loops(hessian_rows, "hessian") + ".",
        f"- Every result (symdiff's, autograd's, JAX's) was checked against the hand-written one "
        f"(`assert_allclose`, rtol={RTOL:g}) before timing, and symdiff's gradient against bench_suite's "
        "hand-written gradient; symdiff's Hessian-vector products also for structure (a Python float "
        "where the argument has one, arrays of its shapes, the same containers). A FAILED cell did not "
        "pass (or raised); its message is shown.",
        "- Time to first hvp / Hessian: a fresh `symdiff.hvp(loss)` (`symdiff.hessian(loss)`) plus its first "
        "call (parse, IR, forward mode, reverse mode, codegen, `compile`, one evaluation), median of 5 "
        "fresh objects; compile share = median over them of that minus the same object's second call. "
        "Cold (the first object in the process): "
        + "; ".join(f"{p}:{r.workload.key}: {fmt_time(r.first_cold)}"
                    for p, rows in (("hvp", hvp_rows), ("hessian", hessian_rows)) for r in rows
                    if r.error is None) + ".",
        "- The symdiff hvp column calls what `symdiff.hvp` returns (argument checks and dispatch on the "
        "arguments' kinds, then the generated code). The generated function alone (`.source` compiled and "
        "called directly): " + "; ".join(f"{r.workload.key}: {fmt_time(r.t('direct'))} "
                                          f"({r.t('direct') / r.t('hand'):.2f}x hand-written)"
                                          for r in hvp_rows if math.isfinite(r.t("direct"))) + ".",
    ]
    if autograd is not None or jax is not None:
        out.append(
            "- autograd and JAX differentiate the same loss functions with `np` rebound to `autograd.numpy` / "
            "`jax.numpy`. autograd hvp: `autograd.make_hvp(loss)(*args)[0](v)` (the VJP of the gradient, built "
            "at the point in every call); autograd Hessian: `autograd.hessian(loss)`. JAX hvp: "
            "`jax.jit(lambda x, *data, v: jax.jvp(lambda x: jax.grad(loss)(x, *data), (x,), (v,))[1])` (the "
            "data are arguments, not constants); JAX Hessian: `jax.jit(jax.hessian(loss))`; float64 "
            "(`jax_enable_x64`), device arrays made up front, every timed call ends in `block_until_ready`; "
            "compile time is the first call minus a steady-state call. Ratios in parentheses are to the "
            "hand-written implementation.")
    if quick:
        out.append("- QUICK MODE (--quick): few, short repeats; numbers are noisy, for smoke testing only.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    keys = [f"hvp:{w.key}" for w in HVP_WORKLOADS] + [f"hessian:{w.key}" for w in HESSIAN_WORKLOADS]
    parser.add_argument("--quick", action="store_true",
                        help="few short repeats (smoke test); writes no file unless --output is given")
    parser.add_argument("--only", metavar="KEYS", default=None,
                        help="comma-separated rows (" + ", ".join(keys) + "); writes no file unless --output is given")
    parser.add_argument("--output", metavar="PATH", type=Path, default=None,
                        help=f"write the tables with a machine header as a section of this file "
                             f"(default for a full run: "
                             f"{DEFAULT_OUTPUT.relative_to(HERE.parent)})")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the workloads' data")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc thresholds alone")
    parser.add_argument("--compile-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="mark a row FAILED if symdiff's first call takes longer (default 30; 0 = no limit)")
    opts = parser.parse_args(argv)
    chosen = set(keys)
    if opts.only:
        chosen = set(opts.only.split(","))
        if chosen - set(keys):
            parser.error(f"unknown row(s): {', '.join(sorted(chosen - set(keys)))}")
    malloc = "the platform's default (--default-malloc)" if opts.default_malloc else pin_malloc()
    output = opts.output
    if output is None and not opts.quick and not opts.only:
        output = DEFAULT_OUTPUT

    if LOAD_AT_START > 0.5 * (os.cpu_count() or 1):
        print(f"warning: the machine is busy (load average {LOAD_AT_START:.2f}); timings will be noisy",
              file=sys.stderr)
    rows: dict[str, list[Row]] = {"hvp": [], "hessian": []}
    start = time.perf_counter()
    for kind, workloads in (("hvp", HVP_WORKLOADS), ("hessian", HESSIAN_WORKLOADS)):
        for i, w in enumerate(workloads):
            if f"{kind}:{w.key}" not in chosen:
                continue
            print(f"running {kind}:{w.key}: {w.name} ...", file=sys.stderr, flush=True)
            rng = data_rng(opts.seed, w.data, i)
            rows[kind].append(run_row(w, kind, opts.quick, rng, opts.compile_timeout))
    print(f"done in {time.perf_counter() - start:.0f} s", file=sys.stderr)

    parts = []
    if rows["hvp"]:
        parts.append("Hessian-vector products:\n\n" + hvp_table(rows["hvp"]))
        if autograd is not None or jax is not None:
            parts.append("Hessian-vector products, other AD tools (time per call; ratio to the hand-written "
                         "hvp):\n\n" + tools_table(rows["hvp"], "hvp"))
    if rows["hessian"]:
        parts.append("Full Hessians:\n\n" + hessian_table(rows["hessian"]))
        if autograd is not None or jax is not None:
            parts.append("Full Hessians, other AD tools (time per call; ratio to the hand-written Hessian):\n\n"
                         + tools_table(rows["hessian"], "hessian"))
    parts.append(notes(rows["hvp"], rows["hessian"], opts.quick))
    text = "\n\n".join(parts)
    print(text)
    if output is not None:
        header = machine_header("symdiff second-order benchmarks: Hessian-vector products and Hessians", malloc)
        # (a level-2 title: a section of the file)
        bench_suite.write_section(output, "bench_hessian.py", "#" + header + "\n\n" + text)
        print(f"\nwrote {output}", file=sys.stderr)
    return 1 if any(r.error for rs in rows.values() for r in rs) else 0


if __name__ == "__main__":
    sys.exit(main())
