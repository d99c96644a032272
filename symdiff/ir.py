"""The SSA intermediate representation: values, ops, regions, a builder, a printer and a verifier.

Control flow stays structured (like MLIR's ``scf`` dialect) so that it can be turned back into
readable Python:

* ``const``  -- a compile-time constant (``op.fn`` holds the Python object);
* ``call``   -- a call of a Python object ``op.fn`` on ``op.args`` (the last ``len(op.kwnames)``
  arguments are keywords). Operators are calls of ``operator.add`` and friends;
* ``if``     -- ``args == [cond]``, ``regions == [then, orelse]``; each region yields the results;
* ``for``    -- ``args == [iterable, *inits]``; the body's params are ``[target, *carried]``
  and it yields the next carried values; results are the final carried values;
* ``while``  -- ``args == inits``; ``regions == [cond, body]``, both taking the carried values
  as params; ``cond`` yields one boolean, ``body`` the next carried values.

A region may read any value defined in an enclosing region before it (like Python's scoping).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator

_ids = itertools.count()

# Static kinds of values, used to specialise code for Python scalars.
SCALAR = "scalar"  # a Python float/int/bool: plain arithmetic, `math`, no broadcasting
RANGE = "range"  # a range object: iterating it gives Python ints
SEQUENCE = "sequence"  # a list or tuple built in the function; its cotangent is {position: cotangent}


NOT_CONST = object()


class _Undefined:
    """What an ``if`` arm yields for a value only the other arm defines (never read)."""

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


@dataclass(eq=False)
class Value:
    """One SSA value. ``hint`` is the source name it came from (for readable code);
    ``kind`` is SCALAR when it is known to be a Python number; ``const`` holds the value of
    a constant (``NOT_CONST`` otherwise)."""

    hint: str | None = None
    kind: str | None = None
    const: Any = NOT_CONST
    shape: Any = None  # static shape (see shapes.py), None when unknown
    dims: Any = None  # for values that are themselves shapes (x.shape): the dims they hold
    integer: bool = False  # known to be a Python int (loop indices, sizes)
    pytype: Any = None  # the exact Python number type of a specialised argument (float, int, bool)
    dtype: Any = None  # the NumPy dtype of an array, when known (see shapes.infer_dtype)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def is_const(self) -> bool:
        return self.const is not NOT_CONST

    def __repr__(self) -> str:
        return f"%{self.hint or 't'}{self.id}"


@dataclass(frozen=True)
class Method:
    """Callee marker: ``args[0].name(*args[1:])``."""

    name: str


@dataclass(frozen=True)
class GetAttr:
    """Callee marker: ``args[0].name``."""

    name: str


@dataclass(frozen=True)
class Build:
    """Callee marker for displays: ``tuple``, ``list`` or ``slice``."""

    what: str


BUILD_TUPLE, BUILD_LIST, BUILD_SLICE = Build("tuple"), Build("list"), Build("slice")


@dataclass(frozen=True)
class BuildDict:
    """Callee marker for a dict display with these (constant) keys."""

    keys: tuple


@dataclass(frozen=True)
class ArraySpec:
    """What a gradient is specialised on for an ndarray argument: which axes have size 1 (all
    that NumPy broadcasting depends on) and its dtype."""

    ones: tuple
    dtype: Any


@dataclass(frozen=True)
class Struct:
    """A container argument (pytree): its type, keys, and the spec of each item."""

    type: type
    keys: tuple
    items: tuple

    def leaves(self, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
        """(path, spec) of every non-container item, depth first."""
        out = []
        for key, item in zip(self.keys, self.items):
            out += item.leaves(prefix + (key,)) if isinstance(item, Struct) else [(prefix + (key,), item)]
        return out


@dataclass(eq=False)
class Region:
    params: list[Value] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    yields: list[Value] = field(default_factory=list)


@dataclass(eq=False)
class Op:
    kind: str
    args: list[Value]
    results: list[Value]
    fn: Any = None
    kwnames: tuple[str, ...] = ()
    regions: list[Region] = field(default_factory=list)
    line: int | None = None  # source line, for comments and errors
    effect: bool = False  # has side effects: never removed or reordered
    adjoint: bool = False  # emitted by the backward sweep
    file: str | None = None  # source file of ``line`` (inlined callees live in other files)
    note: str | None = None  # why a call of a Python function was not inlined

    @property
    def result(self) -> Value:
        return self.results[0]

    @property
    def positional(self) -> list[Value]:
        return self.args[: len(self.args) - len(self.kwnames)]

    @property
    def keywords(self) -> dict[str, Value]:
        n = len(self.kwnames)
        return dict(zip(self.kwnames, self.args[len(self.args) - n :])) if n else {}


@dataclass(eq=False)
class Function:
    name: str
    body: Region  # params are the function's parameters; yields the return value
    filename: str = "<unknown>"
    # container parameters: param index -> (Struct spec, leaf values in Struct.leaves() order)
    structs: dict = field(default_factory=dict)
    # globals and closure variables read at compile time: (cell or globals dict, name, object)
    reads: list = field(default_factory=list)
    mode: str = "reverse"  # how the gradient was built: "reverse", or "forward" (one scalar input)


def walk(region: Region) -> Iterator[tuple[Op, Region]]:
    """All ops of ``region`` and of its nested regions, in program order, with their region."""
    for op in region.ops:
        yield op, region
        for sub in op.regions:
            yield from walk(sub)


def definitions(region: Region) -> dict[Value, Op]:
    """Map every op result under ``region`` to its op."""
    return {v: op for op, _ in walk(region) for v in op.results}


class Builder:
    """Appends ops to a stack of regions; constant and call helpers return result values."""

    def __init__(self, region: Region, simplify: Any = None, annotate: Any = None):
        self.stack = [region]
        self.line: int | None = None
        self.file: str | None = None
        self.simplify = simplify  # (builder, fn, args, kwargs) -> Value | None: peephole rewrites
        self.adjoint = False  # stamp emitted ops as part of the backward sweep
        self.producer: dict[Value, Op] = {}  # the op that computed each value built here
        self.annotate = annotate  # (fn, args, kwargs) -> (shape, dims, integer, dtype) of a result
        self.params: list[Value] = list(region.params)  # always in scope: shapes are read off them

    @property
    def region(self) -> Region:
        return self.stack[-1]

    def emit(self, op: Op) -> Op:
        if op.line is None:
            op.line, op.file = self.line, self.file
        op.adjoint = op.adjoint or self.adjoint
        self.region.ops.append(op)
        for r in op.results:
            self.producer[r] = op
        return op

    def const(self, value: Any, hint: str | None = None) -> Value:
        kind = SCALAR if type(value) in (float, int, bool) else None
        result = Value(hint, kind, value)
        result.integer = type(value) is int
        if kind == SCALAR:
            result.shape = ()
        elif type(value).__name__ == "ndarray":
            result.shape = value.shape
        if type(value) is tuple and all(type(d) is int for d in value):
            result.dims = value
        return self.emit(Op("const", [], [result], fn=value)).result

    def call(self, fn: Any, args: list[Value], kwargs: dict[str, Value] | None = None,
             hint: str | None = None, kind: str | None = None, effect: bool = False) -> Value:
        kwargs = kwargs or {}
        if self.simplify is not None:
            simpler = self.simplify(self, fn, args, kwargs)
            if simpler is not None:
                return simpler
        op = Op("call", list(args) + list(kwargs.values()), [Value(hint, kind)], fn=fn,
                kwnames=tuple(kwargs), effect=effect)
        if self.annotate is not None:
            r = op.result
            r.shape, r.dims, r.integer, r.dtype = self.annotate(fn, list(args), kwargs)
            if op.result.integer:
                op.result.kind = SCALAR
            elif kind is None and op.result.shape:  # an array of known rank
                op.result.kind = len(op.result.shape)
        if kind == SCALAR:
            op.result.shape = ()
        return self.emit(op).result

    def push(self, region: Region) -> None:
        self.stack.append(region)

    def pop(self) -> Region:
        return self.stack.pop()


_TEMP_NAMES = {"add": "total", "sub": "diff", "mul": "prod", "truediv": "ratio", "pow": "power",
               "getitem": "item", "neg": "neg", "sum": "total", "tuple": "pair", "list": "items"}


def temp_name(op: Op) -> str:
    """A readable name for a value the user did not name, after the op computing it."""
    if op.kind != "call":
        return "t"
    fn = op.fn
    name = getattr(fn, "name", None) or getattr(fn, "what", None) or getattr(fn, "__name__", None)
    if name == "pop" and op.args:
        name = (op.args[0].hint or "t").replace("_stack", "")
    name = _TEMP_NAMES.get(name, name)
    return name if isinstance(name, str) and name.isidentifier() else "t"


# ----------------------------------------------------------------------------- printer


def _callee_name(fn: Any) -> str:
    if isinstance(fn, (Method, GetAttr)):
        return f".{fn.name}"
    if isinstance(fn, Build):
        return fn.what
    return getattr(fn, "__name__", repr(fn))


def format_region(region: Region, indent: str = "") -> list[str]:
    lines = []
    for op in region.ops:
        res = ", ".join(map(repr, op.results))
        if op.kind == "const":
            lines.append(f"{indent}{res} = const {op.fn!r:.40}")
        elif op.kind == "call":
            args = [repr(a) for a in op.positional] + [f"{k}={v!r}" for k, v in op.keywords.items()]
            lines.append(f"{indent}{res} = {_callee_name(op.fn)}({', '.join(args)})")
        else:
            lines.append(f"{indent}{res} = {op.kind} {', '.join(map(repr, op.args))}")
            for i, sub in enumerate(op.regions):
                params = ", ".join(map(repr, sub.params))
                lines.append(f"{indent}  region {i} ({params}):")
                lines.extend(format_region(sub, indent + "    "))
    if region.yields:
        lines.append(f"{indent}yield {', '.join(map(repr, region.yields))}")
    return lines


def format_function(fn: Function) -> str:
    """A human-readable dump of the IR, for debugging."""
    params = ", ".join(map(repr, fn.body.params))
    return "\n".join([f"func {fn.name}({params}):"] + format_region(fn.body, "  "))


# ----------------------------------------------------------------------------- verifier


class IRError(Exception):
    """The IR broke one of its invariants (a compiler bug, not a user error)."""


def verify(fn: Function) -> None:
    """Check SSA: every value defined once, before use, in an enclosing region."""
    defined: set[int] = set()

    def define(v: Value) -> None:
        if v.id in defined:
            raise IRError(f"{v!r} defined twice")
        defined.add(v.id)

    def check_region(region: Region, visible: set[int]) -> None:
        visible = set(visible)
        for p in region.params:
            define(p)
            visible.add(p.id)
        for op in region.ops:
            for a in op.args:
                if a.id not in visible and not a.is_const:
                    raise IRError(f"{a!r} used by {op.kind} {_callee_name(op.fn)} before definition")
            _check_shape(op)
            for sub in op.regions:
                check_region(sub, visible)
            for r in op.results:
                define(r)
                visible.add(r.id)
        for y in region.yields:
            if y.id not in visible and not y.is_const:
                raise IRError(f"yield of undefined {y!r}")

    check_region(fn.body, set())


def _check_shape(op: Op) -> None:
    n = len(op.results)
    if op.kind in ("const", "call") and (n != 1 or op.regions):
        raise IRError(f"{op.kind} must have one result and no regions")
    if op.kind == "if" and (len(op.regions) != 2 or any(len(r.yields) != n for r in op.regions)):
        raise IRError("if must have two regions yielding one value per result")
    if op.kind == "for":
        body = op.regions[0]
        if len(body.params) != n + 1 or len(body.yields) != n or len(op.args) != n + 1:
            raise IRError("for: params/yields/results mismatch")
    if op.kind == "while":
        cond, body = op.regions
        if len(cond.yields) != 1 or len(body.yields) != n or len(op.args) != n:
            raise IRError("while: cond/body/results mismatch")
