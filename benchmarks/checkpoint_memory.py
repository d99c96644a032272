"""Peak memory of a gradient with and without checkpointing (tracemalloc; not a CI test).

    python3 benchmarks/checkpoint_memory.py

Two RNNs:

* ``step``, whose steps make a big intermediate (an H x H outer product): the plain gradient
  tapes it at every step, ``symdiff.checkpoint(step)`` tapes only the step's arguments and
  recomputes the rest in the backward sweep;
* a long RNN of T small steps: the plain gradient tapes every carry, ``symdiff.checkpoint_loop``
  keeps about 2 sqrt(T) of them (and the checkpointed step alone still tapes one carry a step).

Each row: the peak of memory allocated during one gradient call (the arguments and the
compiled code are allocated before), the time of that call, and whether the gradients agree.
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import symdiff  # noqa: E402


def wide_step(h, x, W):
    a = np.tanh(W @ h + x)
    big = np.tanh(np.outer(a, h))  # H x H: what the plain gradient tapes at each step
    return big @ a / a.shape[0] + 0.5 * h


wide_checkpointed = symdiff.checkpoint(wide_step)


def wide_plain(h, xs, W):
    for t in range(len(xs)):
        h = wide_step(h, xs[t], W)
    return np.sum(h ** 2)


def wide_checkpoint(h, xs, W):
    for t in range(len(xs)):
        h = wide_checkpointed(h, xs[t], W)
    return np.sum(h ** 2)


def cell(h, x, W):
    return np.tanh(W @ h + x)


cell_checkpointed = symdiff.checkpoint(cell)


def long_plain(h, xs, W):
    for t in range(len(xs)):
        h = cell(h, xs[t], W)
    return np.sum(h ** 2)


def long_checkpoint(h, xs, W):
    for t in range(len(xs)):
        h = cell_checkpointed(h, xs[t], W)
    return np.sum(h ** 2)


def long_sqrt(h, xs, W):
    return np.sum(symdiff.checkpoint_loop(cell, h, xs, W) ** 2)


def measure(fn, args):
    """(peak MiB allocated during one call of the gradient, seconds, the gradients)."""
    gradient = symdiff.grad(fn, argnums=(0, 1, 2))
    gradient(*args)  # compiled and warm
    tracemalloc.start()
    start = time.perf_counter()
    grads = gradient(*args)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2 ** 20, seconds, grads


def table(title, rows, args):
    print(f"\n{title}")
    print(f"{'gradient':<34} {'peak MiB':>10} {'seconds':>9}  same gradients")
    reference = None
    for name, fn in rows:
        peak, seconds, grads = measure(fn, args)
        same = "" if reference is None else (
            "yes" if all(np.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(grads, reference)) else "NO")
        reference = grads if reference is None else reference
        print(f"{name:<34} {peak:>10.1f} {seconds:>9.3f}  {same}")


def main() -> None:
    rng = np.random.default_rng(0)
    H, T = 256, 100
    args = (rng.normal(size=H), rng.normal(size=(T, H)), rng.normal(size=(H, H)) / np.sqrt(H))
    table(f"RNN with an H x H intermediate per step (H = {H}, T = {T})",
          [("plain", wide_plain), ("checkpoint(step)", wide_checkpoint)], args)
    H, T = 64, int(os.environ.get("STEPS", "5000"))
    args = (rng.normal(size=H), rng.normal(size=(T, H)) * 0.1, rng.normal(size=(H, H)) / np.sqrt(H))
    table(f"long RNN (H = {H}, T = {T}; the inputs xs take {T * H * 8 / 2 ** 20:.1f} MiB, and so does dxs)",
          [("plain", long_plain), ("checkpoint(step)", long_checkpoint), ("checkpoint_loop (sqrt(T) carries)",
                                                                         long_sqrt)], args)
    T = int(os.environ.get("LONG_STEPS", "100000"))
    args = (args[0], rng.normal(size=(T, H)) * 0.1, args[2])
    table(f"checkpoint_loop alone (H = {H}, T = {T}; xs and dxs take {T * H * 8 / 2 ** 20:.1f} MiB each)",
          [("checkpoint_loop (sqrt(T) carries)", long_sqrt)], args)


if __name__ == "__main__":
    main()
