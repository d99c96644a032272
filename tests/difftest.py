"""Differential tester: random valid Python functions in the constructs the README lists as
supported, compiled with ``symdiff.grad`` and compared with central finite differences.

``generate(seed, family)`` builds a :class:`Program` (source text, the function's name, its
argument factories, the argnums to differentiate); ``check(program)`` classifies it as an
:class:`Outcome`:

* ``pass``     -- every gradient matches finite differences, with the right structure;
* ``refused``  -- a ``SymdiffError`` that is not internal (unsupported code, said so);
* ``internal`` -- any other exception from symdiff (or an ``InternalError``);
* ``wrong``    -- a gradient differs from finite differences, has the wrong type, shape,
  dtype or structure, shares memory with an argument, or ``value_and_grad``'s value
  differs from the function's;
* ``mutated``  -- the gradient changed one of its arguments;
* ``hang``     -- the check ran past its time limit.

A program names the callable to differentiate (``f``, a lambda bound to ``f``, or a bound
method such as ``model.loss``); it may return ``(loss, aux)`` (checked with
``value_and_grad(..., has_aux=True)``), name a module-level function to run between the first
and the second call (rebinding a global, an attribute of ``self``...), and take float32 arrays
and NumPy scalars, whose gradients are compared with finite differences of the float64 version
of the arguments with the looser tolerances ``RTOL32``/``ATOL32``.

Families: ``scalar`` (Python floats, math, control flow), ``array`` (NumPy, straight-line),
``calls`` (helpers, nested defs, lambdas, recursion), ``containers`` (pytree arguments, lists
built by appending), ``mixed`` (control flow around arrays); then, each from its own random
stream so the programs above never change: ``objects`` (bound methods, attributes of ``self``),
``helpers`` (mutual recursion, keyword arguments, closures, globals rebound between calls),
``lists`` (item assignment on built lists and dicts, iteration, several pytree argnums),
``aliases`` (aliases updated in ``if`` arms and loops, NumPy views read or written through),
``dtypes`` (float32 arrays, NumPy scalars), ``numpy`` (the NumPy table in composition),
``control`` (elif chains, ``while True``, nested loops, range steps, ``%``, rounding...),
``statements`` (``assert``, ``raise``, ``with``, star-arguments, ``map``/``filter``) and
``nesting`` (loops nested over one sequence or the same value computed again, helpers in loop
bodies recomputing what the caller computed, nested containers, ``zip(*pairs)``, nested
comprehensions, aliases a loop may or may not bind apart).

A program is *valid* only if the function itself runs on its arguments and returns a finite
float, every comparison, ``abs``, ``min``/``max``, rounding and extremum it evaluates is at least
``MARGIN`` away from its switching point (measured by running an instrumented copy of the
source), and finite differences with two step sizes agree (else the point is "unstable").
Invalid programs are regenerated with the next sub-seed. ``minimise(program)`` deletes
statements one by one while the program stays valid and fails in the same way.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import itertools
import linecache
import math
import os
import random
import re
import signal
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

import symdiff
from symdiff.errors import SymdiffError

MARGIN = 1e-3  # distance from a branch's switching point, relative to 1 + |operands|
EPS = (1e-6, 1e-4)  # two finite-difference steps: disagreement marks the point unstable
RTOL, ATOL = 1e-5, 1e-6
RTOL32, ATOL32 = 1e-3, 1e-4  # programs with float32 arguments
TIMEOUT_S = 5
MAX_ABS_VALUE = 1e4
CLASSES = ("pass", "refused", "internal", "wrong", "mutated", "hang", "skipped")  # skipped: not for this transform
TRANSFORMS = ("grad", "jvp", "hvp")
FAILURES = ("internal", "wrong", "mutated", "hang")


# ============================================================================ programs


@dataclass(frozen=True)
class Leaf:
    """One argument leaf: ``kind`` is "f" (Python float), "i" (int, ``info`` a dim name),
    "a" (float64 array, ``info`` its shape of dim names, 1s and fixed sizes), "a32" (the same
    in float32), "s64" / "s32" (``np.float64`` / ``np.float32`` scalar)."""

    kind: str
    info: Any = None


@dataclass
class Program:
    """A generated function and how to call it."""

    family: str
    seed: int
    source: str
    name: str
    spec: list  # one argument spec per parameter: a Leaf, or a dict/list/tuple of specs
    argnums: Any
    dims: dict
    dims2: dict | None = None
    value_seed: int = 0
    value_seed2: int = 0
    aux: bool = False  # the function returns (loss, aux)
    between: str | None = None  # module-level function called before the second call
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def make_args(self, as64: bool = False) -> list:
        """Fresh arguments of the first call (``as64``: float32 leaves as float64 of the same values)."""
        return build_args(self.spec, self.dims, self.value_seed, as64)

    def make_args2(self, as64: bool = False) -> list | None:
        """Fresh arguments of other shapes for a second call of the same compiled gradient, or None."""
        if self.dims2 is None:
            return None
        return build_args(self.spec, self.dims2, self.value_seed2, as64)

    @property
    def low_precision(self) -> bool:
        """Whether some argument is float32 (gradients are compared with looser tolerances)."""
        return any(leaf.kind in ("a32", "s32") for leaf in _spec_leaves(self.spec))

    def with_source(self, source: str) -> Program:
        """The same program and arguments with another source."""
        return replace(self, source=source, _cache={})


@dataclass
class Outcome:
    """The class of a checked program and what happened."""

    cls: str
    detail: str = ""
    stage: str = ""

    @property
    def key(self) -> str:
        """A coarse signature used to keep a minimised program failing in the same way."""
        if self.cls in ("internal", "refused"):
            return self.cls + ":" + self.detail.split(":", 1)[0]
        if self.cls == "wrong":  # a NaN gradient or a wrong value is not the same failure as a wrong number
            for kind in ("structure", "value_and_grad value", "aux", "argnums"):
                if self.detail.startswith(kind):
                    return f"wrong:{kind}"
            return "wrong:nan" if "nan" in self.detail.split("finite differences")[0] else "wrong:gradient"
        return self.cls


def _spec_leaves(spec: Any) -> list:
    if isinstance(spec, Leaf):
        return [spec]
    items = spec.values() if isinstance(spec, dict) else spec
    return [leaf for s in items for leaf in _spec_leaves(s)]


def build_args(spec: list, dims: dict, value_seed: int, as64: bool = False) -> list:
    """The argument values described by ``spec`` (deterministic in ``value_seed``); with
    ``as64`` float32 leaves are given as float64 of the same (float32) values."""
    rng = np.random.default_rng(value_seed)

    def make(s):
        if isinstance(s, Leaf):
            if s.kind == "f":
                return float(rng.uniform(-1.2, 1.2))
            if s.kind == "i":
                return int(dims[s.info])
            if s.kind in ("s64", "s32"):
                v = float(rng.uniform(-1.2, 1.2))
                if s.kind == "s64":
                    return np.float64(v)
                return np.float64(np.float32(v)) if as64 else np.float32(v)
            shape = tuple(d if isinstance(d, int) else dims[d] for d in s.info)
            if s.kind == "a32":
                v = rng.uniform(-1.2, 1.2, shape).astype(np.float32)
                return v.astype(np.float64) if as64 else v
            return rng.uniform(-1.2, 1.2, shape)
        if isinstance(s, dict):
            return {k: make(v) for k, v in s.items()}
        if isinstance(s, list):
            return [make(v) for v in s]
        return tuple(make(v) for v in s)

    return [make(s) for s in spec]


# ============================================================================ loading source

_TMPDIR = None
_COUNTER = itertools.count()


def _tmpdir() -> str:
    global _TMPDIR
    if _TMPDIR is None or not os.path.isdir(_TMPDIR):
        _TMPDIR = tempfile.mkdtemp(prefix="symdiff_difftest_")
    return _TMPDIR


class Loaded:
    """A program's source written to a real file (symdiff reads source through inspect) and imported."""

    def __init__(self, source: str, tag: str = "prog", transform: Callable | None = None):
        self.path = os.path.join(_tmpdir(), f"dt_{re.sub(r'[^A-Za-z0-9_]', '_', tag)}_{os.getpid()}_"
                                            f"{next(_COUNTER)}.py")
        with open(self.path, "w") as fh:
            fh.write(source)
        name = os.path.basename(self.path)[:-3]
        if transform is None:
            spec = importlib.util.spec_from_file_location(name, self.path)
            self.module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(self.module)
            self.ns = self.module.__dict__
        else:
            tree = transform(ast.parse(source))
            self.ns = {"__name__": name, "__file__": self.path}
            self.ns.update(_RECORDERS)
            exec(compile(tree, self.path, "exec"), self.ns)  # noqa: S102

    def close(self) -> None:
        linecache.cache.pop(self.path, None)
        try:
            os.remove(self.path)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ============================================================================ margins (instrumented run)

_MARGIN = [math.inf]


def _is_int(v: Any) -> bool:
    return isinstance(v, (bool, int, np.integer)) or (isinstance(v, np.ndarray) and v.dtype.kind in "biu")


def _note(distance: Any, scale: Any) -> None:
    d = np.asarray(np.abs(distance), dtype=float) / (1.0 + np.abs(np.asarray(scale, dtype=float)))
    if d.size:
        _MARGIN[0] = min(_MARGIN[0], float(np.min(d)))


def _dt_cmp(result: Any, *operands: Any) -> Any:
    for a, b in zip(operands, operands[1:]):
        if _is_int(a) and _is_int(b):
            continue
        try:
            a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            _note(a_ - b_, np.maximum(np.abs(a_), np.abs(b_)))
        except (TypeError, ValueError):
            pass
    return result


def _gap(x: Any, axis: Any) -> None:
    x = np.asarray(x, dtype=float)
    if axis is None:
        x, axis = x.ravel(), 0
    if x.ndim == 0 or x.shape[axis] < 2:
        return
    xs = np.sort(x, axis=axis)
    top = np.take(xs, [-1, -2, 0, 1], axis=axis)
    scale = np.max(np.abs(x))
    _note(np.take(top, 0, axis=axis) - np.take(top, 1, axis=axis), scale)
    _note(np.take(top, 3, axis=axis) - np.take(top, 2, axis=axis), scale)


def _dt_call(fn: Any, *args: Any, **kw: Any) -> Any:
    if fn in (abs, np.abs, np.absolute, math.fabs, np.fabs):
        _note(np.asarray(args[0], dtype=float), 0.0)
    elif fn in (min, max) and len(args) >= 2 and not kw:
        vals = sorted(float(a) for a in args)
        i = 0 if fn is min else len(vals) - 2
        _note(vals[i + 1] - vals[i], max(abs(vals[i]), abs(vals[i + 1])))
    elif fn in (np.maximum, np.minimum, np.fmax, np.fmin):
        a, b = np.asarray(args[0], dtype=float), np.asarray(args[1], dtype=float)
        _note(a - b, np.maximum(np.abs(a), np.abs(b)))
    elif fn in (np.max, np.min, np.amax, np.amin):
        _gap(args[0], kw.get("axis", args[1] if len(args) > 1 else None))
    elif fn is np.std:  # not differentiable where it is 0
        _note(fn(*args, **kw), 0.0)
    elif fn is np.linalg.norm:
        _note(fn(*args, **kw), 0.0)
        ord_ = args[1] if len(args) > 1 else kw.get("ord")
        if np.ndim(args[0]) == 2 and ord_ in (2, -2, "nuc") and kw.get("axis") is None:
            _spectrum_gaps(np.linalg.svd(np.asarray(args[0], dtype=float), compute_uv=False), True)
    elif fn in (np.linalg.eigh, np.linalg.eigvalsh):  # derivatives need distinct eigenvalues
        _spectrum_gaps(np.linalg.eigvalsh(np.asarray(args[0], dtype=float)), False)
    elif fn in (np.linalg.eig, np.linalg.eigvals):
        _spectrum_gaps(np.real(np.linalg.eigvals(np.asarray(args[0], dtype=float))), False)
    elif fn in (np.linalg.svd, np.linalg.svdvals):  # distinct and nonzero singular values
        _spectrum_gaps(np.linalg.svd(np.asarray(args[0], dtype=float), compute_uv=False), True)
    elif fn in (np.linalg.qr, np.linalg.pinv, np.linalg.lstsq):  # of full rank
        s = np.linalg.svd(np.asarray(args[0], dtype=float), compute_uv=False)
        _note(s, np.max(s) if s.size else 0.0)
    elif fn in _STEPS and args and not _is_int(args[0]):
        _note(_step_distance(fn, args, kw), 0.0)
    elif fn is np.sign:
        _note(np.asarray(args[0], dtype=float), 0.0)
    elif fn is np.clip:
        a = np.asarray(args[0], dtype=float)
        for bound in (*args[1:3], kw.get("a_min"), kw.get("a_max")):
            if bound is not None:
                _note(a - np.asarray(bound, dtype=float), a)
    elif fn in (np.sort, np.median, np.quantile, np.percentile, np.argsort, np.partition):
        _sorted_gap(args[0], kw.get("axis", args[1] if len(args) > 1 and fn in (np.sort, np.argsort) else
                                    (-1 if fn in (np.sort, np.argsort) else None)))
    elif fn in (np.argmax, np.argmin):
        _gap(args[0], kw.get("axis", args[1] if len(args) > 1 else None))
    return fn(*args, **kw)


_STEPS = (math.floor, math.ceil, math.trunc, int, round, np.floor, np.ceil, np.trunc, np.rint, np.fix, np.round,
          np.around)


def _step_distance(fn: Any, args: tuple, kw: dict) -> Any:
    """How far the argument of a rounding function is from the nearest point where it jumps."""
    x = np.asarray(args[0], dtype=float)
    if fn in (round, np.round, np.around, np.rint):
        scale = 10.0 ** (args[1] if len(args) > 1 else kw.get("decimals", kw.get("ndigits", 0)) or 0)
        y = x * scale
        return (y - np.floor(y) - 0.5) / scale
    return x - np.round(x)


def _spectrum_gaps(values: np.ndarray, nonzero: bool) -> None:
    values = np.sort(np.ravel(values))
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    if values.size > 1:
        _note(np.diff(values), scale)
    if nonzero:
        _note(values, scale)


def _sorted_gap(x: Any, axis: Any) -> None:
    x = np.asarray(x, dtype=float)
    if axis is None:
        x, axis = x.ravel(), 0
    if x.ndim == 0 or x.shape[axis] < 2:
        return
    _note(np.diff(np.sort(x, axis=axis), axis=axis), np.max(np.abs(x)))


def _dt_mod(x: Any, y: Any) -> Any:
    if not (_is_int(x) and _is_int(y)):
        q = np.asarray(x, dtype=float) / np.asarray(y, dtype=float)
        _note((q - np.round(q)) * np.asarray(y, dtype=float), 0.0)
    return x % y


MAX_INTERMEDIATE = 1e8  # beyond this, float64 sums lose the small terms finite differences see


def _dt_mag(value: Any) -> Any:
    """Mark the point invalid when an intermediate value is so large that finite differences
    of the result measure rounding (``s - x + x`` with ``x`` = 1e31 is 0.0 for every step)."""
    try:
        if not _is_int(value) and np.size(value) and np.max(np.abs(np.asarray(value, dtype=float))) > MAX_INTERMEDIATE:
            _MARGIN[0] = 0.0
    except (TypeError, ValueError):
        pass
    return value


_RECORDERS = {"_dt_cmp": _dt_cmp, "_dt_call": _dt_call, "_dt_mod": _dt_mod, "_dt_mag": _dt_mag}
_WATCHED_NAMES = {"abs", "min", "max", "int", "round"}
_WATCHED_ATTRS = {"abs", "absolute", "fabs", "maximum", "minimum", "fmax", "fmin", "max", "min", "amax", "amin",
                  "std", "floor", "ceil", "trunc", "rint", "fix", "round", "around", "sign", "clip", "sort",
                  "median", "quantile", "percentile", "argsort", "partition", "argmax", "argmin"}
_WATCHED_LINALG = {"norm", "eigh", "eigvalsh", "eig", "eigvals", "svd", "svdvals", "qr", "pinv", "lstsq"}
_MODULES = ("np", "math", "jnp", "numpy", "onp")  # the names generated code gives NumPy and math


class _Instrument(ast.NodeTransformer):
    """Routes comparisons and kinks (abs, min, max, extrema) through the margin recorders."""

    def visit_Compare(self, node):
        self.generic_visit(node)
        operands = [node.left, *node.comparators]
        call = ast.Call(func=ast.Name("_dt_cmp", ast.Load()), args=[node, *map(copy.deepcopy, operands)],
                        keywords=[])
        return ast.copy_location(call, node)

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        watched = (isinstance(f, ast.Name) and f.id in _WATCHED_NAMES) or (
            isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in _MODULES
            and f.attr in _WATCHED_ATTRS) or (
            isinstance(f, ast.Attribute) and f.attr in _WATCHED_LINALG and isinstance(f.value, ast.Attribute)
            and f.value.attr == "linalg" and isinstance(f.value.value, ast.Name) and f.value.value.id in _MODULES)
        if not watched:
            return node
        call = ast.Call(func=ast.Name("_dt_call", ast.Load()), args=[f, *node.args], keywords=node.keywords)
        return ast.copy_location(call, node)

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, ast.Mod):
            call = ast.Call(func=ast.Name("_dt_mag", ast.Load()), args=[node], keywords=[])
            return ast.copy_location(call, node)
        call = ast.Call(func=ast.Name("_dt_mod", ast.Load()), args=[node.left, node.right], keywords=[])
        return ast.copy_location(call, node)


def _instrument(tree: ast.Module) -> ast.Module:
    return ast.fix_missing_locations(_Instrument().visit(tree))


# ============================================================================ validity and reference


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


class _alarm:
    """A wall-clock limit as a context manager; nested limits keep the outer one running
    (a no-op where SIGALRM is missing)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        if not hasattr(signal, "SIGALRM"):
            return
        self.old_handler = signal.signal(signal.SIGALRM, _on_alarm)
        self.outer = signal.getitimer(signal.ITIMER_REAL)[0]
        self.start = time.monotonic()
        limit = min(self.seconds, self.outer) if self.outer > 0 else self.seconds
        signal.setitimer(signal.ITIMER_REAL, limit)

    def __exit__(self, *exc):
        if not hasattr(signal, "SIGALRM"):
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old_handler)
        if self.outer > 0:
            signal.setitimer(signal.ITIMER_REAL, max(self.outer - (time.monotonic() - self.start), 1e-3))


def _finite_float(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and not isinstance(v, bool) and math.isfinite(v) \
        and abs(v) < MAX_ABS_VALUE


def same_values(a: Any, b: Any) -> bool:
    """Exact equality of argument structures (types, shapes, dtypes, values)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


def target(ns: dict, name: str) -> Callable:
    """The callable a program names in its module namespace: ``f`` or ``model.loss``."""
    first, *attrs = name.split(".")
    obj = ns[first]
    for a in attrs:
        obj = getattr(obj, a)
    return obj


def _loss_of(fn: Callable, aux: bool) -> Callable:
    """``fn`` itself, or the loss part of a function returning ``(loss, aux)``."""
    if not aux:
        return fn
    return lambda *a: fn(*a)[0]


def run_between(ns: dict, program: Program) -> None:
    """Run the program's step between the first and the second call (if it has one)."""
    if program.between is not None:
        ns[program.between]()


def _run_valid(fn: Callable, args: list, aux: bool = False) -> str | None:
    """Why calling ``fn(*args)`` does not make a valid program, or None."""
    before = copy.deepcopy(args)
    try:
        with np.errstate(all="raise"):
            v = fn(*args)
    except Exception as e:  # noqa: BLE001 - any failure of the program itself makes it invalid
        return f"the function raises {type(e).__name__}: {e}"
    if aux:
        if not (isinstance(v, tuple) and len(v) == 2):
            return f"the function returns {type(v).__name__}, not (loss, aux)"
        v = v[0]
    if not _finite_float(v):
        return f"the function returns {type(v).__name__} {v!r:.60}"
    if not same_values(args, before):
        return "the function mutates its arguments"
    return None


def validate(program: Program) -> str | None:
    """Why ``program`` is not valid (raises, non-finite, mutates, near a kink), or None."""
    if "invalid" in program._cache:
        return program._cache["invalid"]
    try:
        reason = _validate(program)
    except _Timeout:
        reason = "the function runs too long"
    except Exception as e:  # noqa: BLE001 - e.g. a minimised candidate lost the class it calls
        reason = f"the module does not load or name the function: {type(e).__name__}: {e}"
    program._cache["invalid"] = reason
    return reason


def _validate(program: Program) -> str | None:
    reason = None
    calls = [("args", program.make_args, False), ("args2", program.make_args2, True)]
    with warnings.catch_warnings(), Loaded(program.source, f"{program.family}_{program.seed}") as plain, \
            Loaded(program.source, "instr", _instrument) as instr, _alarm(TIMEOUT_S):
        fn, fn_instr = target(plain.ns, program.name), target(instr.ns, program.name)
        for which, make, second in calls:
            if make() is None:
                continue
            if second:
                run_between(plain.ns, program)
                run_between(instr.ns, program)
            variants = [make(), make(as64=True)] if program.low_precision else [make()]
            for args in variants:
                reason = _run_valid(fn, args, program.aux)
                if reason is None:
                    _MARGIN[0] = math.inf
                    try:
                        with np.errstate(all="ignore"):
                            fn_instr(*copy.deepcopy(args))
                    except Exception as e:  # noqa: BLE001
                        reason = f"instrumented copy raises {type(e).__name__}: {e}"
                    if _MARGIN[0] < MARGIN:
                        reason = f"a branch is {_MARGIN[0]:.2g} from its switching point"
                if reason is not None:
                    return f"{which}: {reason}"
    return reason


