"""Primitives: everything the compiler knows about a callee, in one record.

A *primitive* is anything generated or lowered code calls: an operator (``operator.add``), a
NumPy or ``math`` function, a builtin, a method (``Method("reshape")``), an attribute read
(``GetAttr("T")``), a display (``BUILD_TUPLE``) or a runtime helper. Its record says how to
differentiate it, what its result looks like, and how it treats memory; every pass asks the
record instead of keeping a set of callees of its own. The records are filled in by
:mod:`symdiff.rules` (the derivative table, one line or two per primitive) and by the
registrations of users (:func:`symdiff.defvjp`).

A NumPy function and its method spelling are one primitive: ``x.sum(axis=0)`` looks up the
record of ``np.sum`` (registered with ``method="sum"``), so the rule, the shape rule and the
aliasing facts are written once. Ufuncs and ``math`` functions without a record of their own
get one derived from what they are (a ufunc works element by element and returns a new
array; a ``math`` function maps numbers to a number).
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import itertools
import math
import operator
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from .ir import Build, BuildDict, GetAttr, Method

Rule = Callable[..., Any]

# How a call's result relates to its arguments' memory (``Primitive.alias``).
FRESH = "fresh"  # a new array (or a number): nothing else refers to it
VIEW = "view"  # may be a view of (share memory with) its first argument, or be that very object
ITSELF = "itself"  # its first argument itself (perhaps updated in place), or a new array
# (for VIEW and ITSELF, the "first argument" is the one at ``Primitive.viewed``: np.einsum's operand)
OPAQUE = "opaque"  # not an array, or nothing is known (iterators, containers, user functions)
ALIASING = (FRESH, VIEW, ITSELF, OPAQUE)

# What sort of object a call returns, for values whose rank is not inferred (``Primitive.nature``):
AXES = "axes"  # always an ndarray with at least one axis
KEEPS = "keeps"  # an ndarray with axes when its first argument is one (else see ``ndarray``)
NUMBER = "number"  # a Python or NumPy scalar (immutable)
REDUCES = "reduces"  # a number when called on one argument alone (no axis=)
ELEMENTWISE = "elementwise"  # an array when one operand is, a number when all are numbers

# How a call's result depends linearly on its arguments (``Primitive.linear``), which gives its JVP:
EACH = "each"  # linear in each differentiable argument separately (matmul, sum, reshape): the tangent
#                is the call itself with one argument replaced by its tangent, summed over arguments
JOINTLY = "jointly"  # linear in all of them together (a tuple display, np.where's x and y): the call
#                     on the tangents, zeros standing for arguments that have none


def _unclassified(*_: Any) -> Any:
    """Placeholder rule of a record that has not said what it knows (see :func:`unclassified`)."""
    return None


@dataclass
class Primitive:
    """What the compiler knows about one callee."""

    fn: Any
    name: str
    # derivatives
    vjps: tuple | None = None  # one rule ``(g, ans, *args, **kwargs) -> cotangent`` per positional argument
    keywords: dict = field(default_factory=dict)  # differentiable keyword -> position of its rule
    nondiff: bool = False  # zero derivative wherever it exists (comparisons, floor, len...)
    jvps: tuple | None = None  # one rule ``(t, ans, *args, **kwargs) -> tangent of ans`` per positional
    #                            argument ``t`` is the tangent of; without them, see forward.py
    linear: str | None = None  # EACH or JOINTLY when the call is linear in its differentiable arguments
    sequence: Any = False  # returns a tuple/list of arrays: True, or ``(args, kwargs) -> bool``
    # the abstract result (rules of ``(args, kwargs)`` over IR values; see shapes.py)
    shape: Rule = _unclassified  # the static shape, or None
    dtype: Rule = _unclassified  # shapes.F64 / shapes.MASK, or None
    rank: Rule | None = None  # ``(fn, kinds) -> kind``: SCALAR, RANGE, an ndim, or None
    dims: Rule | None = None  # for results that are shapes: ``(fn, args) -> dims`` they hold
    integer: Any = False  # returns a Python int (len, x.size): True, or ``(args) -> bool``
    nature: str | None = None  # AXES, KEEPS, NUMBER, REDUCES, ELEMENTWISE (see above)
    ndarray: bool = False  # surely returns an ndarray (perhaps without axes)
    # memory and effects
    alias: str = "unclassified"  # one of ALIASING
    viewed: int = 0  # with alias VIEW or ITSELF: the position of the argument it may view (or be)
    updates: bool = False  # changes its first argument in place (when emitted as an effect)
    pure: bool = False  # no side effects: may be shared (CSE) or removed when unused
    stateful: bool = False  # returns an iterator: two calls are two objects
    reads_only: bool = False  # when emitted as an effect: reads its arguments, changes none
    # scalar code
    on_numbers: bool = False  # Python numbers in, a Python number out
    elementwise: bool = False  # element by element, result of the operands' broadcast shape
    total: bool = False  # on Python numbers never raises: safe to run speculatively
    fold: Callable | None = None  # evaluates it at compile time on constants of ``fold_types``
    fold_types: tuple = (int, float, bool)
    float_operands: bool = False  # an int constant operand may be written as a float when the result is one
    float_result: bool = False  # on numbers, surely returns a Python float
    twin: Any = None  # the ``math`` function doing the same on Python floats (np.sin -> math.sin)
    # spelling and code generation
    method: str | None = None  # ``x.method(*a, **k)`` is ``fn(x, *a, **k)``
    cheap: bool = False  # recomputed at each use in generated code instead of being named
    accumulates: bool = False  # adds two cotangents (the sum-merging pass reads it)
    user: bool = False  # registered by a user (symdiff.defvjp)

    def classified(self) -> list[str]:
        """The facts this record leaves unclassified (empty when shape, dtype and aliasing are all said)."""
        missing = [f for f in ("shape", "dtype") if getattr(self, f) is _unclassified]
        return missing + (["alias"] if self.alias not in ALIASING else [])


_RECORDS: dict[Any, Primitive] = {}
_BY_METHOD: dict[str, Primitive] = {}
_DERIVED: dict[Any, Primitive] = {}


def define(fn: Any, **facts: Any) -> Primitive:
    """Register (or add to) the record of ``fn``; the keywords are :class:`Primitive` fields.

    A ``method`` fact also makes ``x.<method>(...)`` look up this record.
    """
    if facts.pop("fold_self", False):
        facts["fold"] = fn
    record = _RECORDS.get(fn)
    if record is None:
        record = dataclasses.replace(_derived(fn), fn=fn) if _derivable(fn) else Primitive(fn, spelling(fn))
        _RECORDS[fn] = record
    for name, value in facts.items():
        if not hasattr(record, name):
            raise TypeError(f"Primitive has no field {name!r}")
        setattr(record, name, value)
    if record.method is not None:
        _BY_METHOD[record.method] = record
    return record


def define_all(fns: Any, **facts: Any) -> None:
    """:func:`define` each of ``fns`` with the same facts."""
    for fn in fns:
        define(fn, **facts)


def registered(fn: Any) -> Primitive | None:
    """The record registered for ``fn`` itself (or through a method spelling), or None."""
    try:
        record = _RECORDS.get(fn)
    except TypeError:  # an unhashable callee
        return None
    if record is None and type(fn) is Method:
        return _BY_METHOD.get(fn.name)
    return record


def lookup(fn: Any) -> Primitive:
    """The record of ``fn``: registered, derived (ufuncs, ``math``, NumPy, attribute reads,
    displays), or the record of an unknown callee (impure, nothing known)."""
    try:  # (registered's work, inline: the passes ask this of every op, again and again)
        record = _RECORDS.get(fn)
    except TypeError:  # an unhashable callee
        return _UNKNOWN
    if record is not None:
        return record
    if type(fn) is Method:
        record = _BY_METHOD.get(fn.name)
        if record is not None:
            return record
    cached = _DERIVED.get(fn)
    if cached is None:
        cached = _DERIVED[fn] = _derived(fn) if _derivable(fn) else _UNKNOWN
    return cached


def records() -> list[Primitive]:
    """Every registered record, in registration order."""
    return list(_RECORDS.values())


def _derivable(fn: Any) -> bool:
    """Whether ``fn`` belongs to a family :func:`derive` describes."""
    return type(fn) is np.ufunc or isinstance(fn, (GetAttr, Build, BuildDict)) or _module(fn) == "math" or (
        _module(fn).startswith("numpy") and not _module(fn).startswith("numpy.random") and callable(fn))


def _module(fn: Any) -> str:
    try:
        return getattr(fn, "__module__", None) or ""
    except Exception:  # pragma: no cover - objects with odd attribute access
        return ""


# What callees without a record of their own are, by family (see :func:`derive`).
_FAMILY_FACTS: dict[str, dict] = {"ufunc": {}, "gufunc": {}, "math": {}, "numpy": {}, "attribute": {},
                                  "display": {}}


def derive(family: str, **facts: Any) -> None:
    """Say what every callee of ``family`` without a record of its own is: "ufunc" (elementwise
    NumPy ufuncs), "gufunc" (ufuncs with a signature, like matmul), "math", "numpy" (other
    NumPy functions), "attribute" (``x.name`` reads) or "display" (tuple/list/slice/dict displays)."""
    _FAMILY_FACTS[family].update(facts)
    _DERIVED.clear()


def _family(fn: Any) -> str:
    if type(fn) is np.ufunc:
        return "ufunc" if fn.signature is None else "gufunc"
    if type(fn) is GetAttr:
        return "attribute"
    if isinstance(fn, (Build, BuildDict)):
        return "display"
    return "math" if _module(fn) == "math" else "numpy"


def _derived(fn: Any) -> Primitive:
    """What is known of ``fn`` from its family, without a record of its own."""
    facts = dict(_FAMILY_FACTS[_family(fn)])
    if facts.pop("fold_self", False):
        facts["fold"] = fn
    return Primitive(fn, spelling(fn), **facts)


_UNKNOWN = Primitive(None, "an unknown callee")

# ----------------------------------------------------------------------------- spelling


def _public_names(modules: tuple) -> dict[int, str]:
    """Spellings of the public callables of ``modules`` (``(prefix, module)`` pairs), by id."""
    names: dict[int, str] = {}
    for prefix, module in modules:
        for name, obj in vars(module).items():
            if not name.startswith("_") and callable(obj):
                names.setdefault(id(obj), prefix + name)
    return names


_BUILTINS = ("abs", "min", "max", "len", "range", "float", "int", "sum", "round", "reversed",
             "print", "bool", "list", "tuple", "zip", "enumerate", "isinstance", "pow")
# what generated code may spell as it is: it imports np and math, and builtins need no import
_CODE_NAMES = {**_public_names((("np.linalg.", np.linalg), ("np.", np), ("math.", math))),
               **{id(getattr(builtins, name)): name for name in _BUILTINS},
               **{id(obj): name for name, obj in vars(builtins).items()  # the exceptions code raises
                  if isinstance(obj, type) and issubclass(obj, BaseException)}}
_NAMES = {**_public_names((("np.fft.", np.fft), ("np.random.", np.random), ("operator.", operator))),
          **_CODE_NAMES}


def name_publicly(obj: Any, name: str) -> None:
    """Spell ``obj`` (a function, or an object whose methods have records, such as
    ``scipy.stats.norm``) as ``name`` in messages and docs: the dotted name it is imported by."""
    _NAMES[id(obj)] = name
    _PINNED.append(obj)  # (kept alive: the table is by id)


_PINNED: list[Any] = []


def public_name(fn: Any) -> str | None:
    """The dotted name ``fn`` is imported by (``np.fft.fft``, ``scipy.special.expit``,
    ``scipy.stats.norm.logpdf`` for a method of an object a module holds), or None when none
    is known: the names given by :func:`name_publicly`, those of NumPy and ``math``, and the
    public module of a library function's own module (``scipy.special._ufuncs`` is read as
    ``scipy.special``) where that holds ``fn`` itself."""
    if type(fn) is types.MethodType:
        owner = fn.__self__
        name = None if isinstance(owner, type) else public_name(owner) or _global_name(owner)
        return None if name is None else f"{name}.{fn.__func__.__name__}"
    known = _NAMES.get(id(fn))
    if known is not None:
        return known
    module = _module(fn) if callable(fn) else _module(type(fn))
    if not module and type(fn) is np.ufunc:  # (SciPy's ufuncs name no module of their own)
        module = "scipy.special"
    return _held_by(_public_module(module), fn)


def _global_name(obj: Any) -> str | None:
    """The global name of ``obj`` in the module its class was defined in (``spring`` in a script,
    ``models.spring`` in a module ``models``), or None."""
    module = _module(type(obj))
    found = _held_by(module, obj) if module and module != "builtins" else None
    if found is not None and found.startswith("__main__."):
        return found[len("__main__."):]
    return found


def _public_module(module: str) -> str:
    """``module`` up to its first private part: ``scipy.stats._continuous_distns`` -> ``scipy.stats``."""
    parts = module.split(".")
    return ".".join(itertools.takewhile(lambda p: not p.startswith("_"), parts))


def _held_by(module_name: str, obj: Any) -> str | None:
    """``module_name.name`` where that public module (already imported) holds ``obj`` itself."""
    module = sys.modules.get(module_name) if module_name and module_name != "builtins" else None
    if module is None:
        return None
    name = getattr(obj, "__name__", None) if callable(obj) else None
    if isinstance(name, str) and not name.startswith("_") and getattr(module, name, None) is obj:
        return f"{module_name}.{name}"
    for key, value in vars(module).items():  # an instance, such as scipy.stats.norm
        if value is obj and not key.startswith("_"):
            return f"{module_name}.{key}"
    return None


def spelling(fn: Any) -> str:
    """How a person writes ``fn``: ``np.linalg.solve``, ``math.exp``, ``len``, ``.sum()``, ``.T``."""
    if type(fn) is Method:
        return f".{fn.name}()"
    if type(fn) is GetAttr:
        return f".{fn.name}"
    if type(fn) is Build:
        return f"a {fn.what} display"
    if type(fn) is BuildDict:
        return "a dict display"
    known = public_name(fn)
    if known is not None:
        return known
    module, name = _module(fn), getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return repr(fn)
    return f"{module}.{name}" if module and module != "builtins" else name


def code_name(fn: Any) -> str | None:
    """The spelling of ``fn`` in generated code when it is a public callable of ``np``,
    ``np.linalg``, ``math`` or a builtin (generated code imports only those), else None."""
    return _CODE_NAMES.get(id(fn))


@contextlib.contextmanager
def restored() -> Iterator[None]:
    """Put every record back as it was on leaving the block (for code that registers rules
    temporarily, such as tests): the same record objects, with the facts they had."""
    saved = {fn: (record, dict(vars(record), keywords=dict(record.keywords))) for fn, record in _RECORDS.items()}
    try:
        yield
    finally:
        _RECORDS.clear()
        for fn, (record, fields) in saved.items():
            vars(record).update(fields)
            _RECORDS[fn] = record
        _BY_METHOD.clear()
        _BY_METHOD.update({r.method: r for r in _RECORDS.values() if r.method is not None})
        _DERIVED.clear()


def spellings(record: Primitive) -> list[Any]:
    """The callees that reach ``record``: its function, and ``Method(name)`` for its method spelling."""
    return [record.fn] + ([Method(record.method)] if record.method is not None else [])


def with_rules() -> list[Primitive]:
    """The records that have VJP rules."""
    return [r for r in _RECORDS.values() if r.vjps is not None]
