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

A program is *valid* only if the function itself runs on its arguments and returns a finite
float, every comparison, ``abs``, ``min``/``max`` and extremum it evaluates is at least
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
TIMEOUT_S = 5
MAX_ABS_VALUE = 1e4
CLASSES = ("pass", "refused", "internal", "wrong", "mutated", "hang")
FAILURES = ("internal", "wrong", "mutated", "hang")


# ============================================================================ programs


@dataclass(frozen=True)
class Leaf:
    """One argument leaf: ``kind`` is "f" (Python float), "i" (int, ``info`` a dim name) or
    "a" (float64 array, ``info`` its shape of dim names and 1s)."""

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
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def make_args(self) -> list:
        """Fresh arguments of the first call."""
        return build_args(self.spec, self.dims, self.value_seed)

    def make_args2(self) -> list | None:
        """Fresh arguments of other shapes for a second call of the same compiled gradient, or None."""
        if self.dims2 is None:
            return None
        return build_args(self.spec, self.dims2, self.value_seed2)

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
        return self.cls


def build_args(spec: list, dims: dict, value_seed: int) -> list:
    """The argument values described by ``spec`` (deterministic in ``value_seed``)."""
    rng = np.random.default_rng(value_seed)

    def make(s):
        if isinstance(s, Leaf):
            if s.kind == "f":
                return float(rng.uniform(-1.2, 1.2))
            if s.kind == "i":
                return int(dims[s.info])
            shape = tuple(d if isinstance(d, int) else dims[d] for d in s.info)
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
    return fn(*args, **kw)


_RECORDERS = {"_dt_cmp": _dt_cmp, "_dt_call": _dt_call}
_WATCHED_NAMES = {"abs", "min", "max"}
_WATCHED_ATTRS = {"abs", "absolute", "fabs", "maximum", "minimum", "fmax", "fmin", "max", "min", "amax", "amin",
                  "std"}


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
            isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in ("np", "math")
            and f.attr in _WATCHED_ATTRS)
        if not watched:
            return node
        call = ast.Call(func=ast.Name("_dt_call", ast.Load()), args=[f, *node.args], keywords=node.keywords)
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


def _run_valid(fn: Callable, args: list) -> str | None:
    """Why calling ``fn(*args)`` does not make a valid program, or None."""
    before = copy.deepcopy(args)
    try:
        with np.errstate(all="raise"):
            v = fn(*args)
    except Exception as e:  # noqa: BLE001 - any failure of the program itself makes it invalid
        return f"the function raises {type(e).__name__}: {e}"
    if not _finite_float(v):
        return f"the function returns {type(v).__name__} {v!r:.60}"
    if not same_values(args, before):
        return "the function mutates its arguments"
    return None


def validate(program: Program) -> str | None:
    """Why ``program`` is not valid (raises, non-finite, mutates, near a kink), or None."""
    if "invalid" in program._cache:
        return program._cache["invalid"]
    reason = None
    with warnings.catch_warnings(), Loaded(program.source, f"{program.family}_{program.seed}") as plain, \
            Loaded(program.source, "instr", _instrument) as instr:
        try:
            with _alarm(TIMEOUT_S):
                for which, args in (("args", program.make_args()), ("args2", program.make_args2())):
                    if args is None:
                        continue
                    reason = _run_valid(plain.ns[program.name], args)
                    if reason is None:
                        _MARGIN[0] = math.inf
                        try:
                            with np.errstate(all="ignore"):
                                instr.ns[program.name](*copy.deepcopy(args))
                        except Exception as e:  # noqa: BLE001
                            reason = f"instrumented copy raises {type(e).__name__}: {e}"
                        if _MARGIN[0] < MARGIN:
                            reason = f"a branch is {_MARGIN[0]:.2g} from its switching point"
                    if reason is not None:
                        reason = f"{which}: {reason}"
                        break
        except _Timeout:
            reason = "the function runs too long"
    program._cache["invalid"] = reason
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