def _leaves(tree: Any, path: tuple = ()) -> list:
    """(path, leaf) for every float and array in a pytree, in a fixed order."""
    if isinstance(tree, dict):
        return [x for k in tree for x in _leaves(tree[k], path + (k,))]
    if isinstance(tree, (list, tuple)):
        return [x for i, v in enumerate(tree) for x in _leaves(v, path + (i,))]
    return [(path, tree)]


def _get(tree: Any, path: tuple) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def _set(tree: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    k, rest = path[0], path[1:]
    if isinstance(tree, dict):
        out = dict(tree)
        out[k] = _set(tree[k], rest, value)
        return out
    items = list(tree)
    items[k] = _set(tree[k], rest, value)
    return type(tree)(items)


def numerical_grad(fn: Callable, args: list, argnum: int, eps: float) -> list:
    """Central differences of ``fn`` in every scalar of ``args[argnum]``: one array per leaf."""
    out = []
    for path, leaf in _leaves(args[argnum]):
        if isinstance(leaf, float):
            vals = []
            for s in (1, -1):
                a = list(args)
                a[argnum] = _set(args[argnum], path, leaf + s * eps)
                vals.append(float(fn(*a)))
            out.append(np.array((vals[0] - vals[1]) / (2 * eps)))
            continue
        g = np.zeros(leaf.shape)
        for i in np.ndindex(leaf.shape):
            vals = []
            for s in (1, -1):
                x = leaf.copy()
                x[i] += s * eps
                a = list(args)
                a[argnum] = _set(args[argnum], path, x)
                vals.append(float(fn(*a)))
            g[i] = (vals[0] - vals[1]) / (2 * eps)
        out.append(g)
    return out


def _close(got: np.ndarray, want: np.ndarray, noise: float, scale: float = 1.0, tols: tuple = (RTOL, ATOL)) -> bool:
    rtol, atol = tols
    tol = scale * (atol + noise + rtol * np.abs(want))
    return bool(np.all(np.abs(np.asarray(got, dtype=float) - want) <= tol))


def _nums(argnums: Any) -> tuple:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def reference(program: Program, second: bool = False) -> Any:
    """(value, finite-difference gradients per argnum) of the first or second call, or the
    string "unstable" when the two step sizes disagree."""
    key = "ref2" if second else "ref"
    if key in program._cache:
        return program._cache[key]
    args = program.make_args2(as64=True) if second else program.make_args(as64=True)
    with Loaded(program.source, f"ref_{program.family}_{program.seed}") as plain:
        if second:
            run_between(plain.ns, program)
        fn = _loss_of(target(plain.ns, program.name), program.aux)
        with np.errstate(all="ignore"), _alarm(4 * TIMEOUT_S):
            value = float(fn(*copy.deepcopy(args)))
            noise = 1e-9 * (1.0 + abs(value))
            grads, result = [], None
            for n in _nums(program.argnums):
                fine, coarse = (numerical_grad(fn, args, n, e) for e in EPS)
                if not all(_close(c, f, noise, 3.0) for f, c in zip(fine, coarse)):
                    result = "unstable"
                    break
                grads.append(fine)
            if result is None:
                result = (value, grads, noise)
    program._cache[key] = result
    return result


def valid_reference(program: Program) -> str | None:
    """Validate ``program`` and compute its reference gradients: why it is not usable, or None."""
    reason = validate(program)
    if reason is not None:
        return reason
    try:
        if reference(program) == "unstable":
            return "finite differences are unstable at the point"
        if program.dims2 is not None and reference(program, second=True) == "unstable":
            return "finite differences are unstable at the second point"
    except (_Timeout, Exception) as e:  # noqa: BLE001
        return f"reference failed: {type(e).__name__}: {e}"
    return None


# ============================================================================ checking


def _is_internal(e: BaseException) -> bool:
    return not isinstance(e, SymdiffError) or type(e).__name__ == "InternalError"


def _classify_exception(e: BaseException, stage: str) -> Outcome:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    cls = "internal" if _is_internal(e) else "refused"
    return Outcome(cls, f"{type(e).__name__}: {first[:300]}", stage)


def structure_error(g: Any, x: Any, where: str, arrays: list) -> str | None:
    """Why gradient ``g`` does not have the structure, type, shape and dtype of argument ``x``."""
    if isinstance(x, dict):
        if type(g) is not dict or set(g) != set(x):
            return f"{where}: gradient of a dict is {type(g).__name__} {list(g) if isinstance(g, dict) else ''}"
        return next((e for k in x if (e := structure_error(g[k], x[k], f"{where}[{k!r}]", arrays))), None)
    if isinstance(x, (list, tuple)):
        if type(g) is not type(x) or len(g) != len(x):
            return f"{where}: gradient of a {type(x).__name__} of {len(x)} is {type(g).__name__}"
        return next((e for i, (a, b) in enumerate(zip(g, x)) if (e := structure_error(a, b, f"{where}[{i}]", arrays))),
                    None)
    if isinstance(x, np.generic):
        if type(g) is not type(x):
            return f"{where}: gradient of a {type(x).__name__} is {type(g).__name__}"
        return None
    if isinstance(x, float):
        if type(g) is not float:
            return f"{where}: gradient of a float is {type(g).__name__}"
        return None
    if type(g) is not np.ndarray:
        return f"{where}: gradient of an ndarray is {type(g).__name__}"
    if g.shape != x.shape or g.dtype != x.dtype:
        return f"{where}: gradient has shape {g.shape} dtype {g.dtype}, argument {x.shape} {x.dtype}"
    if any(np.shares_memory(g, a) for a in arrays):
        return f"{where}: gradient shares memory with an argument"
    return None


def _arrays(tree: Any) -> list:
    return [leaf for _, leaf in _leaves(tree) if isinstance(leaf, np.ndarray)]


def _tolerances(program: Program) -> tuple:
    return (RTOL32, ATOL32) if program.low_precision else (RTOL, ATOL)


def _compare(got: Any, args: list, argnums: Any, ref: tuple, stage: str, tols: tuple = (RTOL, ATOL)) -> Outcome | None:
    value, fd, noise = ref
    nums = _nums(argnums)
    if isinstance(argnums, int):
        got = (got,)
    elif type(got) is not tuple or len(got) != len(nums):
        return Outcome("wrong", f"argnums {argnums!r} gives {type(got).__name__}, not a tuple of {len(nums)}", stage)
    for n, g, want in zip(nums, got, fd):
        err = structure_error(g, args[n], f"argument {n}", _arrays(args))
        if err:
            return Outcome("wrong", "structure: " + err, stage)
        for (path, _), w in zip(_leaves(args[n]), want):
            leaf = _get(g, path)
            if not _close(leaf, w, noise, tols=tols):
                return Outcome("wrong", f"gradient of argument {n}{''.join(f'[{p!r}]' for p in path)}: "
                                        f"symdiff {np.round(np.asarray(leaf, dtype=float), 6).tolist()} "
                                        f"finite differences {np.round(w, 6).tolist()}", stage)
    return None


def check(program: Program) -> Outcome:
    """Compile ``program`` with symdiff.grad / value_and_grad and classify what happens."""
    try:
        with _alarm(TIMEOUT_S), np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _check(program)
    except _Timeout:
        return Outcome("hang", f"no result within {TIMEOUT_S} s")


def check_transform(program: Program, transform: str = "grad") -> Outcome:
    """``check`` (``grad``), or forward mode: ``jvp`` along a random tangent of the differentiated
    arguments against the finite-difference gradient, or ``hvp`` (one array or float argument)
    against central differences of ``symdiff.grad`` along a random direction."""
    if transform == "grad":
        return check(program)
    try:
        with _alarm(TIMEOUT_S), np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _check_jvp(program) if transform == "jvp" else _check_hvp(program)
    except _Timeout:
        return Outcome("hang", f"no result within {TIMEOUT_S} s")


def _random_tangent(rng: np.random.Generator, x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _random_tangent(rng, v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_random_tangent(rng, v) for v in x)
    if isinstance(x, np.ndarray):
        return rng.standard_normal(x.shape) if np.issubdtype(x.dtype, np.inexact) else np.zeros(x.shape)
    return float(rng.standard_normal()) if isinstance(x, (float, np.floating)) else 0.0


def _zero_tangent(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _zero_tangent(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_zero_tangent(v) for v in x)
    return np.zeros(x.shape) if isinstance(x, np.ndarray) else 0.0


def _forward_setup(program: Program) -> tuple:
    """(the function, float64 arguments, the reference) or an Outcome that ends the check."""
    ref = reference(program)
    if ref == "unstable":
        return Outcome("unstable", "finite differences disagree between step sizes")
    if program.aux or program.between is not None:
        return Outcome("skipped", "returns an aux value or changes globals between calls")
    return ref


def _check_jvp(program: Program) -> Outcome:
    ref = _forward_setup(program)
    if isinstance(ref, Outcome):
        return ref
    value, fd, noise = ref
    nums = _nums(program.argnums)
    rng = np.random.default_rng(program.seed)
    stage = "symdiff.jvp"
    with Loaded(program.source, f"jvp_{program.family}_{program.seed}") as mod:
        fn = target(mod.ns, program.name)
        args = program.make_args(as64=True)
        tangents = [_random_tangent(rng, a) if i in nums else _zero_tangent(a) for i, a in enumerate(args)]
        before = copy.deepcopy(args)
        result, bad = _call(lambda *a: symdiff.jvp(fn, a, tangents), args, stage)
        if bad:
            return bad
        if not same_values(args, before):
            return Outcome("mutated", "jvp changed its arguments", stage)
    out, t_out = result
    want = sum(float(np.sum(np.asarray(w) * np.asarray(_get(tangents[n], path), dtype=float)))
               for n, grads in zip(nums, fd) for (path, _), w in zip(_leaves(args[n]), grads))
    if not (isinstance(out, (float, np.floating)) and abs(out - value) <= 1e-9 * (1 + abs(value))):
        return Outcome("wrong", f"jvp value {out!r} but the function returns {value!r}", stage)
    size = 1.0 + sum(float(np.sum(np.abs(np.asarray(_get(tangents[n], p), dtype=float))))
                     for n in nums for p, _ in _leaves(args[n]))
    if not _close(np.asarray(t_out, dtype=float), np.asarray(want), noise * size, size):
        return Outcome("wrong", f"jvp tangent {t_out!r} but finite differences give {want!r}", stage)
    return Outcome("pass")


def _check_hvp(program: Program) -> Outcome:
    ref = _forward_setup(program)
    if isinstance(ref, Outcome):
        return ref
    if not isinstance(program.argnums, int):
        return Outcome("skipped", "hvp of several arguments")
    n = program.argnums
    rng = np.random.default_rng(program.seed)
    stage = "symdiff.hvp"
    with Loaded(program.source, f"hvp_{program.family}_{program.seed}") as mod:
        fn = target(mod.ns, program.name)
        args = program.make_args(as64=True)
        x = args[n]
        if not (isinstance(x, float) or isinstance(x, np.ndarray) and x.dtype == np.float64):
            return Outcome("skipped", "hvp with respect to a container or a non-float argument")
        v = _random_tangent(rng, x)
        try:
            g = symdiff.grad(fn, argnums=n)
            eps = 1e-5
            moved = [lambda step: [a if i != n else x + step * v for i, a in enumerate(args)]][0]
            want = (np.asarray(g(*moved(eps)), dtype=float) - np.asarray(g(*moved(-eps)), dtype=float)) / (2 * eps)
            check = (np.asarray(g(*moved(1e-4)), dtype=float) - np.asarray(g(*moved(-1e-4)), dtype=float)) / 2e-4
        except _Timeout:
            raise
        except Exception as e:  # noqa: BLE001 - grad's own failures are the grad transform's to report
            return Outcome("skipped", f"grad fails: {type(e).__name__}")
        scale = 1.0 + float(np.max(np.abs(want), initial=0.0))
        if not np.allclose(want, check, rtol=1e-3, atol=1e-4 * scale):
            return Outcome("unstable", "finite differences of grad disagree between step sizes")
        before = copy.deepcopy(args)
        got, bad = _call(lambda *a: symdiff.hvp(fn, argnums=n)(*a), [*args, v], stage)
        if bad:
            return bad
        if not same_values(args, before):
            return Outcome("mutated", "hvp changed its arguments", stage)
    if np.shape(got) != np.shape(x) or not np.allclose(np.asarray(got, dtype=float), want, rtol=1e-4,
                                                        atol=1e-5 * scale):
        return Outcome("wrong", f"hvp {_short(got)} but finite differences of grad give {_short(want)}", stage)
    return Outcome("pass")


def _value_error(value: Any, want: float, program: Program, stage: str) -> Outcome | None:
    rtol = RTOL32 if program.low_precision else 1e-9
    if not (isinstance(value, (float, np.floating)) and abs(value - want) <= rtol * (1 + abs(want))):
        return Outcome("wrong", f"value_and_grad value {value!r} but the function returns {want!r}", stage)
    return None


def _aux_error(got: Any, want: Any, program: Program, stage: str) -> Outcome | None:
    """Why the aux output symdiff returned is not the function's own."""
    rtol = RTOL32 if program.low_precision else 1e-9
    gl, wl = _leaves(got), _leaves(want)
    same_tree = _tree_shape(got) == _tree_shape(want)
    if same_tree and all(np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=rtol, atol=rtol)
                         for (_, a), (_, b) in zip(gl, wl)):
        return None
    return Outcome("wrong", f"aux {_short(got)} but the function gives {_short(want)}", stage)


def _tree_shape(tree: Any) -> Any:
    if isinstance(tree, dict):
        return ("dict", tuple((k, _tree_shape(v)) for k, v in tree.items()))
    if isinstance(tree, (list, tuple)):
        return (type(tree).__name__, tuple(_tree_shape(v) for v in tree))
    return "leaf"


def _short(v: Any) -> str:
    return re.sub(r"\s+", " ", repr(v))[:200]


def _call(fn: Callable, args: list, stage: str) -> tuple:
    """(result, None) or (None, the outcome of the exception ``fn(*args)`` raised)."""
    try:
        return fn(*args), None
    except _Timeout:
        raise
    except Exception as e:  # noqa: BLE001
        return None, _classify_exception(e, stage)


def _check(program: Program) -> Outcome:
    ref = reference(program)
    if ref == "unstable":
        return Outcome("unstable", "finite differences disagree between step sizes")
    tols = _tolerances(program)
    with Loaded(program.source, f"chk_{program.family}_{program.seed}") as mod:
        fn = target(mod.ns, program.name)
        argnums = program.argnums
        if program.aux:
            g, bad = _check_aux_first(program, fn, ref, tols)
        else:
            g, bad = _check_first(program, fn, ref, tols)
        if bad:
            return bad

        args = program.make_args2()
        if args is not None:
            stage = "second call, other shapes"
            run_between(mod.ns, program)
            ref2 = reference(program, second=True)
            if ref2 == "unstable":
                return Outcome("unstable", "finite differences disagree at the second point")
            before = copy.deepcopy(args)
            got, bad = _call(g, args, stage)
            if bad:
                return bad
            if not same_values(args, before):
                return Outcome("mutated", "the second gradient call changed its arguments", stage)
            if program.aux:
                if not (isinstance(got, tuple) and len(got) == 2):
                    return Outcome("wrong", f"value_and_grad(has_aux=True) gives {_short(got)}", stage)
                got = got[1]
            bad = _compare(got, args, argnums, ref2, stage, tols)
            if bad:
                return bad
    return Outcome("pass")


def _check_first(program: Program, fn: Callable, ref: tuple, tols: tuple) -> tuple:
    """symdiff.grad and value_and_grad on the first arguments: (the gradient, None) or (None, a failure)."""
    argnums = program.argnums
    stage = "symdiff.grad"
    try:
        g = symdiff.grad(fn, argnums=argnums)
        stage = "gradient call"
        args = program.make_args()
        before = copy.deepcopy(args)
        got = g(*args)
    except _Timeout:
        raise
    except Exception as e:  # noqa: BLE001
        return None, _classify_exception(e, stage)
    if not same_values(args, before):
        return None, Outcome("mutated", "the gradient call changed its arguments", stage)
    bad = _compare(got, args, argnums, ref, stage, tols)
    if bad:
        return None, bad

    stage = "value_and_grad"
    try:
        vg = symdiff.value_and_grad(fn, argnums=argnums)
        args = program.make_args()
        value, got = vg(*args)
    except _Timeout:
        raise
    except Exception as e:  # noqa: BLE001
        return None, _classify_exception(e, stage)
    if not same_values(args, before):
        return None, Outcome("mutated", "value_and_grad changed its arguments", stage)
    bad = _value_error(value, ref[0], program, stage) or _compare(got, args, argnums, ref, stage, tols)
    return (None, bad) if bad else (g, None)


def _check_aux_first(program: Program, fn: Callable, ref: tuple, tols: tuple) -> tuple:
    """value_and_grad(has_aux=True) on the first arguments: (it, None) or (None, a failure)."""
    argnums = program.argnums
    stage = "value_and_grad(has_aux=True)"
    want_aux = fn(*program.make_args())[1]
    try:
        vg = symdiff.value_and_grad(fn, argnums=argnums, has_aux=True)
        stage = "value_and_grad(has_aux=True) call"
        args = program.make_args()
        before = copy.deepcopy(args)
        out = vg(*args)
    except _Timeout:
        raise
    except Exception as e:  # noqa: BLE001
        return None, _classify_exception(e, stage)
    if not same_values(args, before):
        return None, Outcome("mutated", "value_and_grad changed its arguments", stage)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], tuple) and len(out[0]) == 2):
        return None, Outcome("wrong", f"value_and_grad(has_aux=True) gives {_short(out)}, not ((loss, aux), grad)",
                             stage)
    (value, aux), got = out
    bad = _value_error(value, ref[0], program, stage) or _aux_error(aux, want_aux, program, stage) or \
        _compare(got, args, argnums, ref, stage, tols) or _check_grad_with_aux(program, fn, want_aux, ref, tols)
    return (None, bad) if bad else (vg, None)


def _check_grad_with_aux(program: Program, fn: Callable, want_aux: Any, ref: tuple, tols: tuple) -> Outcome | None:
    """grad(has_aux=True) on the first arguments gives (gradient, aux): None, or the failure."""
    stage = "grad(has_aux=True)"
    args = program.make_args()
    try:
        out = symdiff.grad(fn, argnums=program.argnums, has_aux=True)(*args)
    except _Timeout:
        raise
    except Exception as e:  # noqa: BLE001
        return _classify_exception(e, stage)
    if not (isinstance(out, tuple) and len(out) == 2):
        return Outcome("wrong", f"grad(has_aux=True) gives {_short(out)}, not (grad, aux)", stage)
    return _aux_error(out[1], want_aux, program, stage) or _compare(out[0], args, program.argnums, ref, stage, tols)


# ============================================================================ minimising


def _bodies(tree: ast.AST) -> list:
    """Every statement list in ``tree``: (owner node, field name)."""
    out = []
    for node in ast.walk(tree):
        for name in ("body", "orelse"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                out.append((node, name))
    return out


def _candidates(source: str, main: str):
    """Smaller variants of ``source``: one statement deleted, an ``if`` replaced by one of its
    arms, a binary operation replaced by one operand."""
    tree = ast.parse(source)
    n_bodies = len(_bodies(tree))
    for b in range(n_bodies):
        owner, name = _bodies(tree)[b]
        for i in range(len(getattr(owner, name))):
            t = ast.parse(source)
            o, nm = _bodies(t)[b]
            stmts = getattr(o, nm)
            st = stmts[i]
            if isinstance(st, (ast.Import, ast.ImportFrom)) or (isinstance(st, ast.FunctionDef) and st.name == main
                                                                 and o is t):
                continue
            replacements = [[]]
            if isinstance(st, ast.If):
                replacements = [st.body, st.orelse, []]
            elif isinstance(st, (ast.For, ast.While)):
                replacements = [[], st.body]
            for rep in replacements:
                t2 = copy.deepcopy(t)
                o2, nm2 = _bodies(t2)[b]
                new = getattr(o2, nm2)[:i] + copy.deepcopy(rep) + getattr(o2, nm2)[i + 1:]
                if not new:
                    new = [ast.Pass()] if nm2 == "body" else []
                setattr(o2, nm2, new)
                yield ast.unparse(ast.fix_missing_locations(t2))
    n_binops = sum(isinstance(n, ast.BinOp) for n in ast.walk(tree))
    for k in range(n_binops):
        for side in ("left", "right"):
            t = _ReplaceBinOp(k, side).visit(ast.parse(source))
            yield ast.unparse(ast.fix_missing_locations(t))


class _ReplaceBinOp(ast.NodeTransformer):
    """Replaces the ``k``-th binary operation (in walk order) by one of its operands."""

    def __init__(self, k: int, side: str):
        self.k, self.side, self.seen = k, side, -1

    def visit_BinOp(self, node):
        self.seen += 1
        if self.seen == self.k:
            return getattr(node, self.side)
        self.generic_visit(node)
        return node


def _unbound_names(source: str) -> set:
    """Names read in ``source`` that nothing in it binds (deleting an assignment can leave
    such a name in code that does not run; symdiff then rightly refuses it)."""
    import builtins

    tree = ast.parse(source)
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound


def minimise(program: Program, budget: int = 150) -> Program:
    """A smaller program that is still valid and fails with the same class (and, for
    exceptions, the same exception type) as ``program``."""
    target = check(program)
    if target.cls == "pass":
        return program
    best = program
    tried = 0
    improved = True
    while improved and tried < budget:
        improved = False
        for src in _candidates(best.source, best.name):
            if tried >= budget:
                break
            if len(src) >= len(best.source):
                continue
            tried += 1
            try:
                compile(src, "<candidate>", "exec")
            except SyntaxError:  # e.g. a break left outside its loop
                continue
            if _unbound_names(src):
                continue
            cand = best.with_source(src)
            if valid_reference(cand) is not None:
                continue
            if check(cand).key == target.key:
                best = cand
                improved = True
                break
    return best


# ============================================================================ generators


class Scope:
    """The names a generated body may read: floats, ints and arrays (with symbolic shapes)."""

    def __init__(self, floats=(), ints=(), arrays=None, funcs=None, fixed=()):
        self.floats = list(floats)
        self.ints = list(ints)
        self.arrays = dict(arrays or {})
        self.funcs = dict(funcs or {})  # callable name -> (kind, nparams)
        self.fixed = set(fixed)  # readable, never assigned (self.scale, a global)

    def copy(self) -> Scope:
        return Scope(self.floats, self.ints, self.arrays, self.funcs, self.fixed)

    def targets(self) -> list:
        """The names a statement may assign."""
        return [n for n in self.floats + list(self.arrays) if n not in self.fixed]


VEC_SHAPES = [("N",), ("R",)]


def _paren(expr: str) -> str:
    return expr if expr.isidentifier() else f"({expr})"


def _dims_in(sc: Scope) -> set:
    return {d for shape in sc.arrays.values() for d in shape if d != 1}


def _broadcast_parts(shape: tuple) -> list:
    """Shapes that broadcast to ``shape`` alone (with ``shape`` itself on the other side)."""
    out = [shape, ()]
    for k in range(1, len(shape) + 1):
        out.append(shape[-k:])
    if len(shape) == 2:
        out += [(1, shape[1]), (shape[0], 1)]
    return [s for s in out if s == () or any(d != 1 for d in s)]


class Gen:
    """Random source text for one program. ``mode`` is "scalar" (Python floats and math) or
    "array" (NumPy); ``control`` allows if/loops/while/early returns."""

    def __init__(self, rng: random.Random, mode: str, control: bool):
        self.r = rng
        self.mode = mode
        self.control = control
        self.lines: list[str] = []
        self.indent = 1
        self.names = itertools.count()
        self.helpers: list[str] = []
        self.depth = 0
        self.elementwise = False  # helper bodies that must work on arrays too: no branches on values
        self.aux = False  # returns are (loss, aux)
        self.extended = False  # more constructs: long elif chains, %, rounding, swaps, range steps...
        self.no_return = False  # in a with block: no return statements

    # ---------------------------------------------------------------- utilities
    def emit(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def const(self) -> str:
        return self.r.choice(["0.5", "1.5", "2.0", "0.3", "-0.7", "1.1", "0.25", "-1.3", "3.0"])

    def pick(self, weighted: list) -> Any:
        items, weights = zip(*weighted)
        return self.r.choices(items, weights)[0]

    # ---------------------------------------------------------------- scalar expressions
    def sx(self, sc: Scope, d: int) -> str:
        """A float-valued expression."""
        r = self.r
        if d <= 0 or r.random() < 0.2:
            return self.sleaf(sc)
        if self.extended and r.random() < 0.15:
            return self.sx_more(sc, d)
        arr = self.mode == "array" and sc.arrays
        kind = self.pick([("bin", 5), ("div", 2), ("fn", 4), ("exp", 1), ("log", 1), ("sqrt", 1), ("pow", 2),
                          ("abs", 1), ("minmax", 0 if self.elementwise else 2),
                          ("ifexp", 0 if self.elementwise else 2), ("neg", 1), ("int", 1 if sc.ints else 0),
                          ("reduce", 6 if arr else 0), ("call", 3 if sc.funcs else 0)])
        m = "np" if self.mode == "array" and r.random() < 0.5 else "math"
        a = lambda: self.sx(sc, d - 1)  # noqa: E731
        if kind == "bin":
            return f"({a()} {r.choice(['+', '-', '*', '+'])} {a()})"
        if kind == "div":
            return f"({a()} / {self.positive(sc, d - 1, m)})"
        if kind == "fn":
            return f"{m}.{r.choice(['sin', 'cos', 'tanh'])}({a()})"
        if kind == "exp":
            return f"{m}.exp({m}.tanh({a()}))" if r.random() < 0.6 else f"{m}.exp(0.3 * {self.sleaf(sc)})"
        if kind == "log":
            return f"{m}.log({self.positive(sc, d - 1, m)})"
        if kind == "sqrt":
            return f"{m}.sqrt({self.positive(sc, d - 1, m)})"
        if kind == "pow":
            x = f"({a()})"
            opts = [f"{x} ** 2", f"{x} ** 3", f"({self.positive(sc, d - 1, m)} ** 1.5)", f"({x} * {x})"]
            if not self.elementwise:
                opts += [f"pow({x}, 2)", f"pow({self.positive(sc, d - 1, m)}, 0.5)"]
            return r.choice(opts)
        if kind == "abs":
            return f"abs({a()})"
        if kind == "minmax":
            f = r.choice(["min", "max"])
            if r.random() < 0.05:
                return f"{f}({a()}, {a()}, {a()})"
            return f"{f}({a()}, {a()})"
        if kind == "ifexp":
            return f"({a()} if {self.cond(sc, d - 1)} else {a()})"
        if kind == "neg":
            return f"(-{a()})"
        if kind == "int":
            return f"({r.choice(sc.ints)} * {self.sleaf(sc)})" if r.random() < 0.5 else \
                f"({r.choice(sc.ints)} + {self.const()})"
        if kind == "reduce":
            return self.reduce(sc, d - 1)
        return self.callexpr(sc, d - 1, ())

    def sleaf(self, sc: Scope) -> str:
        if sc.floats and self.r.random() < 0.8:
            return self.r.choice(sc.floats)
        if self.mode == "array" and sc.arrays and self.r.random() < 0.5:
            return self.reduce(sc, 0)
        return self.const()

    def positive(self, sc: Scope, d: int, m: str) -> str:
        """An expression that is at least 0.25 (for log, sqrt, division, fractional powers)."""
        x = self.sx(sc, d)
        return self.r.choice([f"({x} * {x} + 0.5)", f"(1.5 + {m}.sin({x}))", f"(2.0 + {m}.tanh({x}))",
                              f"{m}.exp({m}.tanh({x}))", f"(abs({x}) + 0.25)"])

    def cond(self, sc: Scope, d: int, arr_ok: bool = True) -> str:
        """A boolean expression on floats (and reductions of arrays)."""
        r = self.r
        if self.extended and r.random() < 0.2:
            return self.cond_more(sc, d)
        kind = self.pick([("cmp", 6), ("chain", 2), ("and", 2), ("or", 2), ("not", 1),
                          ("int", 2 if sc.ints else 0)])
        x = lambda: self.sx(sc, max(d - 1, 0))  # noqa: E731
        if kind == "cmp" or d <= 0:
            return f"{x()} {r.choice(['<', '>', '<=', '>='])} {r.choice([self.const(), x()])}"
        if kind == "chain":
            lo, hi = sorted(r.sample([-1.0, -0.5, -0.2, 0.0, 0.3, 0.8, 1.5], 2))
            return f"{lo} < {x()} < {hi}" if r.random() < 0.5 else f"{x()} < {x()} <= {hi}"
        if kind == "and":
            return f"({self.cond(sc, d - 1)} and {self.cond(sc, d - 1)})"
        if kind == "or":
            return f"({self.cond(sc, d - 1)} or {self.cond(sc, d - 1)})"
        if kind == "not":
            return f"not {self.cond(sc, d - 1)}"
        i = r.choice(sc.ints)
        return r.choice([f"{i} < 2", f"{i} % 2 == 0", f"{i} >= 1", f"{i} == 1"])

    # ---------------------------------------------------------------- array expressions
    def arrays_of(self, sc: Scope, shape: tuple) -> list:
        return [n for n, s in sc.arrays.items() if s == shape]

    def ax(self, sc: Scope, shape: tuple, d: int) -> str:
        """An array expression of symbolic ``shape`` (dims "R", "N" and 1s)."""
        r = self.r
        if shape == ():
            return self.sx(sc, d)
        have = self.arrays_of(sc, shape)
        if d <= 0 or (have and r.random() < 0.25):
            return self.aleaf(sc, shape)
        kind = self.pick([("bin", 6), ("div", 2), ("un", 5), ("maxmin", 2), ("where", 2), ("make", 4),
                          ("call", 2 if sc.funcs else 0)])
        a = lambda s=shape: self.ax(sc, s, d - 1)  # noqa: E731
        if kind == "bin":
            op = r.choice(["+", "-", "*", "+"])
            left, right = shape, r.choice(_broadcast_parts(shape))
            if len(shape) == 2 and r.random() < 0.3:
                left, right = (shape[0], 1), r.choice([(1, shape[1]), (shape[1],)])
            if r.random() < 0.5:
                left, right = right, left
            if left == () and right == ():
                left = shape
            return f"({a(left)} {op} {a(right)})"
        if kind == "div":
            den = a(r.choice(_broadcast_parts(shape)))
            return f"({a()} / {r.choice([f'(1.5 + np.cos({den}))', f'({den} * {den} + 1.0)', '2.0'])})"
        if kind == "un":
            x = a()
            return r.choice([f"np.sin({x})", f"np.cos({x})", f"np.tanh({x})", f"np.exp(np.tanh({x}))",
                             f"np.log({x} * {x} + 1.0)", f"np.log1p({x} * {x})", f"np.sqrt({x} * {x} + 0.5)",
                             f"np.abs({x})", f"np.square({x})", f"{x} ** 2", f"{x} ** 3", f"(-{x})",
                             f"np.arctan({x})", f"np.exp(0.5 * {self.aleaf(sc, shape)})"])
        if kind == "maxmin":
            return f"np.{r.choice(['maximum', 'minimum'])}({a()}, {a(r.choice(_broadcast_parts(shape)))})"
        if kind == "where":
            return f"np.where({self.mask(sc, shape, d - 1)}, {a()}, {a(r.choice(_broadcast_parts(shape)))})"
        if kind == "call":
            return self.callexpr(sc, d - 1, shape)
        return self.make(sc, shape, d - 1)

    def mask(self, sc: Scope, shape: tuple, d: int) -> str:
        return f"{self.ax(sc, shape, max(d, 0))} {self.r.choice(['>', '<'])} {self.r.choice(['0.0', '0.3', '-0.2'])}"

    def aleaf(self, sc: Scope, shape: tuple) -> str:
        have = self.arrays_of(sc, shape)
        if have:
            return self.r.choice(have)
        return self.make(sc, shape, 0)

    def any_array(self, sc: Scope) -> tuple:
        name = self.r.choice(list(sc.arrays))
        return name, sc.arrays[name]

    def make(self, sc: Scope, shape: tuple, d: int) -> str:
        """An expression that builds ``shape`` from arrays of other shapes (only dims in scope)."""
        r = self.r
        self.depth += 1
        if self.depth > 60:
            raise _Regenerate()
        dims = _dims_in(sc)
        src = lambda s: _paren(self.ax(sc, s, d) if d > 0 else self.aleaf(sc, s))  # noqa: E731
        opts = []
        if len(shape) == 1:
            (n,) = shape
            other = "R" if n == "N" else "N"
            opts += [lambda: f"np.concatenate([{src(shape)}[:1], {src(shape)}[1:]])",
                     lambda: f"np.stack([{src(shape)}, {src(shape)}])[{r.choice(['0', '1'])}]",
                     lambda: f"np.reshape({src((1, n))}, (-1,))",
                     lambda: f"{src((n, 1))}[:, 0]"]
            if other in dims:
                m = (other, n)  # axis 0 reduces `other` away
                f = r.choice(['sum', 'mean', 'max', 'min', 'var', 'std', 'prod'])
                opts += [lambda: f"np.{f}({src(m)}, axis=0)",
                         lambda: f"{src(m)}[{r.choice(['0', '1', '-1'])}]",
                         lambda: f"np.{r.choice(['sum', 'mean'])}({src(m[::-1])}, axis={r.choice(['1', '-1'])})",
                         lambda: f"{src(m[::-1])}[:, {r.choice(['1', '-1', '0'])}]",
                         lambda: f"({src(m[::-1])} @ {src((other,))})",
                         lambda: f"np.dot({src((other,))}, {src(m)})"] * 2
        elif shape[0] == 1:
            n = shape[1]
            other = "R" if n == "N" else "N"
            opts += [lambda: f"{src((n,))}[None]", lambda: f"{src((n,))}[None, :]",
                     lambda: f"np.reshape({src((n,))}, (1, -1))"]
            if other in dims:
                opts += [lambda: f"np.{r.choice(['sum', 'mean', 'max'])}({src((other, n))}, axis=0, keepdims=True)"]
        elif shape[1] == 1:
            n = shape[0]
            other = "R" if n == "N" else "N"
            opts += [lambda: f"{src((n,))}[:, None]", lambda: f"np.reshape({src((n,))}, (-1, 1))"]
            if other in dims:
                opts += [lambda: f"np.{r.choice(['sum', 'mean', 'min'])}({src((n, other))}, axis=1, keepdims=True)"]
        else:
            opts += [lambda: f"{src(shape[::-1])}.T", lambda: f"np.transpose({src(shape[::-1])})",
                     lambda: f"({src((shape[0], 1))} * {src((1, shape[1]))})",
                     lambda: f"np.outer({src((shape[0],))}, {src((shape[1],))})",
                     lambda: f"np.concatenate([{src(shape)}[:1], {src(shape)}[1:]], axis=0)"]
        out = r.choice(opts)()
        self.depth -= 1
        return out

    def reduce(self, sc: Scope, d: int) -> str:
        """A float (NumPy scalar) computed from arrays."""
        r = self.r
        dims = _dims_in(sc)
        has_r = "R" in dims and "N" in dims
        vecs = [v for v in VEC_SHAPES if v[0] in dims]
        shape = r.choice(vecs + ([("R", "N")] if has_r else []) + vecs[:1])
        src = lambda s=shape: _paren(self.ax(sc, s, d) if d > 0 else self.aleaf(sc, s))  # noqa: E731
        kind = self.pick([("red", 6), ("dot", 2), ("index", 3), ("slice", 2), ("fancy", 1), ("mask", 1),
                          ("cat", 1), ("matmul2", 1 if has_r else 0), ("reshape", 1 if has_r else 0)])
        if kind == "red":
            f = self.pick([("sum", 5), ("mean", 3), ("max", 2), ("min", 2), ("prod", 1), ("var", 1), ("std", 1)])
            extra = ", ddof=1" if f in ("var", "std") and r.random() < 0.3 else ""
            if len(shape) == 2 and r.random() < 0.3:
                extra += f", axis={r.choice([0, 1, -1])}"
                return f"np.sum(np.{f}({src()}{extra}))"
            return f"np.{f}({src()}{extra})"
        if kind == "dot":
            v = r.choice(vecs)
            return r.choice([f"({src(v)} @ {src(v)})", f"np.dot({src(v)}, {src(v)})"])
        if kind == "index":
            if len(shape) == 1:
                return f"{src()}[{r.choice(['0', '1', '2', '-1', '-2'])}]"
            return f"{src()}[{r.choice(['0', '1', '-1'])}, {r.choice(['0', '2', '-1'])}]"
        if kind == "slice":
            if len(shape) == 1:
                x = src()
                return r.choice([f"np.sum({x}[::2])", f"np.sum({x}[1:] * {x}[:-1])", f"np.sum({x}[::-1] * {x})",
                                 f"np.sum({x}[1:3] ** 2)"])
            return f"np.sum({src()}[1:, ::2])"
        if kind == "fancy":
            v = r.choice(vecs)
            return f"np.sum({src(v)}[[0, 2, 2, -1]] * np.array([0.5, -1.0, 2.0, 0.3]))"
        if kind == "mask":
            x = src()
            return f"np.sum({x}[{x} > {r.choice(['0.0', '0.4', '-0.3'])}])"
        if kind == "cat":
            v = r.choice(vecs)
            opts = [f"np.sum(np.concatenate([{src(v)}, {src(v)}]) ** 2)",
                    f"np.sum(np.stack([{src(v)}, {src(v)}]) * {src(v)})",
                    f"np.sum(np.stack([{src(v)}, {src(v)}], axis=1) * {src(v)}[:, None])"]
            if has_r:
                opts.append(f"np.sum(np.concatenate([{src(('R', 'N'))}, {src(('R', 'N'))}], axis=1))")
            return r.choice(opts)
        if kind == "matmul2":
            m = src(("R", "N"))
            return r.choice([f"np.sum({m} @ {src(('R', 'N'))}.T)", f"np.sum(np.dot({m}.T, {src(('R', 'N'))}))"])
        return f"np.sum(np.reshape({src(('R', 'N'))}, (-1,)) * np.reshape({src(('N', 'R'))}.T, (-1,)))"

    def callexpr(self, sc: Scope, d: int, shape: tuple) -> str:
        """A call of a helper in scope, with positional/keyword/default argument variations."""
        name = self.r.choice(list(sc.funcs))
        kind, nparams, params = sc.funcs[name]
        arg = lambda: self.ax(sc, shape, d) if shape else self.sx(sc, d)  # noqa: E731
        if kind == "apply":
            fname = self.r.choice([n for n, v in sc.funcs.items() if v[0] in ("elem", "lambda")] or ["np.tanh"])
            return f"{name}({fname}, {arg()})" if self.r.random() < 0.5 else f"{name}({fname}, {arg()}, k=1.5)"
        if kind == "rec":
            return f"{name}({arg()}, {self.r.choice([1, 2, 3])})"
        first = arg()
        if nparams == 1:
            return f"{name}({first})"
        style = self.r.choice(["pos", "kw", "default"])
        if style == "pos":
            return f"{name}({first}, {self.sx(sc, 0)})"
        if style == "kw":
            return f"{name}({first}, {params[1]}={self.sx(sc, 0)})"
        return f"{name}({first})"

    # ---------------------------------------------------------------- statements
    def any_value(self, sc: Scope, d: int) -> tuple:
        """(expression, shape) of a random value in the current mode."""
        if self.mode == "array" and sc.arrays and self.r.random() < 0.7:
            shape = self.r.choice(sorted(set(sc.arrays.values()), key=str))
            return self.ax(sc, shape, d), shape
        return self.sx(sc, d), ()

    def bind(self, sc: Scope, name: str, shape: tuple) -> None:
        if shape == ():
            if name not in sc.floats:
                sc.floats.append(name)
        else:
            sc.arrays[name] = shape

    def assign(self, sc: Scope, d: int) -> None:
        r = self.r
        targets = sc.targets()
        if targets and r.random() < 0.4:
            name = r.choice(targets)
            shape = sc.arrays.get(name, ())
            expr = self.ax(sc, shape, d) if shape else self.sx(sc, d)
            op = r.choice(["=", "+=", "-=", "=", "+="] + (["*="] if shape else []))
            if op == "*=":
                expr = f"np.tanh({expr})"
            if (shape or self.elementwise) and op != "=" and not re.fullmatch(r"[ab]\d+", name):
                # not an array this function made: in place it could be the caller's
                self.emit(f"{name} = {name} {op[0]} {_paren(expr)}")
            else:
                self.emit(f"{name} {op} {expr}")
            return
        expr, shape = self.any_value(sc, d)
        name = self.fresh("v")
        self.emit(f"{name} = {expr}")
        self.bind(sc, name, shape)

    def array_update(self, sc: Scope, d: int) -> None:
        """Item assignment / in-place operators on a copy the function made, and aliases."""
        r = self.r
        base, shape = self.any_array(sc)
        a = self.fresh("a")
        self.emit(f"{a} = {r.choice([f'{base}.copy()', f'{base} * 1.0', f'np.sin({base})'])}")
        sc.arrays[a] = shape
        for _ in range(r.randint(1, 3)):
            kind = r.choice(["item", "item", "inplace", "alias", "loop"])
            if kind == "item" and len(shape) == 1:
                idx = r.choice(["0", "1", "-1", "2"])
                self.emit(f"{a}[{idx}] {r.choice(['=', '+=', '*='])} {self.sx(sc, d)}")
            elif kind == "item" and len(shape) == 2:
                if shape[0] == 1 or shape[1] == 1:
                    self.emit(f"{a} += {self.ax(sc, shape, d)}")
                elif r.random() < 0.5:
                    self.emit(f"{a}[:, {r.choice(['1', '0', '-1'])}] {r.choice(['=', '+='])} "
                              f"{self.ax(sc, (shape[0],), d)}")
                else:
                    self.emit(f"{a}[{r.choice(['1', '0', '-1'])}] {r.choice(['=', '+=', '-='])} "
                              f"{self.ax(sc, (shape[1],), d)}")
            elif kind == "inplace":
                op = r.choice(["+=", "*=", "-="])
                expr = self.ax(sc, r.choice(_broadcast_parts(shape)), d)
                self.emit(f"{a} {op} {f'np.tanh({expr})' if op == '*=' else expr}")
            elif kind == "alias":
                b = self.fresh("b")
                self.emit(f"{b} = {a}")
                self.emit(f"{b} {r.choice(['+=', '*='])} {self.ax(sc, r.choice(_broadcast_parts(shape)), d)}")
                if r.random() < 0.5:
                    self.emit(f"{b}[{r.choice(['0', '-1'])}] = {self.sx(sc, 0)}")
                if r.random() < 0.4:  # b now read too
                    sc.arrays[b] = shape
            else:
                i = self.fresh("i")
                self.emit(f"for {i} in range({r.choice(['2', '3'])}):")
                self.indent += 1
                row = f"{a}[{i}]" if len(shape) == 1 else f"{a}[{i}]" if shape[0] != 1 else f"{a}[0, {i}]"
                self.emit(f"{row} = {row} * {self.sx(sc, 0)} + {r.choice(['0.1', '0.5'])}")
                self.indent -= 1

    def block(self, sc: Scope, d: int, n: int, loop: bool) -> None:
        """``n`` statements; ``loop`` allows break/continue."""
        for _ in range(n):
            self.statement(sc, d, loop)

    def statement(self, sc: Scope, d: int, loop: bool) -> None:
        r = self.r
        ctrl = self.control and d > 0
        if self.extended and r.random() < 0.25:
            return self.statement_more(sc, d, loop)
        kind = self.pick([("assign", 6), ("update", 2 if self.mode == "array" and sc.arrays else 0),
                          ("if", 3 if ctrl else 0), ("for", 2 if ctrl else 0), ("while", 1 if ctrl else 0),
                          ("jump", 2 if loop else 0), ("ret", 0.5 if ctrl and not self.no_return else 0)])
        if kind == "assign":
            self.assign(sc, 2)
        elif kind == "update":
            self.array_update(sc, 1)
        elif kind == "if":
            self.if_stmt(sc, d, loop)
        elif kind == "for":
            self.for_stmt(sc, d)
        elif kind == "while":
            self.while_stmt(sc, d)
        elif kind == "jump":
            self.emit(f"if {self.cond(sc, 1)}:")
            self.indent += 1
            self.emit(r.choice(["break", "continue"]))
            self.indent -= 1
        else:
            self.emit(f"if {self.cond(sc, 1)}:")
            self.indent += 1
            self.emit(f"return {self.returned(sc)}")
            self.indent -= 1

    def if_stmt(self, sc: Scope, d: int, loop: bool) -> None:
        r = self.r
        self.emit(f"if {self.cond(sc, 2)}:")
        arms = 1 + (r.random() < 0.4) + (r.random() < 0.6)  # if [elif] [else]
        for k in range(arms):
            if 0 < k < arms - 1 or (k == 1 and arms == 2 and r.random() < 0.3):
                self.emit(f"elif {self.cond(sc, 1)}:")
            elif k > 0:
                self.emit("else:")
            self.indent += 1
            inner = sc.copy()
            self.block(inner, d - 1, r.randint(1, 2), loop)
            if r.random() < 0.1 and not self.no_return:
                self.emit(f"return {self.returned(inner)}")
            self.indent -= 1
            self.carry_back(sc, inner)

    def carry_back(self, sc: Scope, inner: Scope) -> None:
        """Names bound only inside a nested block are not read after it; shapes stay as they were."""
        for n in list(sc.arrays):
            if n in inner.arrays and inner.arrays[n] != sc.arrays[n]:
                raise _Regenerate()

    def loop_range(self, sc: Scope) -> str:
        ints = [i for i in sc.ints if i in ("n", "m")]
        if self.extended and self.r.random() < 0.4:
            opts = ["range(0, 6, 2)", "range(4, 0, -1)", "range(3, -1, -2)", "range(1, 7, 3)"]
            opts += [f"range({i}, 0, -1)" for i in ints] + [f"range(1, {i} + 2, 2)" for i in ints]
            opts += [f"range(len({a}))" for a, shape in sc.arrays.items() if len(shape) == 1 and a.isidentifier()]
            return self.r.choice(opts)
        opts = ["range(3)", "range(4)", "range(1, 4)", "range(2)"]
        if ints:
            opts += [f"range({self.r.choice(ints)})"] * 3 + [f"range(1, {self.r.choice(ints)})"]
        return self.r.choice(opts)

    def for_stmt(self, sc: Scope, d: int) -> None:
        r = self.r
        rng_expr = self.loop_range(sc)
        twice = r.random() < 0.3
        for _ in range(2 if twice else 1):
            i = self.fresh("i")
            self.emit(f"for {i} in {rng_expr}:")
            self.indent += 1
            inner = sc.copy()
            inner.ints.append(i)
            self.loop_body(inner, d)
            self.indent -= 1
            self.carry_back(sc, inner)

    def loop_body(self, inner: Scope, d: int) -> None:
        r = self.r
        targets = inner.targets()
        if targets:  # a carried value
            name = r.choice(targets)
            shape = inner.arrays.get(name, ())
            step = self.ax(inner, shape, 1) if shape else self.sx(inner, 2)
            self.emit(f"{name} = {name} * {r.choice(['0.8', '0.5', '1.0'])} + {step}")
        self.block(inner, d - 1, r.randint(1, 2), True)

    def while_stmt(self, sc: Scope, d: int) -> None:
        k = self.fresh("k")
        self.emit(f"{k} = 0")
        extra = f" and {self.cond(sc, 1)}" if self.r.random() < 0.5 else ""
        self.emit(f"while {k} < {self.r.choice(['3', '4', '5'])}{extra}:")
        self.indent += 1
        self.emit(f"{k} += 1")
        inner = sc.copy()
        inner.ints.append(k)
        self.loop_body(inner, d)
        self.indent -= 1
        self.carry_back(sc, inner)

    # ---------------------------------------------------------------- more constructs (self.extended)
    def sx_more(self, sc: Scope, d: int) -> str:
        """Rarer float expressions: %, rounding (zero derivative), unary +, nested conditional
        expressions, more math functions, float(), len()."""
        r = self.r
        a = lambda: self.sx(sc, d - 1)  # noqa: E731
        m = "np" if self.mode == "array" and r.random() < 0.5 else "math"
        kinds = ["mod", "pos"] + ([] if self.elementwise else ["ifexp2", "float", "step", "mathfn", "mathfn"])
        vecs = [n for n, shape in sc.arrays.items() if len(shape) == 1 and not self.elementwise]
        if vecs:
            kinds.append("len")
        kind = r.choice(kinds)
        if kind == "mod":
            return r.choice([f"({a()} % {r.choice(['1.7', '2.5', '0.9'])})", f"({a()} % (2.0 + {m}.tanh({a()})))"])
        if kind == "pos":
            return f"(+{a()})"
        if kind == "ifexp2":
            return f"({a()} if {self.cond(sc, d - 1)} else {a()} if {self.cond(sc, d - 1)} else {a()})"
        if kind == "float":
            return f"float({a()})"
        if kind == "len":
            v = r.choice(vecs)
            return r.choice([f"(len({v}) * 0.1 * {a()})", f"({v}.shape[0] * 0.05 + {a()})"])
        x = a()
        if kind == "step":
            if m == "np":
                return r.choice([f"(np.floor({x}) * 0.25 + {x})", f"(np.round({x}, 1) + 0.5 * {x})",
                                 f"(np.sign({x}) * {x})", f"(np.rint({x}) - {x})"])
            return r.choice([f"(math.floor({x}) * 0.25 + {x})", f"(round({x}, 1) + 0.5 * {x})",
                             f"(math.ceil({x}) - {x})", f"(int({x}) * 0.5 + {x})", f"(math.trunc({x}) + {x} * {x})"])
        p = self.positive(sc, d - 1, "math")
        return r.choice([f"math.hypot({x}, {p})", f"math.atan2({x}, {p})", f"math.erf({x})",
                         f"math.expm1(math.tanh({x}))", f"math.sinh(math.tanh({x}))", f"math.cosh(math.tanh({x}))",
                         f"math.log({p}, 2.0)", f"math.log2({p})", f"math.log10({p})", f"math.atan({x})",
                         f"math.asin(0.9 * math.tanh({x}))", f"math.acos(0.8 * math.sin({x}))",
                         f"math.pow({p}, 1.5)", f"math.fabs({x})", f"math.tan(0.5 * math.tanh({x}))",
                         f"math.exp(-{x} * {x})"])

    def cond_more(self, sc: Scope, d: int) -> str:
        r = self.r
        x = lambda: self.sx(sc, max(d - 1, 0))  # noqa: E731
        opts = [lambda: f"-1.0 < {x()} <= {x()} < 1.5", lambda: f"not ({x()} < {x()})",
                lambda: f"{x()} != {self.const()}", lambda: f"({x()} > 0.0) == ({x()} > 0.5)"]
        if sc.ints:
            i = r.choice(sc.ints)
            opts += [lambda: f"{i} % 3 == 1", lambda: f"{i}", lambda: f"0 < {i} < 3"]
        return r.choice(opts)()

    def statement_more(self, sc: Scope, d: int, loop: bool) -> None:
        """Long elif chains, tuple swaps, while True with break, nested loops, pass."""
        r = self.r
        ctrl = self.control and d > 0
        floats = [n for n in sc.floats if n not in sc.fixed]
        kinds = ["swap"] if len(floats) >= 2 else []
        if ctrl:
            kinds += ["elif", "elif", "while_true", "nested", "pass"]
        if not kinds:
            return self.assign(sc, 2)
        kind = r.choice(kinds)
        if kind == "swap":
            p, q = r.sample(floats, 2)
            self.emit(f"{p}, {q} = {q} * {r.choice(['0.5', '0.9'])} + {self.sx(sc, 1)}, {p} + {q}")
        elif kind == "elif":
            arms = r.randint(3, 5)
            for k in range(arms):
                if k == 0:
                    self.emit(f"if {self.cond(sc, 1)}:")
                elif k < arms - 1 or r.random() < 0.5:
                    self.emit(f"elif {self.cond(sc, 1)}:")
                else:
                    self.emit("else:")
                self.indent += 1
                inner = sc.copy()
                self.block(inner, d - 1, 1, loop)
                self.indent -= 1
                self.carry_back(sc, inner)
        elif kind == "while_true":
            k = self.fresh("k")
            self.emit(f"{k} = 0")
            self.emit("while True:")
            self.indent += 1
            self.emit(f"{k} += 1")
            inner = sc.copy()
            inner.ints.append(k)
            self.loop_body(inner, d)
            self.emit(f"if {k} >= {r.choice(['2', '3', '4'])}:")
            self.emit("    break")
            self.indent -= 1
            self.carry_back(sc, inner)
        elif kind == "nested":
            i, j = self.fresh("i"), self.fresh("j")
            self.emit(f"for {i} in {self.loop_range(sc)}:")
            self.indent += 1
            self.emit(f"for {j} in range({i} + 1):")
            self.indent += 1
            inner = sc.copy()
            inner.ints += [i, j]
            self.loop_body(inner, d - 1)
            self.emit(f"if {j} >= 1 and {self.cond(inner, 0)}:")
            self.emit(f"    {r.choice(['break', 'continue'])}")
            self.indent -= 2
            self.carry_back(sc, inner)
        else:
            self.emit(f"if {self.cond(sc, 1)}:")
            self.emit("    pass")
            self.emit("else:")
            self.indent += 1
            inner = sc.copy()
            self.block(inner, d - 1, 1, loop)
            self.indent -= 1
            self.carry_back(sc, inner)

    def returned(self, sc: Scope) -> str:
        """What a ``return`` gives: the loss, or ``loss, aux``."""
        loss = self.result(sc)
        return f"{loss}, {self.aux_value(sc)}" if self.aux else loss

    def aux_value(self, sc: Scope) -> str:
        """An auxiliary output: a value in scope, a dict or a tuple of some."""
        r = self.r
        names = sc.floats + list(sc.arrays)
        a, b = r.choice(names), r.choice(names)
        return r.choice([a, f"{{'out': {a}, 'other': {b}}}", f"({a}, {b})", f"{{'step': {a}, 'count': 3}}",
                         f"[{a}, 2.0 * {b}]"])

    def result(self, sc: Scope) -> str:
        """The returned float: mixes several of the values in scope."""
        r = self.r
        parts = []
        names = sc.floats[-3:] + r.sample(sc.floats, min(2, len(sc.floats)))
        parts += names
        for a in list(sc.arrays)[-3:]:
            parts.append(r.choice([f"np.sum({a})", f"np.sum({a} ** 2)", f"np.mean(np.sin({a}))"]))
        if not parts or r.random() < 0.5:
            parts.append(self.sx(sc, 2))
        r.shuffle(parts)
        return " + ".join(parts[:5]) if r.random() < 0.6 else f"{parts[0]} * {self.sx(sc, 1)} + " + \
            " + ".join(parts[1:5] or ["0.0"])


class _Regenerate(Exception):
    """The generator painted itself into a corner: try the next sub-seed."""


HEADER = "import math\n\nimport numpy as np\n\n\n"


def _params(spec_items: list) -> tuple:
    names = [n for n, _ in spec_items]
    return names, [s for _, s in spec_items]


def _argnums(r: random.Random, names: list, spec: list) -> Any:
    diff = [i for i, s in enumerate(spec) if not (isinstance(s, Leaf) and s.kind == "i")]
    k = r.choice([1, 1, 2, len(diff)])
    chosen = sorted(r.sample(diff, min(k, len(diff))))
    if len(chosen) == 1 and r.random() < 0.7:
        return chosen[0]
    return tuple(chosen)


def _dims(r: random.Random) -> tuple:
    rr, nn = r.sample([3, 4, 5], 2)
    n2 = r.choice([2, 3, 4])
    return ({"R": rr, "N": nn, "n": r.choice([2, 3, 4]), "m": 3, "L": 3},
            {"R": r.choice([3, 4, 5, 6]), "N": r.choice([3, 4, 5, 6]), "n": n2 + 1, "m": 4, "L": r.choice([2, 4])})


def _finish(gen: Gen, sc: Scope, name: str, params: list) -> str:
    gen.emit(f"return {gen.returned(sc)}")
    body = "\n".join(gen.lines)
    helpers = "".join(h + "\n\n\n" for h in gen.helpers)
    return HEADER + helpers + f"def {name}({', '.join(params)}):\n{body}\n"


def gen_scalar(r: random.Random, extended: bool = False, aux: bool = False) -> tuple:
    """Python floats, math, control flow."""
    items = [("x", Leaf("f")), ("y", Leaf("f"))]
    if r.random() < 0.5:
        items.append(("z", Leaf("f")))
    if r.random() < 0.6:
        items.append(("n", Leaf("i", "n")))
    names, spec = _params(items)
    gen = Gen(r, "scalar", control=True)
    gen.extended, gen.aux = extended, aux
    sc = Scope(floats=[n for n in names if n != "n"], ints=[n for n in names if n == "n"])
    s = gen.fresh("s")
    gen.emit(f"{s} = {r.choice(['0.0', 'x', '1.0', 'x * y'])}")
    sc.floats.append(s)
    gen.block(sc, 3, r.randint(2, 4), False)
    return names, spec, gen, sc


def gen_array(r: random.Random, statements: int | None = None, extended: bool = False, aux: bool = False) -> tuple:
    """NumPy on float64 arrays, straight-line."""
    items = [("x", Leaf("a", ("N",))), ("A", Leaf("a", ("R", "N")))]
    for name, shape in (("b", ("R", 1)), ("c", (1, "N")), ("u", ("R",))):
        if r.random() < 0.4:
            items.append((name, Leaf("a", shape)))
    if r.random() < 0.4:
        items.append(("t", Leaf("f")))
    names, spec = _params(items)
    gen = Gen(r, "array", control=False)
    gen.extended, gen.aux = extended, aux
    sc = Scope(floats=[n for n, s in items if s.kind == "f"], arrays={n: s.info for n, s in items if s.kind == "a"})
    gen.block(sc, 2, r.randint(2, 5) if statements is None else statements, False)
    return names, spec, gen, sc


def gen_mixed(r: random.Random, extended: bool = False, aux: bool = False) -> tuple:
    """Scalar control flow around array code."""
    names, spec, gen, sc = gen_array(r, extended=extended, aux=aux)
    if r.random() < 0.6:
        names.append("n")
        spec.append(Leaf("i", "n"))
        sc.ints.append("n")
    gen.control = True
    h = gen.fresh("h")
    gen.emit(f"{h} = {r.choice(['np.zeros_like(x)', 'x * 1.0', 'np.tanh(x)'])}")
    sc.arrays[h] = ("N",)
    s = gen.fresh("s")
    gen.emit(f"{s} = 0.0")
    sc.floats.append(s)
    if r.random() < 0.5:  # a recurrence
        i = gen.fresh("i")
        gen.emit(f"for {i} in {gen.loop_range(sc)}:")
        gen.indent += 1
        gen.emit(f"{h} = np.tanh(A.T @ np.tanh(A @ {h} + 0.1 * {i}) * 0.5 + x)")
        gen.emit(f"{s} = {s} + np.sum({h} ** 2)")
        if r.random() < 0.5:
            gen.emit(f"if np.max({h}) > {r.choice(['0.5', '0.8', '0.95'])}:")
            gen.indent += 1
            gen.emit(r.choice(["break", "continue", f"return {s} + np.sum({h})"
                                                    + (f", {gen.aux_value(sc)}" if gen.aux else "")]))
            gen.indent -= 1
        gen.indent -= 1
    gen.block(sc, 3, r.randint(2, 4), False)
    return names, spec, gen, sc


def gen_calls(r: random.Random) -> tuple:
    """Module-level helpers with keyword and default arguments, nested defs reading enclosing
    variables, lambdas, functions passed as arguments, a recursive helper."""
    array = r.random() < 0.5
    if array:
        names, spec, gen, sc = gen_array(r, statements=r.randint(0, 2))
    else:
        items = [("x", Leaf("f")), ("y", Leaf("f"))] + ([("z", Leaf("f"))] if r.random() < 0.5 else [])
        names, spec = _params(items)
        gen = Gen(r, "scalar", control=False)
        sc = Scope(floats=list(names))
        gen.block(sc, 1, r.randint(0, 2), False)
    m = "np" if array else "math"
    for k in range(r.randint(1, 3)):
        hname = f"helper{k}"
        kind = r.choice(["elem", "elem", "two"])
        hgen = Gen(r, "scalar", control=not array and r.random() < 0.4)
        hgen.elementwise = array
        hsc = Scope(floats=["u"] + (["v"] if kind == "two" else []), funcs=dict(sc.funcs))
        params = ["u"] + ([f"v={gen.const()}"] if kind == "two" else [])
        if r.random() < 0.4:
            params.append(f"scale={gen.const()}")
            hsc.floats.append("scale")
        hgen.block(hsc, 1, r.randint(0, 2), False)
        lines = [f"def {hname}({', '.join(params)}):", *hgen.lines, f"    return {hgen.sx(hsc, 2)}"]
        text = "\n".join(lines)
        gen.helpers.append(text.replace("math.", "np.") if array else text)
        sc.funcs[hname] = ("elem" if kind == "elem" else "two", 2 if kind == "two" else 1,
                           ["u", "v"] if kind == "two" else ["u"])
    if r.random() < 0.5:
        gen.helpers.append(f"def apply(fn, u, k=2.0):\n    return fn(u) * k + {m}.sin(u)")
        sc.funcs["apply"] = ("apply", 2, ["fn", "u"])
    if r.random() < 0.3:
        gen.helpers.append(f"def rec(u, k):\n    if k <= 0:\n        return u\n"
                           f"    return rec({m}.sin(u) * 0.9 + 0.1, k - 1) * 1.1")
        sc.funcs["rec"] = ("rec", 2, ["u", "k"])
    # a nested def reading an enclosing variable bound before the call, and a lambda
    if r.random() < 0.7:
        c = gen.fresh("c")
        gen.emit(f"{c} = {gen.sx(sc, 1)}")
        sc.floats.append(c)
        gen.emit("def inner(w):")
        gen.emit(f"    return {m}.tanh(w * {c}) + {gen.sleaf(sc)}")
        sc.funcs["inner"] = ("elem", 1, ["w"])
    if r.random() < 0.7:
        gen.emit(f"sq = lambda w: w * w * {gen.sleaf(sc)} + {m}.cos(w)")
        sc.funcs["sq"] = ("lambda", 1, ["w"])
    if not gen.helpers and "inner" not in sc.funcs and "sq" not in sc.funcs:
        raise _Regenerate()
    for _ in range(r.randint(2, 4)):
        expr, shape = gen.any_value(sc, 1)
        call = gen.callexpr(sc, 1, shape)
        v = gen.fresh("v")
        gen.emit(f"{v} = {call} + {expr}" if r.random() < 0.5 else f"{v} = {call}")
        gen.bind(sc, v, shape)
    gen.control = r.random() < 0.5
    gen.block(sc, 2, r.randint(0, 2), False)
    return names, spec, gen, sc


def gen_containers(r: random.Random) -> tuple:
    """dict/list/tuple arguments (nested), lists built in the function, comprehensions, iteration."""
    gen = Gen(r, "array", control=r.random() < 0.3)
    sc = Scope()
    layout = r.choice(["dict", "list", "tuple", "nested", "layers"])
    items = [("x", Leaf("a", ("N",)))]
    if layout == "dict":
        items.insert(0, ("p", {"W": Leaf("a", ("R", "N")), "b": Leaf("a", ("R",)), "s": Leaf("f")}))
        gen.emit(r.choice(["W = p['W']", "W = p['W'] * 1.0"]))
        gen.emit("b = p['b']")
        gen.emit("h = np.tanh(W @ x + b) * p['s']")
        sc.arrays.update(W=("R", "N"), b=("R",), h=("R",))
        sc.floats.append("x0")
        gen.emit("x0 = p['s'] * 0.5")
        walk = r.choice(["none", "values", "items", "keys", "comp", "get"])  # iterating the dict, its methods
        reg = gen.fresh("reg")
        if walk == "values":
            gen.emit(f"{reg} = sum(np.sum(v * v) for v in p.values())")
        elif walk == "items":
            gen.emit(f"{reg} = 0.0\n    for key, v in p.items():\n"
                     f"        {reg} = {reg} + (2.0 if key == 'b' else 0.5) * np.sum(np.sin(v))")
        elif walk == "keys":
            gen.emit(f"{reg} = sum(np.sum(p[key] ** 2) for key in {r.choice(['p', 'p.keys()'])} if key != 's')")
        elif walk == "comp":
            gen.emit("q = {key: v * 0.5 for key, v in p.items() if key != 'W'}")
            gen.emit(f"{reg} = np.sum(q['b']) * q['s']")
        elif walk == "get":
            gen.emit(f"{reg} = np.sum(p.get('b')) + p.get('t', 1.5) * ('s' in p) + len(p) * p.get('s')")
        if walk != "none":
            sc.floats.append(reg)
    elif layout == "list":
        items.insert(0, ("ws", [Leaf("a", ("N",)) for _ in range(3)]))
        gen.emit(f"s = {r.choice(['0.0', 'np.sum(ws[0])', 'np.sum(ws[-1] * x)'])}")
        style = r.choice(["for", "enum", "zip", "rev", "comp", "gen"])
        if style == "for":
            gen.emit("for w in ws:\n        s = s + np.sum(np.sin(w) * x)")
        elif style == "enum":
            gen.emit("for i, w in enumerate(ws):\n        s = s + (i + 1.0) * np.sum(w * x)")
        elif style == "zip":
            gen.emit("for a, c in zip(ws, reversed(ws)):\n        s = s + np.sum(a * c)")
        elif style == "rev":
            gen.emit("for w in reversed(ws):\n        s = s * 0.5 + np.sum(np.cos(w))")
        elif style == "comp":
            gen.emit("parts = [np.tanh(w * x) for w in ws]\n    s = s + np.sum(np.stack(parts))")
        else:
            gen.emit("s = s + sum(np.sum(w ** 2) for w in ws)")
        sc.floats.append("s")
        gen.emit("w0 = ws[0] + ws[1]")
        sc.arrays["w0"] = ("N",)
    elif layout == "tuple":
        items.insert(0, ("tp", (Leaf("f"), Leaf("a", ("N",)))))
        gen.emit("a, v = tp")
        gen.emit("g = v * a + x")
        sc.floats.append("a")
        sc.arrays.update(v=("N",), g=("N",))
    elif layout == "nested":
        items.insert(0, ("p", {"enc": {"W": Leaf("a", ("N", "N")), "c": Leaf("a", ("N",))},
                               "pair": (Leaf("f"), Leaf("a", ("N",))), "ws": [Leaf("a", ("N",)), Leaf("f")]}))
        gen.emit("enc = p['enc']")
        gen.emit("k, off = p['pair']")
        gen.emit("h = np.tanh(enc['W'] @ x + enc['c']) * k + off")
        gen.emit("z = p['ws'][0] * p['ws'][1]")
        sc.floats.append("k")
        sc.arrays.update(off=("N",), h=("N",), z=("N",))
    else:
        items.insert(0, ("layers", [(Leaf("a", ("N", "N")), Leaf("a", ("N",))) for _ in range(2)]))
        gen.emit("h = x")
        gen.emit("for W, b in layers:\n        h = np.tanh(W @ h + b)")
        sc.arrays["h"] = ("N",)
    sc.arrays["x"] = ("N",)
    # lists built in the function
    style = r.choice(["append", "comp", "display", "dict", "none"])
    if style == "append":
        hs = gen.fresh("hs")
        vec = r.choice([n for n, s in sc.arrays.items() if s == ("N",)])
        gen.emit(f"{hs} = []")
        gen.emit(f"cur = {vec}")
        bound = r.choice(["3", "4", "n"])
        gen.emit(f"for t in range({bound}):")
        if bound == "n":
            items.append(("n", Leaf("i", "n")))
        gen.emit(f"    cur = np.tanh(cur * {r.choice(['0.9', '1.1'])} + {r.choice(list(sc.arrays))}[0])")
        gen.emit(f"    {hs}.append(cur)")
        red = r.choice([f"np.sum(np.stack({hs}) ** 2)", f"np.sum(sum({hs}))", f"np.sum(np.array({hs})[-1])",
                        f"np.sum({hs}[-1] * {hs}[0])"])
        v = gen.fresh("v")
        gen.emit(f"{v} = {red}")
        sc.floats.append(v)
    elif style == "comp":
        vec = r.choice([n for n, s in sc.arrays.items() if s == ("N",)])
        v = gen.fresh("v")
        gen.emit(f"{v} = " + r.choice([f"sum(np.sum(np.sin({vec} * k)) for k in range(1, 4))",
                                       f"np.sum(np.stack([np.tanh({vec} * k) for k in range(1, 3)]))",
                                       f"sum([np.sum(r ** 2) for r in [{vec}, {vec} * 2.0]])"]))
        sc.floats.append(v)
    elif style == "display":
        v = gen.fresh("v")
        gen.emit(f"pair = ({r.choice(list(sc.arrays))}, {gen.sx(sc, 1)})")
        gen.emit(f"q, {v} = pair")
        sc.floats.append(v)
    elif style == "dict":
        gen.emit(f"d = {{'a': {gen.ax(sc, ('N',), 1)}, 'b': {gen.sx(sc, 1)}}}")
        v = gen.fresh("v")
        gen.emit(f"{v} = np.sum(d['a'] * d['b'])")
        sc.floats.append(v)
    gen.block(sc, 2, r.randint(0, 2), False)
    names, spec = _params(items)
    return names, spec, gen, sc


# ---------------------------------------------------------------------------- families of other constructs
#
# These families draw from their own random streams: adding one never changes the programs of
# the families above.


@dataclass
class Draft:
    """A generated module: its source, the callable to differentiate and its parameters."""

    source: str
    name: str
    names: list
    spec: list
    aux: bool = False
    between: str | None = None
    fixed_dims: dict = field(default_factory=dict)  # dims of one size in both calls
    argnums: Any = None
    alias_ok: bool = True  # NumPy may be imported under another name


def _numpy_alias(source: str, alias: str) -> str:
    """``source`` with NumPy imported as ``alias`` (``import numpy`` for "numpy")."""
    header = "import numpy\n" if alias == "numpy" else f"import numpy as {alias}\n"
    source = source.replace("import numpy as np\n", header, 1)
    return re.sub(r"(?<![\w.])np\.", alias + ".", source)


def _body(gen: Gen) -> str:
    return "\n".join(gen.lines)


def _emit_lines(gen: Gen, text: str) -> None:
    for line in text.split("\n"):
        gen.emit(line)


def _vec_names(sc: Scope, shape: tuple = ("N",)) -> list:
    return [n for n, s in sc.arrays.items() if s == shape]


_HIDDEN = ["np.tanh(h @ self.W.T + self.b)", "np.sin(h @ self.W) * self.scale + self.b",
           "np.tanh(h @ self.W.T * self.scale) + 0.1 * self.b", "np.tanh(h @ (self.W + self.W.T) * 0.5) * self.scale"]


def gen_objects(r: random.Random) -> Draft:
    """A bound method as the differentiated function: attributes of ``self`` (arrays, floats, an
    int loop count), other methods called on ``self`` with keyword and default arguments, an
    overriding subclass, attributes changed between calls, a lambda wrapping the method."""
    k = r.choice([3, 4])
    cls = r.choice(["Model", "Regressor", "TinyNet", "Layer", "Scorer"])
    obj = r.choice(["model", "net", "layer", "scorer"])
    gen = Gen(r, "array", control=r.random() < 0.5)
    gen.aux = r.random() < 0.15
    gen.indent = 2
    items = [("x", Leaf("a", ("N",))), ("A", Leaf("a", ("R", "N")))]
    if r.random() < 0.5:
        items.append(("y", Leaf("a", ("R",))))
    if r.random() < 0.4:
        items.append(("t", Leaf("f")))
    if r.random() < 0.3:
        items.append(("n", Leaf("i", "n")))
    names, spec = _params(items)
    sc = Scope(floats=[n for n, s in items if s.kind == "f"] + ["self.scale"],
               ints=[n for n, s in items if s.kind == "i"],
               arrays={**{n: s.info for n, s in items if s.kind == "a"}, "self.b": ("N",)},
               fixed={"self.scale", "self.b"})
    hidden, other = r.sample(_HIDDEN, 2)
    derived = r.random() < 0.4
    methods = [
        "    def __init__(self, W, b, scale=1.0, steps=2):",
        "        self.W = W",
        "        self.b = b",
        "        self.scale = scale",
        "        self.steps = steps",
        *(["        self.shift = 0.5 * scale"] if derived else []),
        "",
        "    def hidden(self, h):",
        f"        return {hidden}",
        "",
        "    def penalty(self, weight=0.01):",
        "        return " + r.choice(["weight * np.sum(self.W ** 2)",
                                  "weight * (np.sum(self.b ** 2) + self.scale ** 2)",
                                  "weight * np.sum(np.abs(self.W))"]),
        "",
        "    def predict(self, A):",
        "        return " + r.choice(["self.hidden(A) @ self.b", "np.sum(self.hidden(A), axis=1) * self.scale",
                                  "self.hidden(self.hidden(A)) @ self.b"]),
        "",
    ]
    gen.emit(r.choice(["h = self.hidden(x)", "h = self.hidden(h=x)", "h = self.hidden(x) * self.scale"]))
    sc.arrays["h"] = ("N",)
    if r.random() < 0.5:
        gen.emit("for _ in range(self.steps):")
        gen.emit("    h = " + r.choice(["self.hidden(h)", "0.5 * h + self.hidden(h)", "self.hidden(h + x)"]))
    if derived:
        gen.emit("h = h + self.shift")
    gen.emit(r.choice(["p = self.predict(A)", "p = self.predict(A=A)"]))
    sc.arrays["p"] = ("R",)
    if "y" in names:
        gen.emit("err = p - y")
        sc.arrays["err"] = ("R",)
    gen.block(sc, 2, r.randint(1, 3), False)
    gen.emit(f"reg = self.penalty({r.choice(['', 'weight=0.05', '0.02'])})")
    sc.floats.append("reg")
    gen.emit(f"return {gen.returned(sc)}")
    methods += [f"    def loss(self, {', '.join(names)}):", _body(gen)]
    source = HEADER + f"class {cls}:\n" + "\n".join(methods) + "\n\n\n"
    ctor = cls
    if r.random() < 0.3:
        ctor = f"Scaled{cls}"
        source += f"class {ctor}({cls}):\n    def hidden(self, h):\n        return {other}\n\n\n"
    lo, hi = r.choice([(-0.7, 0.8), (-0.5, 0.6), (-0.9, 0.4)])
    source += (f"{obj} = {ctor}(np.linspace({lo}, {hi}, {k * k}).reshape({k}, {k}), "
               f"np.cos(np.arange({k}) * 0.7) * 0.5, scale={r.choice(['1.3', '0.8', '1.0'])}"
               f"{r.choice(['', ', steps=1', ', steps=3'])})\n")
    between = None
    if r.random() < 0.5:
        between = "retune"
        changes = r.sample([f"{obj}.scale = 0.7", f"{obj}.b = {obj}.b * 0.5 + 0.2", f"{obj}.W[0, 1] += 0.3",
                            f"{obj}.steps = 3", f"{obj}.W = {obj}.W.T.copy()"], r.randint(1, 2))
        source += "\n\ndef retune():\n" + "".join(f"    {c}\n" for c in changes)
    name = f"{obj}.loss"
    if not gen.aux and r.random() < 0.25:
        name = "f"
        source += f"\n\nf = lambda {', '.join(names)}: {obj}.loss({', '.join(names)}) * 0.5 + 0.1\n"
    return Draft(source, name, names, spec, aux=gen.aux, between=between, fixed_dims={"N": k})


def _recursion_pair(r: random.Random, m: str) -> str:
    base = r.choice(["u", f"{m}.tanh(u)", "u * 0.5"])
    return (f"def even(u, k):\n    if k <= 0:\n        return {base}\n"
            f"    return odd({m}.sin(u) * {r.choice(['0.9', '0.7'])} + 0.1, k - 1) + 0.1 * u\n\n\n"
            f"def odd(u, k):\n    if k == 0:\n        return {r.choice(['-u', f'{m}.cos(u)', 'u * u'])}\n"
            f"    return even(u * {r.choice(['0.8', '1.1'])} + {m}.cos(u) * 0.3, k - 1)")


def gen_helpers(r: random.Random) -> Draft:
    """Mutual recursion, keyword (and keyword-only) arguments, closures made by a factory,
    globals (numbers, arrays, helpers) rebound or changed in place between calls, the
    differentiated function itself a closure."""
    array = r.random() < 0.5
    m = "np" if array else "math"
    if array:
        items = [("x", Leaf("a", ("N",))), ("A", Leaf("a", ("R", "N")))]
        if r.random() < 0.4:
            items.append(("t", Leaf("f")))
    else:
        items = [("x", Leaf("f")), ("y", Leaf("f"))] + ([("z", Leaf("f"))] if r.random() < 0.5 else [])
    if r.random() < 0.5:
        items.append(("n", Leaf("i", "n")))
    names, spec = _params(items)
    gen = Gen(r, "array" if array else "scalar", control=r.random() < 0.5)
    gen.aux = r.random() < 0.1
    sc = Scope(floats=[n for n, s in items if s.kind == "f"], ints=[n for n, s in items if s.kind == "i"],
               arrays={n: s.info for n, s in items if s.kind == "a"})
    module: list[str] = [f"SCALE = {gen.const()}", f"OFFSET = {gen.const()}"]
    sc.floats += ["SCALE", "OFFSET"]
    sc.fixed |= {"SCALE", "OFFSET"}
    if array:
        module.append("COEF = np.array([0.3, -0.5, 0.8])")
        sc.floats.append("COEF[1]")
        sc.fixed.add("COEF[1]")
    helpers: list[str] = []
    calls: list[Callable] = []  # each gives a call expression of the shape asked for
    arg = lambda shape: gen.ax(sc, shape, 1) if shape else gen.sx(sc, 1)  # noqa: E731
    if r.random() < 0.6:
        helpers.append(_recursion_pair(r, m))
        k_opts = ["1", "2", "3"] + [i for i in sc.ints if i == "n"] * 2
        calls.append(lambda shape: f"{r.choice(['even', 'odd'])}({arg(shape)}, {r.choice(k_opts)})")
    if r.random() < 0.7:
        kwonly = r.random() < 0.2
        body = r.choice(["weight * u + (1.0 - weight) * {m}.tanh(v) + bias",
                         "{m}.sin(u * weight) * v + bias * u", "(u - v) ** 2 * weight + {m}.cos(bias + u)"])
        helpers.append(f"def combine(u, v{', *' if kwonly else ''}, weight=0.5, bias=0.0):\n"
                       f"    return {body.format(m=m)}")

        def combine_call(shape):
            u, v = arg(shape), arg(shape)
            w, b = gen.sx(sc, 0), gen.const()
            opts = [f"combine({u}, {v})", f"combine({u}, {v}, weight={w})", f"combine({u}, {v}, bias={b}, weight={w})",
                    f"combine(v={v}, u={u}, bias={b})", f"combine({u}, v={v}, weight=0.25)"]
            if not kwonly:
                opts.append(f"combine({u}, {v}, {w})")
            return r.choice(opts)
        calls.append(combine_call)
        if r.random() < 0.4:
            helpers.append(f"def layer(u, scale=1.0):\n    return combine(u, u * scale, weight=0.3) + {m}.tanh(u)")
            calls.append(lambda shape: r.choice([f"layer({arg(shape)})", f"layer({arg(shape)}, scale=SCALE)",
                                                 f"layer(scale={gen.const()}, u={arg(shape)})"]))
    if r.random() < 0.5:
        helpers.append(f"def make_scaler(c, power=2):\n    def scaled(u):\n"
                       f"        return {m}.tanh(u * c) ** power + c\n    return scaled")
        module.append(f"scaler = make_scaler({gen.const()})")
        calls.append(lambda shape: f"scaler({arg(shape)})")
    rebind = r.random() < 0.4
    if rebind:
        helpers.append(f"def act_a(u):\n    return {m}.tanh(u) * SCALE\n\n\ndef act_b(u):\n    return {m}.sin(u) * 0.5")
        module.append("act = act_a")
        calls.append(lambda shape: f"act({arg(shape)})")
    if not calls:
        raise _Regenerate()
    closure = r.random() < 0.2
    gen.indent = 2 if closure else 1
    if closure:
        sc.floats.append("c")
        sc.fixed.add("c")
    gen.block(sc, 1, r.randint(0, 2), False)
    for _ in range(r.randint(2, 4)):
        expr, shape = gen.any_value(sc, 1)
        v = gen.fresh("v")
        call = r.choice(calls)(shape)
        gen.emit(f"{v} = {call} + {expr}" if r.random() < 0.5 else f"{v} = {call}")
        gen.bind(sc, v, shape)
    gen.block(sc, 2, r.randint(0, 2), False)
    gen.emit(f"return {gen.returned(sc)}")
    header = HEADER + "\n".join(module) + "\n\n\n" + "".join(h + "\n\n\n" for h in helpers)
    if closure:
        source = header + (f"def make_f(c):\n    def f({', '.join(names)}):\n{_body(gen)}\n    return f\n\n\n"
                           f"f = make_f({gen.const()})\n")
    else:
        source = header + f"def f({', '.join(names)}):\n{_body(gen)}\n"
    between = None
    if r.random() < 0.5:
        between = "retune"
        changes = [["global SCALE", f"SCALE = {gen.const()}"]]
        if array:
            changes.append([f"COEF[1] = {gen.const()}"])
        if rebind:
            changes.append(["global act", "act = act_b"])
        chosen = r.sample(changes, r.randint(1, len(changes)))
        source += "\n\ndef retune():\n" + "".join(f"    {c}\n" for ch in chosen for c in ch)
    return Draft(source, "f", names, spec, aux=gen.aux, between=between)


def _statement_helpers(r: random.Random, gen: Gen, sc: Scope, m: str) -> tuple[list, list]:
    """Helpers of :func:`gen_statements` and the calls of them (each a function from the shape of
    the value asked for to a call expression): ``*args``/``**kwargs`` called with star-arguments,
    keyword-only parameters, a generator consumed by ``sum``/``list``/``for``, ``map`` and
    ``filter`` with lambdas and named functions, ``dict(...)``."""
    helpers: list[str] = []
    calls: list[Callable] = []
    arg = lambda shape: gen.ax(sc, shape, 1) if shape else gen.sx(sc, 1)  # noqa: E731
    if r.random() < 0.6:
        helpers.append("def total(*parts, scale=1.0, **extra):\n    s = 0.0\n    for t in parts:\n"
                       "        s = s + t\n    return s * scale + extra.get('shift', 0.0)")

        def total_call(shape):
            a, b, w = arg(shape), arg(shape), gen.sx(sc, 0)
            return r.choice([f"total({a})", f"total({a}, {b}, scale={w})", f"total(*({a}, {b}))",
                             f"total(*[{a}, {b}], shift={w})", f"total({a}, **{{'scale': 0.5, 'shift': {w}}})"])
        calls.append(total_call)
    if r.random() < 0.6:
        helpers.append(f"def weigh(u, *, w=0.5, power=2):\n    return w * {m}.tanh(u) ** power + u")
        calls.append(lambda shape: r.choice([f"weigh({arg(shape)})", f"weigh({arg(shape)}, w={gen.sx(sc, 0)})",
                                             f"weigh({arg(shape)}, power=3, w={gen.const()})"]))
    if r.random() < 0.5:
        helpers.append(f"def terms(u, n):\n    for i in range(n):\n        yield {m}.sin(u * (i + 1)) / (i + 1)")
        calls.append(lambda shape: r.choice([f"sum(terms({arg(shape)}, {r.randint(1, 3)}))",
                                             f"2.0 * list(terms({arg(shape)}, 3))[{r.randint(0, 2)}]"]))
    if r.random() < 0.6:
        helpers.append("def square(u):\n    return u * u")

        def map_call(shape):
            a, b = arg(shape), arg(shape)
            lam = r.choice([f"lambda t: t * {gen.const()} + {m}.cos(t)", "square", f"lambda t: {m}.tanh(t) * t"])
            options = [f"sum(map({lam}, [{a}, {b}]))",
                       f"2.0 * list(map(lambda s, t: s * t, [{a}, {b}], [{b}, {a}]))[1]"]
            if not shape:
                options.append(f"(0.5 + sum(filter(lambda t: t > {gen.const()}, [{a}, {b}, {gen.sx(sc, 1)}])))")
            return r.choice(options)
        calls.append(map_call)
    if r.random() < 0.5:
        calls.append(lambda shape: r.choice([
            f"dict(p={arg(shape)}, q={arg(shape)})['{r.choice('pq')}']",
            f"dict(zip(('p', 'q'), ({arg(shape)}, {arg(shape)})))['q']",
            f"dict({{'p': {arg(shape)}}}, q={arg(shape)})['p']"]))
    return helpers, calls


def gen_statements(r: random.Random) -> Draft:
    """``assert`` statements and ``raise`` in branches (checks that hold), ``with np.errstate``
    and ``warnings.catch_warnings`` blocks, keyword-only parameters of the function, and the
    helpers and calls of :func:`_statement_helpers`."""
    array = r.random() < 0.5
    m = "np" if array else "math"
    if array:
        items = [("x", Leaf("a", ("N",))), ("A", Leaf("a", ("R", "N")))]
    else:
        items = [("x", Leaf("f")), ("y", Leaf("f"))]
    names, spec = _params(items)
    gen = Gen(r, "array" if array else "scalar", control=r.random() < 0.5)
    sc = Scope(floats=[n for n, s in items if s.kind == "f"], arrays={n: s.info for n, s in items if s.kind == "a"})
    kwonly = r.random() < 0.4
    if kwonly:
        sc.floats.append("k")
        sc.fixed.add("k")
    helpers, calls = _statement_helpers(r, gen, sc, m)
    finite = (lambda e: f"np.all(np.isfinite({e}))") if array else (lambda e: f"math.isfinite({e})")  # noqa: E731
    gen.block(sc, 1, r.randint(0, 2), False)
    for _ in range(r.randint(2, 5)):
        kind = r.choice(["assert", "raise", "with", "call", "call"] if calls else ["assert", "raise", "with"])
        if kind == "assert":
            expr, _ = gen.any_value(sc, 1)
            gen.emit(r.choice([f"assert {finite(expr)}", f"assert {finite(expr)}, 'not finite'"]))
        elif kind == "raise":
            expr, _ = gen.any_value(sc, 1)
            gen.emit(f"if not {finite(expr)}:")
            gen.emit(f"    raise {r.choice(['ValueError', 'FloatingPointError'])}('not finite')")
        elif kind == "with":
            gen.emit(r.choice(["with np.errstate(divide='ignore', invalid='ignore'):",
                               "with np.errstate(all='ignore'):", "with warnings.catch_warnings():"]))
            gen.indent += 1
            if gen.lines[-1].endswith("catch_warnings():"):
                gen.emit("warnings.simplefilter('ignore')")
            inner = sc.copy()
            gen.no_return = True
            gen.block(inner, 1, r.randint(1, 2), False)
            gen.no_return = False
            gen.indent -= 1
            gen.carry_back(sc, inner)
        else:
            expr, shape = gen.any_value(sc, 1)
            v = gen.fresh("v")
            call = r.choice(calls)(shape)
            gen.emit(f"{v} = {call} + {expr}" if r.random() < 0.5 else f"{v} = {call}")
            gen.bind(sc, v, shape)
    gen.block(sc, 1, r.randint(0, 1), False)
    gen.emit(f"return {gen.returned(sc)}")
    header = "import math\nimport warnings\n\nimport numpy as np\n\n\n" + "".join(h + "\n\n\n" for h in helpers)
    signature = ", ".join(names) + (f", *, k={gen.const()}" if kwonly else "")
    source = header + f"def f({signature}):\n{_body(gen)}\n"
    return Draft(source, "f", names, spec)


def gen_lists(r: random.Random) -> Draft:
    """Lists and dicts built in the function and updated by item (``hs[-1] = ...`` while
    appending, displays, ``d['a'] += ...``), iterated over (for, enumerate, zip, reversed,
    slices, comprehensions), nested; several container arguments differentiated together."""
    gen = Gen(r, "array", control=r.random() < 0.4)
    gen.aux = r.random() < 0.1
    items = [("x", Leaf("a", ("N",)))]
    sc = Scope(arrays={"x": ("N",)})
    containers = []
    if r.random() < 0.5:
        items.append(("p", {"W": Leaf("a", ("R", "N")), "c": Leaf("f")}))
        containers.append(len(items) - 1)
        gen.emit(r.choice(["W, c = p['W'], p['c']", "W = p['W']\n    c = p['c']"]))
        sc.arrays["W"] = ("R", "N")
        sc.floats.append("c")
    if r.random() < 0.5:
        items.append(("ws", [Leaf("a", ("N",)) for _ in range(3)]))
        containers.append(len(items) - 1)
        sc.arrays.update({"ws[0]": ("N",), "ws[-1]": ("N",)})
        sc.fixed |= {"ws[0]", "ws[-1]"}
    if r.random() < 0.3:
        items.append(("pair", (Leaf("f"), Leaf("a", ("N",)))))
        containers.append(len(items) - 1)
        gen.emit("a, v = pair")
        sc.floats.append("a")
        sc.arrays["v"] = ("N",)
    if r.random() < 0.4:
        items.append(("A", Leaf("a", ("R", "N"))))
        sc.arrays["A"] = ("R", "N")
    if r.random() < 0.3:
        items.append(("n", Leaf("i", "n")))
        sc.ints.append("n")
    names, spec = _params(items)
    vec = lambda: gen.ax(sc, ("N",), 1)  # noqa: E731
    val = lambda: gen.ax(sc, ("N",), 1) if r.random() < 0.6 else gen.sx(sc, 1)  # noqa: E731
    bound = r.choice(["3", "4"] + (["n"] if "n" in sc.ints else []))
    for _ in range(r.randint(2, 3)):
        kind = gen.pick([("append", 3), ("display", 2), ("dict", 2), ("floats", 2), ("nested", 0.5),
                         ("args", 1.5 if "ws" in names else 0), ("comp", 2)])
        out = gen.fresh("v")
        if kind == "append":
            hs = gen.fresh("hs")
            start = r.choice(_vec_names(sc))
            two = r.random() < 0.6
            gen.emit(f"{hs} = [{start}, np.tanh({start})]" if two else f"{hs} = [{start}]")
            gen.emit(f"for t in range({bound}):")
            gen.emit(f"    {hs}.append(np.tanh({hs}[-1] * {r.choice(['0.9', '1.1'])} + {vec()}))")
            if two:
                gen.emit(f"    {hs}[-1] = {hs}[-1] + 0.5 * {hs}[-2]")
            else:
                gen.emit(f"    {hs}[-1] {r.choice(['+=', '*=', '-='])} {r.choice(['0.5', 'np.tanh(' + vec() + ')'])}")
            if r.random() < 0.4:
                gen.emit(f"    if t % 2 == 0:\n            {hs}[0] = {hs}[0] * 0.9 + {hs}[-1] * 0.1")
            if r.random() < 0.3:
                gen.emit(f"{hs}[0] = {hs}[0] * 2.0")
            gen.emit(f"{out} = " + r.choice([f"np.sum(np.stack({hs}) ** 2)", f"np.sum(sum({hs}))",
                                             f"np.sum(np.array({hs})[-1] * {hs}[1])",
                                             f"sum(np.sum(h * x) for h in {hs}[1:])",
                                             f"np.sum([np.sum(np.sin(h)) for h in reversed({hs})])"]))
            if r.random() < 0.5:
                sc.arrays[f"{hs}[-1]"] = ("N",)
                sc.fixed.add(f"{hs}[-1]")
        elif kind == "display":
            ps = gen.fresh("ps")
            gen.emit(f"{ps} = [{vec()}, {vec()}, {vec()}]")
            for _ in range(r.randint(1, 3)):
                i = r.choice(["0", "1", "-1"])
                gen.emit(r.choice([f"{ps}[{i}] = {ps}[{i}] * 2.0 + {ps}[1]", f"{ps}[{i}] += {vec()}",
                                   f"{ps}[{i}] *= np.tanh({vec()})", f"{ps}[{i}] -= {gen.sx(sc, 1)}"]))
            style = r.choice(["for", "enum", "zip", "rev", "sum"])
            if style == "for":
                gen.emit(f"{out} = 0.0\n    for q in {ps}:\n        {out} = {out} + np.sum(q * x)")
            elif style == "enum":
                gen.emit(f"{out} = 0.0\n    for j, q in enumerate({ps}):\n        {out} += (j + 1) * np.sum(np.sin(q))")
            elif style == "zip":
                gen.emit(f"{out} = 0.0\n    for q, w in zip({ps}, reversed({ps})):\n"
                         f"        {out} = {out} + np.sum(q * w)")
            elif style == "rev":
                gen.emit(f"{out} = 1.0\n    for q in reversed({ps}):\n        {out} = {out} * 0.5 + np.mean(q)")
            else:
                gen.emit(f"{out} = np.sum(sum({ps}) ** 2)")
        elif kind == "dict":
            d = gen.fresh("d")
            gen.emit(f"{d} = {{'a': {val()}, 'b': {val()}}}")
            for _ in range(r.randint(1, 3)):
                gen.emit(r.choice([f"{d}['a'] += {val()}", f"{d}['b'] *= {r.choice(['0.5', '1.5', 'np.tanh(x)'])}",
                                   f"{d}['c'] = {d}['a'] * {d}['b']", f"{d}['a'] = {d}['a'] - 0.5 * {d}['b']",
                                   f"{d}['b'] -= {gen.sx(sc, 1)}"]))
            gen.emit(f"{out} = np.sum({d}['a']) + np.sum({d}['b'] ** 2)")
        elif kind == "floats":
            cs = gen.fresh("cs")
            gen.emit(f"{cs} = []")
            gen.emit(f"for i in range({bound}):")
            gen.emit(f"    {cs}.append(np.sum(np.sin({vec()} * (i + 1))))")
            gen.emit(r.choice([f"{cs}[0] = {cs}[0] + 1.0", f"{cs}[-1] *= 0.5", f"{cs}[1] += {cs}[0]"]))
            gen.emit(f"{out} = " + r.choice([f"sum({cs})", f"np.sum(np.array({cs}) ** 2)", f"{cs}[-1] * {cs}[0]",
                                             f"sum(w * q for w, q in zip({cs}, {cs}[1:]))"]))
        elif kind == "nested":
            g = gen.fresh("grid")
            gen.emit(f"{g} = [[x, x * 2.0], [{vec()}, {vec()}]]")
            gen.emit(f"{g}[1][0] = {g}[1][0] + {g}[0][1]")
            gen.emit(f"{out} = np.sum({g}[1][0] * {g}[0][0]) + np.sum({g}[1][1])")
        elif kind == "args":
            zs = gen.fresh("zs")
            gen.emit(r.choice([f"{zs} = [w * {gen.sx(sc, 0)} for w in ws]", f"{zs} = list(ws)",
                               f"{zs} = [np.tanh(w) + x for w in ws[1:]]"]))
            gen.emit(f"{zs}[0] = {zs}[0] + {vec()}")
            gen.emit(f"{out} = sum(np.sum(z * w) for z, w in zip({zs}, ws))")
        else:
            gen.emit(f"{out} = " + r.choice([
                f"sum([np.sum(np.tanh({vec()} * k)) for k in range(1, 4) if k % 2 == 1])",
                f"np.sum(np.stack([np.sin(x * k) for k in range({bound})]) ** 2)",
                f"sum(np.sum(a * b) for a, b in zip([x, {vec()}], [{vec()}, x]))",
                f"sum(j * np.sum(q) for j, q in enumerate([{vec()}, {vec()}]))"]))
        sc.floats.append(out)
        gen.block(sc, 1, r.randint(0, 1), False)
    gen.block(sc, 2, r.randint(0, 2), False)
    source = _finish(gen, sc, "f", names)
    argnums = None
    if len(containers) >= 2 and r.random() < 0.6:
        argnums = tuple(sorted(r.sample(containers, r.randint(2, len(containers)))))
    return Draft(source, "f", names, spec, aux=gen.aux, argnums=argnums)


def gen_aliases(r: random.Random) -> Draft:
    """Names bound to one array updated in ``if`` arms, ``while`` and ``for`` loops; NumPy views
    that are only read (must pass) and views an in-place update would change (symdiff must
    refuse these, or get them right)."""
    gen = Gen(r, "array", control=True)
    gen.aux = r.random() < 0.1
    items = [("x", Leaf("a", ("N",))), ("A", Leaf("a", ("R", "N")))]
    if r.random() < 0.5:
        items.append(("t", Leaf("f")))
    if r.random() < 0.3:
        items.append(("n", Leaf("i", "n")))
    names, spec = _params(items)
    sc = Scope(floats=[n for n, s in items if s.kind == "f"], ints=[n for n, s in items if s.kind == "i"],
               arrays={n: s.info for n, s in items if s.kind == "a"})
    gen.block(sc, 1, r.randint(0, 2), False)
    for _ in range(r.randint(1, 3)):
        kind = gen.pick([("if", 2), ("while", 1), ("for", 1), ("cond_alias", 1), ("view_read", 2),
                         ("view_written", 1), ("chain", 1), ("callee", 0.3)])
        base, shape = r.choice([("x", ("N",)), ("A", ("R", "N"))] + [(n, s) for n, s in sc.arrays.items()
                                                                     if n.isidentifier() and len(s) <= 2])
        a, b = gen.fresh("a"), gen.fresh("b")
        copy_expr = r.choice([f"{base}.copy()", f"{base} * 1.0", f"np.tanh({base})", f"np.array({base})"])
        item = "0" if len(shape) == 1 else r.choice(["0", "0, 1", ":, 0"])
        item_shape = () if len(shape) == 1 or item == "0, 1" else ((shape[1],) if item == "0" else (shape[0],))

        def part(shape=shape):
            return gen.ax(sc, r.choice(_broadcast_parts(shape)), 1)

        def item_val(item_shape=item_shape):
            return gen.ax(sc, item_shape, 1) if item_shape else gen.sx(sc, 1)
        gen.emit(f"{a} = {copy_expr}")
        if kind == "if":
            gen.emit(f"{b} = {a}")
            gen.emit(f"if {gen.cond(sc, 1)}:")
            gen.emit(f"    {b} {r.choice(['+=', '-='])} {part()}")
            if r.random() < 0.5:
                gen.emit(f"    {b}[{item}] = {item_val()}")
            if r.random() < 0.5:
                gen.emit(f"elif {gen.cond(sc, 1)}:")
                gen.emit(f"    {a}[{item}] += {item_val()}")
            gen.emit("else:")
            gen.emit(f"    {a} *= np.tanh({part()})")
            if r.random() < 0.5:
                gen.emit(f"    {b}[{item}] -= {item_val()}")
            sc.arrays[a] = sc.arrays[b] = shape
        elif kind == "while":
            k = gen.fresh("k")
            gen.emit(f"{b} = {a}")
            gen.emit(f"{k} = 0")
            extra = f" and {gen.cond(sc, 1)}" if r.random() < 0.4 else ""
            gen.emit(f"while {k} < {r.choice(['2', '3'])}{extra}:")
            gen.emit(f"    {k} += 1")
            for _ in range(r.randint(1, 3)):
                gen.emit("    " + r.choice([f"{b} *= {r.choice(['0.9', '1.1'])}", f"{b}[{item}] += {item_val()}",
                                            f"{a} += {part()}", f"{a}[{item}] = {a}[{item}] * 0.5 + 0.1"]))
            if r.random() < 0.3:
                gen.emit(f"    if {gen.cond(sc, 0)}:\n            break")
            sc.arrays[a] = sc.arrays[b] = shape
        elif kind == "for":
            i = gen.fresh("i")
            gen.emit(f"for {i} in range({r.choice(['2', '3'])}):")
            gen.emit(f"    {b} = {a}")
            row = f"{b}[{i}]" if len(shape) == 1 else f"{b}[{i}, 0]"
            gen.emit(f"    {row} = {row} * {gen.sx(sc, 0)} + {r.choice(['0.1', '0.5'])}")
            if r.random() < 0.5:
                gen.emit(f"    {b} += {part()}")
            sc.arrays[a] = shape
        elif kind == "cond_alias":
            gen.emit(f"if {gen.cond(sc, 1)}:\n        {b} = {a}\n    else:\n        {b} = {a}.copy()")
            gen.emit(f"{b} += {part()}")
            sc.arrays[a] = sc.arrays[b] = shape
        elif kind == "callee":  # a helper that updates the array it is given, as code ported from C does
            if "def scale_(" not in "".join(gen.helpers):
                gen.helpers.append("def scale_(u, k):\n    u *= k\n    u[0] += 0.1\n    return u")
            gen.emit(r.choice([f"scale_({a}, {gen.sx(sc, 0)})", f"{b} = scale_({a}, 0.5)"]))
            sc.arrays[a] = shape
        elif kind == "chain":
            c = gen.fresh("b")
            gen.emit(f"{b} = {a}")
            gen.emit(f"{c} = {b}")
            gen.emit(f"{c} {r.choice(['+=', '*='])} {part()}")
            gen.emit(f"{b}[{item}] = {item_val()}")
            sc.arrays[a] = shape
        else:
            v = gen.fresh("u")
            # a view of an argument, or of the function's own copy (an argument is never updated
            # in place, which would make the program invalid)
            src = base if kind == "view_read" and base in ("x", "A") and r.random() < 0.5 else a
            views = [(f"{src}[1:3]", None), (f"{src}[::2]", None), (f"{src}[::-1]", shape if len(shape) == 1 else None)]
            if len(shape) == 2:
                views += [(f"{src}[0]", (shape[1],)), (f"{src}[:, 1]", (shape[0],)), (f"{src}.T", None),
                          (f"{src}[1:]", None), (f"{src}.reshape(-1)", None)]
            else:
                views += [(f"{src}[None]", None), (f"{src}.reshape(1, -1)", None)]
            view, vshape = r.choice(views)
            gen.emit(f"{v} = {view}")
            if kind == "view_read":
                gen.block(sc, 1, r.randint(1, 2), False)
                if r.random() < 0.4:
                    gen.emit(f"{a} = {a} * 2.0")
            else:
                gen.emit(r.choice([f"{a} *= 2.0", f"{a} += {part()}", f"{a}[{item}] += {item_val()}",
                                   f"{v} += 1.0", f"{v}[0] = {gen.sx(sc, 0)}"]))
            gen.emit(f"{gen.fresh('w')} = 0.0")
            total = gen.fresh("v")
            gen.emit(f"{total} = np.sum({v} ** 2) + np.sum(np.sin({a}))")
            sc.floats.append(total)
            if vshape is not None and kind == "view_read":
                sc.arrays[v] = vshape
                sc.fixed.add(v)  # never updated in place: it views another array
            if kind == "view_read":
                sc.fixed.add(a)
            sc.arrays.setdefault(a, shape)
        gen.block(sc, 1, r.randint(0, 1), False)
    gen.block(sc, 2, r.randint(0, 2), False)
    return Draft(_finish(gen, sc, "f", names), "f", names, spec, aux=gen.aux)


def _float32_spec(r: random.Random, spec: Any, p_array: float, p_scalar: float) -> Any:
    """``spec`` with some float64 arrays made float32 and some floats made NumPy scalars."""
    if isinstance(spec, Leaf):
        if spec.kind == "a" and r.random() < p_array:
            return Leaf("a32", spec.info)
        if spec.kind == "f" and r.random() < p_scalar:
            return Leaf(r.choice(["s64", "s64", "s32"]))
        return spec
    if isinstance(spec, dict):
        return {k: _float32_spec(r, v, p_array, p_scalar) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_float32_spec(r, v, p_array, p_scalar) for v in spec]
    return tuple(_float32_spec(r, v, p_array, p_scalar) for v in spec)


def gen_dtypes(r: random.Random) -> Draft:
    """The programs of the other families with float32 arrays and NumPy scalar arguments (whose
    gradients must keep their dtype and type), sometimes cast inside (``x.astype(np.float64)``)."""
    base = r.choice(["array", "mixed", "containers", "scalar", "calls"])
    names, spec, gen, sc = FAMILIES[base](r)
    source = _finish(gen, sc, "f", names)
    scalar = base == "scalar"
    spec = [_float32_spec(r, s, 0.8, 0.6 if scalar else 0.3) for s in spec]
    if not any(leaf.kind in ("a32", "s64", "s32") for leaf in _spec_leaves(spec)):
        raise _Regenerate()
    if "x" in names and isinstance(spec[names.index("x")], Leaf) and spec[names.index("x")].kind == "a32" \
            and r.random() < 0.2:
        source = source.replace(f"def f({', '.join(names)}):\n", f"def f({', '.join(names)}):\n"
                                f"    x = x.astype({r.choice(['np.float64', 'float'])})\n", 1)
    return Draft(source, "f", names, spec)


# NumPy templates: {v}/{v2} vectors (N,), {M}/{M2} matrices (R, N), {y} (R,), {s} a float,
# {S} a symmetric positive definite (N, N) matrix, {B} a stack of two matrices (2, R, N);
# {out} the name bound, of the shape given (() a float).
_NUMPY_TEMPLATES = [
    ("{out} = np.sum(np.cumsum({v}) * {v2})", ()),
    ("{out} = np.cumsum({M}, axis=1)", ("R", "N")),
    ("{out} = np.cumprod(1.0 + 0.2 * np.tanh({M}), axis=0)", ("R", "N")),
    ("{out} = {v}.cumsum()[-1] + np.sum(np.cumprod(1.0 + 0.1 * {v}))", ()),
    ("{out} = np.median({v})", ()),
    ("{out} = np.median({M}, axis=0)", ("N",)),
    ("{out} = np.sum(np.quantile({v}, [0.25, 0.75]))", ()),
    ("{out} = np.quantile({M}, 0.3, axis=1)", ("R",)),
    ("{out} = np.percentile({v}, 40)", ()),
    ("{out} = np.linalg.norm({v})", ()),
    ("{out} = np.linalg.norm({M}, 'fro')", ()),
    ("{out} = np.linalg.norm({M}, axis=1)", ("R",)),
    ("{out} = np.linalg.norm({M}, 2)", ()),
    ("{out} = np.linalg.norm({M}, 'nuc')", ()),
    ("{out} = np.linalg.norm({v}, 1) + np.linalg.norm({v}, np.inf)", ()),
    ("{out} = np.sum(np.linalg.norm({M}, axis=0, keepdims=True) * {M})", ()),
    ("{out} = np.average({v}, weights=np.exp(np.tanh({v2})))", ()),
    ("{out} = np.average({M}, axis=1, weights={v} * {v} + 0.5)", ("R",)),
    ("{out} = np.var({M}, axis=0, ddof=1)", ("N",)),
    ("{out} = np.std({v}, ddof=1) + {M}.std()", ()),
    ("{out} = np.prod(np.where({v} > 0.3, 1.0 + 0.1 * {v2}, 0.0)) + np.prod(1.0 + 0.2 * {v2})", ()),
    ("{out} = np.prod(1.0 + 0.2 * np.tanh({M}), axis=1)", ("R",)),
    ("{out} = np.sum(np.linalg.inv({S}) * {S})", ()),
    ("{out} = np.linalg.solve({S}, {v})", ("N",)),
    ("{out} = np.sum(np.linalg.solve({S}, {M}.T) * {M}.T)", ()),
    ("{out} = np.linalg.det({S}) * 0.01", ()),
    ("sign_{k}, logdet_{k} = np.linalg.slogdet({S})\n    {out} = sign_{k} * logdet_{k}", ()),
    ("{out} = np.sum(np.linalg.cholesky({S}) ** 2)", ()),
    ("{out} = np.sum(np.linalg.pinv({M}) ** 2)", ()),
    ("w_{k}, V_{k} = np.linalg.eigh({S})\n    {out} = np.sum(w_{k} ** 2) + np.sum(V_{k} ** 2 * w_{k})", ()),
    ("{out} = np.sum(np.linalg.eigvalsh({S}) ** 3)", ()),
    ("{out} = np.sum(np.real(np.linalg.eigvals({S}))) * 0.1", ()),
    ("ew_{k}, ev_{k} = np.linalg.eig({S})\n    {out} = np.sum(ew_{k}) + np.sum(ev_{k} ** 2 * ew_{k})", ()),
    ("U_{k}, s_{k}, Vt_{k} = np.linalg.svd({M}, full_matrices=False)\n"
     "    {out} = np.sum(s_{k} ** 2) + np.sum((U_{k} * s_{k}) @ Vt_{k} * {M2})", ()),
    ("{out} = np.sum(np.linalg.svd({M}, compute_uv=False))", ()),
    ("Q_{k}, Rr_{k} = np.linalg.qr(np.vstack([{M}, np.tanh({M})]))\n"
     "    {out} = np.sum(Q_{k} * np.vstack([{M2}, {M2}])) + np.sum(np.triu(Rr_{k}) ** 2)", ()),
    ("{out} = np.linalg.lstsq(np.vstack([{M}, np.tanh({M})]), np.concatenate([{y}, np.cos({y})]), rcond=None)[0]",
     ("N",)),
    ("{out} = np.einsum('ij,j->i', {M}, {v})", ("R",)),
    ("{out} = np.einsum('ij,ij->', {M}, {M2})", ()),
    ("{out} = np.einsum('ii->', {S}) + np.einsum('i,i', {v}, {v2})", ()),
    ("{out} = np.sum(np.einsum('ij,kj->ik', {M}, {M2}) ** 2)", ()),
    ("{out} = np.einsum('...j,j->...', {M}, {v})", ("R",)),
    ("{out} = np.tensordot({M}, {v}, axes=1)", ("R",)),
    ("{out} = np.sum(np.tensordot({M}, {M2}, axes=([1], [1])))", ()),
    ("{out} = np.tensordot({M}, {M2}, axes=2)", ()),
    ("{out} = np.sum(({B} @ {v}) ** 2)", ()),
    ("{out} = np.sum(np.swapaxes({B}, 1, 2) @ {B})", ()),
    ("{out} = np.sum({B}, axis=(0, 2))", ("R",)),
    ("{out} = np.mean({B}, axis=(0, 1))", ("N",)),
    ("{out} = np.sum(np.mean({B}, axis=(1, 2), keepdims=True) * {B})", ()),
    ("{out} = np.sum(np.sum({B} ** 2, axis=(0, -1), keepdims=True) * {B})", ()),
    ("{out} = np.sum(np.moveaxis({B}, 0, -1) * np.tanh(np.moveaxis({B}, 0, -1)))", ()),
    ("p0_{k}, p1_{k}, p2_{k} = np.split({v}, [1, 2])\n"
     "    {out} = np.sum(p0_{k}) * np.sum(p2_{k} ** 2) + np.sum(p1_{k})", ()),
    ("{out} = np.sum(np.array_split({M}, 2, axis=1)[0] ** 2)", ()),
    ("{out} = np.sum(np.pad({v}, (1, 2), constant_values=0.5) ** 2)", ()),
    ("{out} = np.sum(np.sin(np.pad({M}, ((0, 1), (1, 0)))))", ()),
    ("{out} = np.sum(np.sort({v}) * np.linspace(0.1, 1.0, {v}.shape[0]))", ()),
    ("{out} = np.sort({M}, axis=0)[0]", ("N",)),
    ("{out} = np.sum(np.rot90({M}) * {M}.T) + np.sum(np.rot90({S}, k=2) * {S})", ()),
    ("{out} = np.sum(np.take({v}, [0, 2, 2, 1]) * np.array([0.5, -1.0, 2.0, 0.3]))", ()),
    ("{out} = np.sum(np.take({M}, [1, 0, 1], axis=0) ** 2)", ()),
    ("{out} = np.flip({v}) * np.roll({v2}, 1)", ("N",)),
    ("{out} = np.sum(np.diff({v}) ** 2) + np.sum(np.diff({M}, axis=0))", ()),
    ("{out} = np.sum(np.sin(np.repeat({v}, 2))) + np.sum(np.tile({v2}, 2) ** 2)", ()),
    ("{out} = np.sum(np.concatenate([{v}, {M}[0]]) ** 2) + np.sum(np.hstack([{v}, {v2}]))", ()),
    ("{out} = np.vstack([{v}, {v2}])[1] * np.column_stack([{v}, {v2}])[:, 0]", ("N",)),
    ("{out} = np.squeeze(np.expand_dims({v}, 0)) + np.atleast_2d({v2})[0]", ("N",)),
    ("{out} = np.diag({S}) + np.diagonal({S})", ("N",)),
    ("{out} = np.trace({S}) + np.sum(np.tril({S}) * np.triu({S}.T))", ()),
    ("{out} = np.sum(np.kron({v}[:2], {v2}[:2]) ** 2) + np.inner({v}, {v2}) + np.vdot({M}, {M2})", ()),
    ("{out} = np.sum(np.sin(np.outer({v}, {v2})))", ()),
    ("{out} = np.sum(np.cross({v}[:3], {v2}[:3]) ** 2)", ()),
    ("{out} = np.convolve({v}, [0.5, 1.0, -0.3], mode='same')", ("N",)),
    ("{out} = np.polyval([0.3, -0.5, 1.0], {v})", ("N",)),
    ("{out} = np.clip({v}, -0.5, 0.6)", ("N",)),
    ("{out} = np.sum(np.linspace({s}, 2.0 * {s} + 1.0, 5) ** 2)", ()),
    ("{out} = np.logaddexp({v}, {v2}) + np.hypot({v}, {v2})", ("N",)),
    ("{out} = np.arctan2({v}, {v2} * {v2} + 0.5) + np.sinc({v})", ("N",)),
    ("{out} = np.cbrt({v} * {v} + 0.5) + np.float_power({v2} * {v2} + 0.5, 1.5) + np.reciprocal({v} * {v} + 1.0)",
     ("N",)),
    ("{out} = np.exp2(np.tanh({v})) + np.expm1(np.tanh({v2})) + np.deg2rad({v})", ("N",)),
    ("{out} = np.fmax({v}, {v2}) + np.fmin({v}, 0.2)", ("N",)),
    ("{out} = np.sum({v}[[0, 1, 1, 2]] * np.array([0.5, 1.0, -0.3, 2.0]))", ()),
    ("{out} = np.sum({M}[[0, 0, 1], [1, 2, 2]]) + np.sum({M}[:, [2, 0]] ** 2)", ()),
    ("{out} = np.sum({M}[{M} > 0.2] ** 2)", ()),
    ("{out} = {M}[..., 0]", ("R",)),
    ("{out} = {v}[::-1] + {v}[np.argsort({v2})]", ("N",)),
    ("{out} = {v}[np.argmax({v})] + np.sum({M}[np.arange(2), [1, 0]])", ()),
    ("{out} = np.sum({M}[np.nonzero({M} > 0.1)]) + np.sum({M}[None] * {M})", ()),
    ("{out} = {M}.sum(axis=0) + {M}.mean(axis=0) + {M}.min(axis=0)", ("N",)),
    ("{out} = {M}.max(axis=1) + {M}.var(axis=1) + {M}.prod(axis=1)", ("R",)),
    ("{out} = {M}.T @ {y}", ("N",)),
    ("{out} = np.sum({M}.reshape(-1) ** 2) + np.sum({M}.flatten() * {M2}.ravel())", ()),
    ("{out} = {v}.copy() * {v}.dot({v2}) + {v}.max()", ("N",)),
    ("{out} = {S}.trace() + np.sum({S}.diagonal()) + np.sum({M}.swapaxes(0, 1) * {M}.transpose())", ()),
    ("{out} = {v}.astype(np.float64) * {v2}.clip(-0.4, 0.5)", ("N",)),
    ("{out} = np.floor({v} * 2.0) * {v} + np.sign({v2}) * {v2} ** 2", ("N",)),
    ("{out} = np.round({v} * 3.0) / 3.0 + {v} + np.rint({v2}) * 0.1", ("N",)),
    ("{out} = np.count_nonzero({v} > 0) * np.sum({v2}) + np.sum(np.ones_like({v}) * {v})", ()),
]


def gen_numpy(r: random.Random) -> Draft:
    """The NumPy table in composition: reductions with axis tuples and keepdims, cumulative
    sums and products, median/quantile, norms, linear algebra on well-conditioned matrices,
    einsum/tensordot/batched @, shape functions, fancy and boolean indexing, array methods and
    zero-derivative functions, fed by random expressions and feeding the rest of the body."""
    gen = Gen(r, "array", control=r.random() < 0.3)
    gen.aux = r.random() < 0.1
    items = [("x", Leaf("a", ("N",))), ("A", Leaf("a", ("R", "N")))]
    if r.random() < 0.5:
        items.append(("y", Leaf("a", ("R",))))
    if r.random() < 0.4:
        items.append(("t", Leaf("f")))
    names, spec = _params(items)
    sc = Scope(floats=[n for n, s in items if s.kind == "f"], arrays={n: s.info for n, s in items if s.kind == "a"})
    fmt = __import__("string").Formatter()
    for _ in range(r.randint(2, 4)):
        text, shape = r.choice(_NUMPY_TEMPLATES)
        k = next(gen.names)
        values = {"k": str(k), "out": f"o{k}"}
        for _, fname, _, _ in fmt.parse(text):
            if fname is None or fname in values:
                continue
            if fname in ("v", "v2"):
                values[fname] = _paren(gen.ax(sc, ("N",), 1))
            elif fname in ("M", "M2"):
                values[fname] = _paren(gen.ax(sc, ("R", "N"), 1))
            elif fname == "y":
                values[fname] = _paren(gen.ax(sc, ("R",), 1))
            elif fname == "s":
                values[fname] = _paren(gen.sx(sc, 1))
            elif fname == "S":
                m = f"m{k}"
                gen.emit(f"{m} = {gen.ax(sc, ('R', 'N'), 1)}")
                sc.arrays[m] = ("R", "N")
                gen.emit(f"S{k} = {m}.T @ {m} / {m}.shape[0] + np.eye({m}.shape[1])")
                values[fname] = f"S{k}"
            elif fname == "B":
                gen.emit(f"B{k} = np.stack([{gen.ax(sc, ('R', 'N'), 1)}, {gen.ax(sc, ('R', 'N'), 1)}])")
                values[fname] = f"B{k}"
        gen.emit(text.format(**values))
        gen.bind(sc, values["out"], shape)
        gen.block(sc, 1, r.randint(0, 1), False)
    gen.block(sc, 2, r.randint(0, 2), False)
    return Draft(_finish(gen, sc, "f", names), "f", names, spec, aux=gen.aux)


def gen_control(r: random.Random) -> Draft:
    """Scalar and mixed control flow with the rarer constructs: elif chains, ``while True``
    with ``break``, nested loops, range steps, tuple swaps, ``%``, rounding, unary ``+``,
    nested conditional expressions, more math functions."""
    aux = r.random() < 0.1
    if r.random() < 0.5:
        names, spec, gen, sc = gen_scalar(r, extended=True, aux=aux)
    else:
        names, spec, gen, sc = gen_mixed(r, extended=True, aux=aux)
    return Draft(_finish(gen, sc, "f", names), "f", names, spec, aux=aux)


# ---------------------------------------------------------------------------- nesting
#
# Nested loops over one sequence, helpers called in loop bodies that recompute what the caller
# computed (CSE merges the two), nested containers, zip of displays, nested comprehensions.

_ROW_PAIRS = ["np.sum(other * row)", "np.sum(np.sin(other) * row)", "np.sum((other - row) ** 2)",
              "np.sum(np.tanh(other * row + 0.3))", "np.dot(other, row)", "other @ np.cos(row)"]
_RECOMPUTED = ["np.tanh(X)", "X * 0.5 + 0.1", "np.sin(X) * 1.5", "X ** 2", "np.reshape(X, (len(X), -1))",
               "X.reshape(X.shape[0], -1) * 1.0", "np.array(list(X))", "np.stack([q for q in X])"]
_FEATS = ["def feats(M):\n    return np.tanh(M * 0.7) + 0.1",
          "def feats(M):\n    H = M * 0.5\n    return np.sin(H) + H",
          "def feats(M, scale=1.0):\n    return np.tanh(M) * scale"]
_UNPACKS = ["def unpack(p):\n    log_w = p[:2]\n    V = np.reshape(p[2:], (2, 3))\n    return log_w, V",
            "def unpack(p):\n    return p[:2], p[2:].reshape(2, 3)",
            "def unpack(p):\n    return (p[:2], np.reshape(p[2:], (2, -1)))",
            "def unpack(p):\n    parts = {'log_w': p[:2], 'V': np.reshape(p[2:], (2, 3))}\n"
            "    return parts['log_w'], parts['V']"]


class _Nest:
    """What the snippets of :func:`gen_nesting` share: the generator, the scope and the helpers."""

    def __init__(self, r: random.Random, gen: Gen, sc: Scope):
        self.r, self.gen, self.sc = r, gen, sc
        self.helpers: dict[str, str] = {}
        self.pending: list[str] = []
        self.params = False  # the function takes a flat parameter vector ``params`` (8,)
        self.lists = False  # and a list ``ws`` of three (N,) arrays

    def helper(self, name: str, options: list) -> str:
        """Define helper ``name`` (one of ``options``) once; the call's name."""
        if name not in self.helpers:
            self.helpers[name] = self.r.choice(options)
        return name

    def vec(self, sc: Scope | None = None) -> str:
        return _paren(self.gen.ax(sc or self.sc, ("N",), 1))

    def num(self) -> str:
        return _paren(self.gen.sx(self.sc, 1))

    def emit(self, text: str) -> None:
        _emit_lines(self.gen, text)

    def out(self) -> str:
        """A fresh name for the float a snippet binds, readable after it (see :meth:`bound`)."""
        v = self.gen.fresh("v")
        self.pending.append(v)
        return v

    def bound(self) -> None:
        """The names the snippet just emitted bound join the scope (not before: its own
        expressions must not read them)."""
        self.sc.floats += self.pending
        self.pending = []

    def seq(self) -> tuple:
        """(an expression of a (R, N) sequence, the same value written again) for loops to walk."""
        r = self.r
        kind = r.choice(["X", "X", "recomputed", "feats", "slice"])
        if kind == "X":
            return "X", r.choice(["X", "X", "X[::-1]", "X[1:]"])
        if kind == "recomputed":
            e = r.choice(_RECOMPUTED)
            return e, e
        if kind == "feats":
            call = f"{self.helper('feats', _FEATS)}(X)"
            return call, call
        return "X[1:]", "X[:-1]"

    def inner_scope(self, *rows: str) -> Scope:
        sc = self.sc.copy()
        for row in rows:
            sc.arrays[row] = ("N",)
            sc.fixed.add(row)
        return sc

    # ------------------------------------------------------------ snippets, each binds a float
    def nested_loops(self) -> None:
        """``for row in S: for other in S': ...`` where S' is S, a slice of it, or S computed
        again (before the loop, or in the outer body: CSE merges the two)."""
        r = self.r
        acc, inner = self.gen.fresh("acc"), self.gen.fresh("inner")
        outer_seq, again = self.seq()
        pre = r.random() < 0.5 and outer_seq != "X"
        if pre:
            name = self.gen.fresh("S")
            self.emit(f"{name} = {outer_seq}")
            outer_seq = name
        self.emit(f"{acc} = {r.choice(['0.0', self.num()])}")
        enum = r.random() < 0.4
        head = f"for i, row in enumerate({outer_seq}):" if enum else f"for row in {outer_seq}:"
        body = [f"{inner} = {r.choice(['0.0', f'{acc} * 0.5', 'np.sum(row) * 0.1'])}"]
        if r.random() < 0.5:
            body.append(f"again = {again}")
            again = "again"
        pair = r.choice(_ROW_PAIRS)
        if r.random() < 0.3:
            pair = f"np.sum(other * {self.vec(self.inner_scope('row', 'other'))})"
        body += [f"for other in {again}:", f"    {inner} = {inner} + {pair}"]
        if r.random() < 0.3:
            body.append(f"    {inner} = {inner} * 0.9 + np.sum(other * row) * 0.1")
        if enum and r.random() < 0.7:
            body.append(f"{inner} = {inner} + np.sum(row * {outer_seq}[i - 1]) * 0.5")
        body.append(r.choice([f"{acc} = {acc} + 0.1 * {inner}", f"{acc} = {acc} + np.tanh(0.1 * {inner})",
                              f"{acc} += {inner} * {inner} * 0.01"]))
        self.emit(head + "".join(f"\n    {b}" for b in body))
        v = self.out()
        self.emit(f"{v} = {acc}")

    def helper_in_loop(self) -> None:
        """A helper called in a loop body recomputes what the caller computed before the loop."""
        r = self.r
        feats = self.helper("feats", _FEATS)
        self.helpers["score"] = f"def score(M, v):\n    return {feats}(M) @ v"
        H, acc = self.gen.fresh("H"), self.gen.fresh("acc")
        self.emit(f"{H} = {feats}(X)")
        self.sc.arrays[H] = ("R", "N")
        self.emit(f"{acc} = 0.0")
        style = r.choice(["rows", "range", "nested"])
        if style == "rows":
            self.emit(f"for row in {r.choice(['X', H])}:\n    s = score(X, row)\n"
                      f"    {acc} = {acc} + np.sum(s * ({H} @ row)) * 0.1")
        elif style == "range":
            self.emit(f"for k in range(len(X)):\n    F = {feats}(X)\n    {acc} = {acc} + np.sum(F[k] * {H}[k - 1])\n"
                      f"    {acc} = {acc} + np.sum(score(X, F[k]) * 0.1)")
        else:
            self.emit(f"for row in {H}:\n    for other in {feats}(X):\n        {acc} = {acc} + np.sum(other * row)")
        v = self.out()
        self.emit(f"{v} = {acc}")

    def unpacked(self) -> None:
        """``log_w, V = unpack(params)`` outside a loop and again inside it."""
        r = self.r
        self.helper("unpack", _UNPACKS)
        self.params = True
        acc = self.gen.fresh("acc")
        self.emit("log_w, V = unpack(params)")
        self.emit(r.choice(["w = np.exp(log_w) / np.sum(np.exp(log_w))", "w = np.tanh(log_w) + 1.5"]))
        self.emit(f"{acc} = np.sum(V ** 2) * 0.1")
        z = r.choice(["x[:3]", "np.tanh(x[:3])", "X[0, :3]"])
        style = r.choice(["range", "enum", "rows"])
        if style == "range":
            self.emit(f"for k in range(2):\n    lw, Vk = unpack(params)\n"
                      f"    {acc} = {acc} + w[k] * np.sum(np.tanh(Vk[k] * {z})) + 0.1 * lw[k]")
        elif style == "enum":
            self.emit(f"for k, row in enumerate(V):\n    lw, Vk = unpack(params)\n"
                      f"    {acc} = {acc} + np.exp(lw[k]) * np.sum(row * Vk[k - 1] * {z})")
        else:
            self.emit(f"for row in V:\n    _, Vk = unpack(params)\n    for other in Vk:\n"
                      f"        {acc} = {acc} + np.sum(other * row) * w[0]")
        v = self.out()
        self.emit(f"{v} = {acc}")

    def containers(self) -> None:
        """Tuples of tuples, lists of tuples, dicts of lists: built, copied with ``list``/``tuple``,
        indexed two deep, unpacked, iterated."""
        r = self.r
        v = self.out()
        style = r.choice(["pairs", "pairs", "dict", "grid"])
        if style == "pairs":
            p = self.gen.fresh("pairs")
            first = "(" if r.random() < 0.5 else "["
            close = ")" if first == "(" else "]"
            self.emit(f"{p} = {first}({self.vec()}, {self.num()}), ({self.vec()}, {r.choice(['2.0', '0.5'])}){close}")
            c = self.gen.fresh("c")
            self.emit(f"{c} = " + r.choice([f"list({p})", f"tuple({p})", f"[tuple(q) for q in {p}]", f"{p}[:]",
                                             f"list(({p}[1], {p}[0]))", p]))
            use = r.choice(["index", "unpack", "loop"])
            if use == "index":
                self.emit(f"{v} = np.sum({c}[0][0]) * {c}[0][1] + np.sum({c}[1][0] * {c}[-1][0]) * {c}[1][1]")
            elif use == "unpack":
                self.emit(f"(a, wa), (b, wb) = {c}\n{v} = np.sum(a * b) * wa + wb * np.sum(np.sin(b))")
            else:
                self.emit(f"{v} = 0.0\nfor item, weight in {c}:\n    {v} = {v} + weight * np.sum(item ** 2)")
        elif style == "dict":
            d = self.gen.fresh("d")
            self.emit(f"{d} = {{'u': [{self.vec()}, {self.vec()}], 'v': [{self.vec()}]}}")
            if r.random() < 0.5:
                self.emit(f"{d}['v'] = list({d}['v']) + [{self.vec()}]")
            self.emit(f"{v} = np.sum({d}['u'][1] * {d}['v'][0]) + sum(np.sum(t) for t in {d}['u'])"
                      + r.choice(["", f" + np.sum({d}['v'][-1][:2])"]))
        else:
            g = self.gen.fresh("grid")
            self.emit(f"{g} = [[{self.vec()}, {self.vec()}], [{self.vec()}, {self.vec()}]]")
            self.emit(r.choice([f"flat = [q for part in {g} for q in part]\n{v} = sum(np.sum(q * q) for q in flat)",
                                f"{v} = np.sum({g}[1][0] * {g}[0][1]) + np.sum(np.stack({g}[1]))",
                                f"{v} = np.sum(np.array({g}) ** 2) + np.sum(list({g}[0])[1])"]))

    def zipped(self) -> None:
        """``a, b = zip(*pairs)`` and ``list(zip(xs, ys))`` of displays; ``zip(X, X[1:])``."""
        r = self.r
        v = self.out()
        style = r.choice(["star", "list", "rows"])
        if style == "star":
            p = self.gen.fresh("pairs")
            self.emit(f"{p} = [({self.vec()}, {self.vec()}), ({self.vec()}, {self.vec()})]")
            self.emit(f"a, b = zip(*{p})")
            self.emit(f"{v} = " + r.choice(["np.sum(a[0] * b[1]) + np.sum(np.stack(a) * np.stack(b))",
                                             "sum(np.sum(s * t) for s, t in zip(a, b))",
                                             "np.sum(np.vstack(b) ** 2) + np.sum(a[-1])"]))
        elif style == "list":
            zs = self.gen.fresh("zs")
            self.emit(f"{zs} = list(zip([{self.vec()}, {self.vec()}], [{self.num()}, {self.num()}]))")
            self.emit(f"{v} = " + r.choice([f"sum(np.sum(s) * t for s, t in {zs})",
                                             f"np.sum({zs}[1][0]) * {zs}[0][1]",
                                             f"np.sum(np.stack([s * t for s, t in {zs}]))"]))
        else:
            self.emit(f"{v} = 0.0\nfor prev, cur in zip(X, X[1:]):\n    {v} = {v} + np.sum(np.tanh(prev * cur))")

    def comprehension(self) -> None:
        """Comprehensions nested two deep over the rows of arrays."""
        r = self.r
        v = self.out()
        seq, again = self.seq()
        self.emit(f"{v} = " + r.choice([
            f"sum([np.sum(q * s) for q in {seq} for s in {again}])",
            f"np.sum(np.array([[np.dot(q, s) for s in {again}] for q in {seq}]) ** 2) * 0.1",
            f"np.sum(np.stack([np.stack([q * s for s in {again}]) for q in {seq}]))",
            f"np.sum([[np.sum(q * s) for s in {again}] for q in {seq}][0])",
            f"sum([sum(np.sum(np.sin(q - s)) for s in {again}) for q in {seq}])",
            f"sum(np.sum(np.stack([q * s for s in {again}]) ** 2) for q in {seq}) * 0.1"]))

    def indexed_loop(self) -> None:
        """A loop whose body reads its own sequence by index too."""
        r = self.r
        acc = self.gen.fresh("acc")
        self.emit(f"{acc} = 0.0")
        if r.random() < 0.5:
            self.emit(f"for i, row in enumerate(X):\n    {acc} = {acc} + np.sum(row * X[i - 1])"
                      + r.choice(["", f"\n    {acc} = {acc} + np.sum(X[i] ** 2) * 0.1",
                                  f"\n    if i > 0:\n        {acc} = {acc} + np.sum(np.sin(X[i - 1] - row))"]))
        else:
            self.emit(f"for i in range(len(X)):\n    row = X[i]\n"
                      f"    {acc} = {acc} + np.sum(row * X[(i + 1) % len(X)]) + np.sum(row * {self.vec()}) * 0.1")
        v = self.out()
        self.emit(f"{v} = {acc}")

    def carried(self) -> None:
        """Several values carried by one loop (floats and an array), maybe through a nested loop."""
        r = self.r
        a, b, c = self.gen.fresh("a"), self.gen.fresh("b"), self.gen.fresh("c")
        self.emit(f"{a}, {b}, {c} = 0.0, {r.choice(['x * 1.0', 'np.tanh(x)', 'X[0]'])}, 1.0")
        body = [f"{a} = {a} + np.sum(row * {b}) * 0.5", f"{b} = np.tanh({b} * 0.5 + row)",
                f"{c} = {c} * 0.9 + np.mean(row) * {a} * 0.1"]
        r.shuffle(body)
        if r.random() < 0.3:
            body += ["for other in X:", f"    {b} = {b} + 0.1 * other * {c}"]
        self.emit("for row in X:" + "".join(f"\n    {s}" for s in body))
        v = self.out()
        self.emit(f"{v} = {a} + np.sum({b}) + {c}")

    def relatives(self) -> None:
        """More loops over one sequence: over the outer row's items, over a slice that depends
        on the outer index, over a value the outer loop carries, three deep, with jumps, with a
        ``while`` or a comprehension inside, through a helper whose own loops walk the argument
        (called before the loop and in its body), over a list argument."""
        r = self.r
        acc = self.gen.fresh("acc")
        v = self.out()
        self.emit(f"{acc} = 0.0")
        style = r.choice(["items", "varying", "carried_seq", "three", "jumps", "while", "comp", "gram", "enum2",
                          "list_arg", "outer_row", "unpack_helper"])
        if style == "items":
            self.emit(f"for row in X:\n    for e in row:\n"
                      f"        {acc} = {acc} + e * np.sum(row * {r.choice(['x', 'X[0]'])}) * 0.1")
        elif style == "varying":
            part = r.choice(["X[i:]", "X[:i + 1]", "X[i - 1:]", "X[:i]", "X[::-1][i:]"])
            self.emit(f"for i, row in enumerate(X):\n    for other in {part}:\n"
                      f"        {acc} = {acc} + {r.choice(_ROW_PAIRS)} * 0.1")
        elif style == "carried_seq":
            H = self.gen.fresh("H")
            self.emit(f"{H} = {r.choice(['X * 1.0', 'np.tanh(X)', 'X'])}\nfor row in X:\n"
                      f"    {H} = np.tanh({H} * 0.5 + row)\n    for h in {H}:\n"
                      f"        {acc} = {acc} + np.sum(h * row) * 0.1")
            self.sc.arrays[H] = ("R", "N")
        elif style == "three":
            self.emit(f"for row in X:\n    for other in X:\n"
                      f"        for third in {r.choice(['X[:2]', 'X', 'X[::-1]'])}:\n"
                      f"            {acc} = {acc} + np.sum(row * other * third) * 0.05")
        elif style == "jumps":
            jump = r.choice(["continue", "break"])
            self.emit(f"for row in X:\n    for other in X:\n"
                      f"        if np.sum(other * row) > {r.choice(['0.3', '-0.2'])}:\n"
                      f"            {jump}\n        {acc} = {acc} + np.sum(np.sin(other) * row)\n"
                      f"    {acc} = {acc} * 0.9")
        elif style == "while":
            self.emit(f"for row in X:\n    k = 0\n    while k < len(X):\n"
                      f"        {acc} = {acc} + np.sum(X[k] * row) * 0.1\n"
                      f"        k += 1")
        elif style == "comp":
            self.emit(f"for row in X:\n    {acc} = {acc} + " + r.choice(["sum(np.sum(row * o) for o in X) * 0.1",
                                                                       "np.sum(np.stack([o * row for o in X])) * 0.1",
                                                                       "sum([np.dot(o, row) for o in X[1:]]) * 0.1"]))
        elif style == "gram":
            self.helpers["gram"] = r.choice([
                "def gram(M):\n    total = 0.0\n    for a in M:\n        for b in M:\n"
                "            total = total + np.sum(a * b)\n    return total * 0.1",
                "def gram(M):\n    return sum(np.sum(np.tanh(a * b)) for a in M for b in M) * 0.1",
                "def gram(M):\n    rows = [np.sum(a * M[0]) for a in M]\n    return sum(rows) * 0.1"])
            g = self.gen.fresh("g")
            self.emit(f"{g} = gram(X)\nfor row in X:\n    {acc} = {acc} + gram(X) * np.sum(row) * 0.1 + {g} * 0.01")
        elif style == "enum2":
            self.emit(f"for i, row in enumerate(X):\n    for j, other in enumerate(X):\n        if j != i:\n"
                      f"            {acc} = {acc} + {r.choice(_ROW_PAIRS)} * (i + 1) * 0.1")
        elif style == "list_arg":
            self.lists = True
            self.emit(f"for w in ws:\n    for u in {r.choice(['ws', 'ws[1:]', 'reversed(ws)'])}:\n"
                      f"        {acc} = {acc} + np.sum(w * u * x)\n    {acc} = {acc} + np.sum(w * ws[0])")
        elif style == "outer_row":
            self.emit(f"for row in X:\n    for other in np.outer(row, x):\n"
                      f"        {acc} = {acc} + np.sum(np.sin(other))")
        else:
            self.helper("unpack", _UNPACKS)
            self.params = True
            self.helpers["loglik"] = ("def loglik(p, z):\n    log_w, V = unpack(p)\n"
                                      "    return np.sum(np.exp(log_w) * np.tanh(V @ z))")
            self.emit(f"log_w, V = unpack(params)\nfor row in X:\n    {acc} = {acc} + loglik(params, row[:3])"
                      f" * np.sum(V[0] * row[:3])")
        self.emit(f"{v} = {acc}")

    def aliased(self) -> None:
        """Two names bound to one array before a loop that rebinds one of them in some
        iterations, in every one, or in none (a ``while`` false at entry, an ``if`` arm, a
        ``continue``), then an update in place through the other after the loop."""
        r = self.r
        a, b, v = self.gen.fresh("a"), self.gen.fresh("b"), self.out()
        self.emit(f"{a} = {r.choice(['x * 1.0', 'x.copy()', 'np.tanh(x)'])}\n{b} = {a}")
        rebind = f"{a} = {a} * {r.choice(['0.5', '0.9'])} + {r.choice(['row', 'x', '0.1'])}"
        style = r.choice(["every", "every", "if", "continue", "while", "rows"])
        if style == "every":
            self.emit(f"for row in {r.choice(['X', 'X[1:]'])}:\n    {rebind}")
        elif style == "if":
            self.emit(f"for row in X:\n    if np.sum(row) > {r.choice(['0.0', '0.5', '-0.5'])}:\n        {rebind}")
        elif style == "continue":
            self.emit(f"for row in X:\n    if np.sum(row) < {r.choice(['0.0', '0.5'])}:\n        continue\n"
                      f"    {rebind}")
        elif style == "while":
            self.emit(f"k = 0\nrow = x\nwhile k < 2 and np.sum(x) > {r.choice(['0.0', '0.5', '-0.5'])}:\n"
                      f"    k += 1\n    {rebind}")
        else:
            self.emit(f"for row in X[:{r.choice(['0', '1', '2'])}]:\n    {rebind}")
        self.emit(f"{b} {r.choice(['*=', '+='])} np.tanh({a})\n{v} = np.sum({a} ** 2) + np.sum({b})")

    def stacked(self) -> None:
        """``np.stack``/``np.vstack``/``np.array`` of lists built in (nested) loops."""
        r = self.r
        hs = self.gen.fresh("hs")
        v = self.out()
        stack = r.choice(["np.stack", "np.vstack", "np.array"])
        if r.random() < 0.5:
            h = self.gen.fresh("h")
            self.emit(f"{hs} = []\n{h} = {r.choice(['x', 'x * 0.5', 'np.zeros_like(x)'])}\nfor row in X:\n"
                      f"    {h} = np.tanh({h} * 0.5 + row)\n    {hs}.append({h})")
            H = self.gen.fresh("H")
            self.emit(f"{H} = {stack}({hs})")
            self.sc.arrays[H] = ("R", "N")
            self.emit(f"{v} = np.sum({H} * X)")
        else:
            seq, again = self.seq()
            self.emit(f"{hs} = []\nfor row in {seq}:\n    cols = []\n    for other in {again}:\n"
                      f"        cols.append({r.choice(_ROW_PAIRS)})\n    {hs}.append(np.stack(cols))")
            self.emit(f"G = {stack}({hs})\n{v} = " + r.choice(["np.sum(G * G) * 0.01", "np.sum(np.tanh(G))",
                                                            "np.sum(G[0]) + np.sum(G[:, -1])"]))


_NEST_SNIPPETS = [("nested_loops", 4), ("helper_in_loop", 2), ("unpacked", 2), ("containers", 3), ("zipped", 2),
                  ("comprehension", 2), ("indexed_loop", 2), ("carried", 2), ("stacked", 2),
                  ("relatives", 6), ("aliased", 1)]


def gen_nesting(r: random.Random) -> Draft:
    """Nested loops where the inner loop walks the outer loop's sequence (or the same value
    computed again), helpers called in loop bodies that recompute what the caller computed
    (``log_w, V = unpack(params)`` outside and inside a loop), nested containers copied with
    ``list``/``tuple``, indexed two deep and unpacked, ``zip(*pairs)``, comprehensions nested
    two deep, loops that read their sequence by index, several carried values, and stacks of
    lists built in loops; then random statements over what they computed."""
    gen = Gen(r, "array", control=r.random() < 0.4)
    items = [("x", Leaf("a", ("N",))), ("X", Leaf("a", ("R", "N")))]
    sc = Scope(arrays={"x": ("N",), "X": ("R", "N")})
    nest = _Nest(r, gen, sc)
    if r.random() < 0.3:
        items.append(("t", Leaf("f")))
        sc.floats.append("t")
    for _ in range(r.randint(2, 4)):
        getattr(nest, gen.pick(_NEST_SNIPPETS))()
        nest.bound()
        gen.block(sc, 1, r.randint(0, 1), False)
    gen.block(sc, 2, r.randint(0, 2), False)
    if nest.params:
        items.append(("params", Leaf("a", (8,))))
    if nest.lists:
        items.append(("ws", [Leaf("a", ("N",)) for _ in range(3)]))
    names, spec = _params(items)
    gen.helpers = list(nest.helpers.values())
    return Draft(_finish(gen, sc, "f", names), "f", names, spec)


FAMILIES: dict[str, Callable] = {
    "scalar": gen_scalar,
    "array": gen_array,
    "calls": gen_calls,
    "containers": gen_containers,
    "mixed": gen_mixed,
    "objects": gen_objects,
    "helpers": gen_helpers,
    "lists": gen_lists,
    "aliases": gen_aliases,
    "dtypes": gen_dtypes,
    "numpy": gen_numpy,
    "control": gen_control,
    "statements": gen_statements,
    "nesting": gen_nesting,
}


def _draft(seed: int, family: str, attempt: int) -> Program:
    r = random.Random(f"{family}:{seed}:{attempt}")
    out = FAMILIES[family](r)
    if isinstance(out, Draft):
        return _from_draft(out, r, family, seed)
    names, spec, gen, sc = out
    source = _finish(gen, sc, "f", names)
    dims, dims2 = _dims(r)
    if r.random() < 0.15:
        dims2 = None
    return Program(family, seed, source, "f", spec, _argnums(r, names, spec), dims, dims2,
                   value_seed=r.randrange(2**31), value_seed2=r.randrange(2**31))


def _from_draft(d: Draft, r: random.Random, family: str, seed: int) -> Program:
    source = d.source
    if d.alias_ok and r.random() < 0.3:
        source = _numpy_alias(source, r.choice(["jnp", "numpy", "onp"]))
    dims, dims2 = _dims(r)
    dims.update(d.fixed_dims)
    dims2.update(d.fixed_dims)
    if d.between is None and r.random() < 0.15:
        dims2 = None
    argnums = d.argnums if d.argnums is not None else _argnums(r, d.names, d.spec)
    return Program(family, seed, source, d.name, d.spec, argnums, dims, dims2, value_seed=r.randrange(2**31),
                   value_seed2=r.randrange(2**31), aux=d.aux, between=d.between)


def generate(seed: int, family: str, max_attempts: int = 200) -> Program:
    """A valid program of ``family`` (deterministic in ``seed``): drafts are tried with sub-seeds
    0, 1, ... until one runs, returns a finite float away from kinks, with stable finite differences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _generate(seed, family, max_attempts)


def _generate(seed: int, family: str, max_attempts: int) -> Program:
    last = None
    for attempt in range(max_attempts):
        try:
            prog = _draft(seed, family, attempt)
        except (_Regenerate, IndexError, RecursionError):
            continue
        try:
            compile(prog.source, "<difftest>", "exec")
        except SyntaxError as e:  # a generator bug: never silently skipped
            raise AssertionError(f"generated invalid syntax: {e}\n{prog.source}") from e
        last = valid_reference(prog)
        if last is None:
            prog._cache["attempt"] = attempt
            return prog
    raise RuntimeError(f"no valid {family} program for seed {seed} in {max_attempts} attempts (last: {last})")


# ============================================================================ reporting


def literal(value: Any) -> str:
    """Python source that rebuilds an argument value exactly."""
    if isinstance(value, np.ndarray):
        if value.dtype == np.float32:
            return f"np.array({value.tolist()!r}, dtype=np.float32)"
        return f"np.array({value.tolist()!r})"
    if isinstance(value, np.generic):
        return f"np.{type(value).__name__}({value.item()!r})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def reproducer(program: Program, outcome: Outcome) -> str:
    """A standalone .py file: the program, its arguments and a call of symdiff.grad."""
    args = program.make_args()
    args2 = program.make_args2()
    lines = [f"# difftest {program.family} seed {program.seed}: {outcome.cls} ({outcome.stage})",
             *(f"# {ln}" for ln in outcome.detail.splitlines()), "", program.source.rstrip(), "", "",
             "import numpy as np  # the arguments are spelt with np", "",
             f"ARGS = [{', '.join(literal(a) for a in args)}]"]
    if args2 is not None:
        lines.append(f"ARGS2 = [{', '.join(literal(a) for a in args2)}]  # second call, other shapes")
    make = "value_and_grad" if program.aux else "grad"
    extra = ", has_aux=True" if program.aux else ""
    lines += [f"ARGNUMS = {program.argnums!r}", "", "if __name__ == '__main__':", "    import symdiff", "",
              f"    g = symdiff.{make}({program.name}, argnums=ARGNUMS{extra})", "    print(g(*ARGS))"]
    if args2 is not None:
        if program.between is not None:
            lines.append(f"    {program.between}()")
        lines.append("    print(g(*ARGS2))")
    return "\n".join(lines) + "\n"