def _close(got: np.ndarray, want: np.ndarray, noise: float, scale: float = 1.0) -> bool:
    tol = scale * (ATOL + noise + RTOL * np.abs(want))
    return bool(np.all(np.abs(np.asarray(got, dtype=float) - want) <= tol))


def _nums(argnums: Any) -> tuple:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def reference(program: Program, second: bool = False) -> Any:
    """(value, finite-difference gradients per argnum) of the first or second call, or the
    string "unstable" when the two step sizes disagree."""
    key = "ref2" if second else "ref"
    if key in program._cache:
        return program._cache[key]
    args = program.make_args2() if second else program.make_args()
    with Loaded(program.source, f"ref_{program.family}_{program.seed}") as plain:
        fn = plain.ns[program.name]
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


def _compare(got: Any, args: list, argnums: Any, ref: tuple, stage: str) -> Outcome | None:
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
            if not _close(leaf, w, noise):
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


def _check(program: Program) -> Outcome:
    ref = reference(program)
    if ref == "unstable":
        return Outcome("unstable", "finite differences disagree between step sizes")
    with Loaded(program.source, f"chk_{program.family}_{program.seed}") as mod:
        fn = mod.ns[program.name]
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
            return _classify_exception(e, stage)
        if not same_values(args, before):
            return Outcome("mutated", "the gradient call changed its arguments", stage)
        bad = _compare(got, args, argnums, ref, stage)
        if bad:
            return bad

        stage = "value_and_grad"
        try:
            vg = symdiff.value_and_grad(fn, argnums=argnums)
            args = program.make_args()
            value, got = vg(*args)
        except _Timeout:
            raise
        except Exception as e:  # noqa: BLE001
            return _classify_exception(e, stage)
        if not same_values(args, before):
            return Outcome("mutated", "value_and_grad changed its arguments", stage)
        if not (isinstance(value, (float, np.floating)) and abs(value - ref[0]) <= 1e-9 * (1 + abs(ref[0]))):
            return Outcome("wrong", f"value_and_grad value {value!r} but the function returns {ref[0]!r}", stage)
        bad = _compare(got, args, argnums, ref, stage)
        if bad:
            return bad

        args = program.make_args2()
        if args is not None:
            stage = "second call, other shapes"
            ref2 = reference(program, second=True)
            if ref2 == "unstable":
                return Outcome("unstable", "finite differences disagree at the second point")
            before = copy.deepcopy(args)
            try:
                got = g(*args)
            except _Timeout:
                raise
            except Exception as e:  # noqa: BLE001
                return _classify_exception(e, stage)
            if not same_values(args, before):
                return Outcome("mutated", "the second gradient call changed its arguments", stage)
            bad = _compare(got, args, argnums, ref2, stage)
            if bad:
                return bad
    return Outcome("pass")


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

    def __init__(self, floats=(), ints=(), arrays=None, funcs=None):
        self.floats = list(floats)
        self.ints = list(ints)
        self.arrays = dict(arrays or {})
        self.funcs = dict(funcs or {})  # callable name -> (kind, nparams)

    def copy(self) -> Scope:
        return Scope(self.floats, self.ints, self.arrays, self.funcs)


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
        targets = sc.floats + list(sc.arrays)
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
        kind = self.pick([("assign", 6), ("update", 2 if self.mode == "array" and sc.arrays else 0),
                          ("if", 3 if ctrl else 0), ("for", 2 if ctrl else 0), ("while", 1 if ctrl else 0),
                          ("jump", 2 if loop else 0), ("ret", 0.5 if ctrl else 0)])
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
            self.emit(f"return {self.result(sc)}")
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
            if r.random() < 0.1:
                self.emit(f"return {self.result(inner)}")
            self.indent -= 1
            self.carry_back(sc, inner)

    def carry_back(self, sc: Scope, inner: Scope) -> None:
        """Names bound only inside a nested block are not read after it; shapes stay as they were."""
        for n in list(sc.arrays):
            if n in inner.arrays and inner.arrays[n] != sc.arrays[n]:
                raise _Regenerate()

    def loop_range(self, sc: Scope) -> str:
        ints = [i for i in sc.ints if i in ("n", "m")]
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
        targets = inner.floats + list(inner.arrays)
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
    gen.emit(f"return {gen.result(sc)}")
    body = "\n".join(gen.lines)
    helpers = "".join(h + "\n\n\n" for h in gen.helpers)
    return HEADER + helpers + f"def {name}({', '.join(params)}):\n{body}\n"


def gen_scalar(r: random.Random) -> tuple:
    """Python floats, math, control flow."""
    items = [("x", Leaf("f")), ("y", Leaf("f"))]
    if r.random() < 0.5:
        items.append(("z", Leaf("f")))
    if r.random() < 0.6:
        items.append(("n", Leaf("i", "n")))
    names, spec = _params(items)
    gen = Gen(r, "scalar", control=True)
    sc = Scope(floats=[n for n in names if n != "n"], ints=[n for n in names if n == "n"])
    s = gen.fresh("s")
    gen.emit(f"{s} = {r.choice(['0.0', 'x', '1.0', 'x * y'])}")
    sc.floats.append(s)
    gen.block(sc, 3, r.randint(2, 4), False)
    return names, spec, gen, sc


def gen_array(r: random.Random, statements: int | None = None) -> tuple:
    """NumPy on float64 arrays, straight-line."""
    items = [("x", Leaf("a", ("N",))), ("A", Leaf("a", ("R", "N")))]
    for name, shape in (("b", ("R", 1)), ("c", (1, "N")), ("u", ("R",))):
        if r.random() < 0.4:
            items.append((name, Leaf("a", shape)))
    if r.random() < 0.4:
        items.append(("t", Leaf("f")))
    names, spec = _params(items)
    gen = Gen(r, "array", control=False)
    sc = Scope(floats=[n for n, s in items if s.kind == "f"], arrays={n: s.info for n, s in items if s.kind == "a"})
    gen.block(sc, 2, r.randint(2, 5) if statements is None else statements, False)
    return names, spec, gen, sc


def gen_mixed(r: random.Random) -> tuple:
    """Scalar control flow around array code."""
    names, spec, gen, sc = gen_array(r)
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
            gen.emit(r.choice(["break", "continue", f"return {s} + np.sum({h})"]))
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


FAMILIES: dict[str, Callable] = {
    "scalar": gen_scalar,
    "array": gen_array,
    "calls": gen_calls,
    "containers": gen_containers,
    "mixed": gen_mixed,
}


def _draft(seed: int, family: str, attempt: int) -> Program:
    r = random.Random(f"{family}:{seed}:{attempt}")
    names, spec, gen, sc = FAMILIES[family](r)
    source = _finish(gen, sc, "f", names)
    dims, dims2 = _dims(r)
    if r.random() < 0.15:
        dims2 = None
    return Program(family, seed, source, "f", spec, _argnums(r, names, spec), dims, dims2,
                   value_seed=r.randrange(2**31), value_seed2=r.randrange(2**31))


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
        return f"np.array({value.tolist()!r})"
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
             f"ARGS = [{', '.join(literal(a) for a in args)}]"]
    if args2 is not None:
        lines.append(f"ARGS2 = [{', '.join(literal(a) for a in args2)}]  # second call, other shapes")
    lines += [f"ARGNUMS = {program.argnums!r}", "", "if __name__ == '__main__':", "    import symdiff", "",
              f"    g = symdiff.grad({program.name}, argnums=ARGNUMS)", "    print(g(*ARGS))"]
    if args2 is not None:
        lines.append("    print(g(*ARGS2))")
    return "\n".join(lines) + "\n"
