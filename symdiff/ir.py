"""The SSA intermediate representation: values, ops, regions, a builder, a printer and a verifier.

Control flow stays structured (like MLIR's ``scf`` dialect) so that it can be turned back into
readable Python. An op's ``kind`` is an :class:`OpKind`; structured ops keep their operands in
``args`` and their regions in ``regions`` in a fixed layout, read through named accessors
(never by position outside this module):

* ``CONST`` -- a compile-time constant (``op.fn`` holds the Python object);
* ``CALL``  -- a call of a Python object ``op.fn`` on ``op.args`` (the last ``len(op.kwnames)``
  arguments are keywords: ``op.positional`` and ``op.keywords`` split them). Operators are calls
  of ``operator.add`` and friends;
* ``IF``    -- ``op.test`` is the condition value; ``op.then`` and ``op.orelse`` are the two arms,
  each yielding one value per result;
* ``FOR``   -- ``op.iterable`` is iterated; ``op.inits`` are the initial values of the carried
  values; ``op.body`` takes ``op.target`` (the item, its first param) and then the carried
  values, and yields their next values; the results are the final carried values;
* ``WHILE`` -- ``op.inits`` as for ``FOR``; ``op.cond`` and ``op.body`` both take the carried
  values as params; ``op.cond`` yields one boolean, ``op.body`` the next carried values.

``op.carried(region)`` is a loop region's carried params (a ``for`` body's params after the
target; all of a ``while`` region's), ``op.is_loop`` tells ``FOR`` and ``WHILE`` from the rest,
and ``op.keep_results(indices)`` drops an ``if``'s or a loop's other results with all that
produces them. Slot ``i`` of a loop lines up across ``op.inits[i]``, ``op.carried(region)[i]``,
``op.body.yields[i]`` and ``op.results[i]``.

A region may read any value defined in an enclosing region before it (like Python's scoping).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterator, NamedTuple

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


class Abstract(NamedTuple):
    """What is known at compile time of a value, whatever it turns out to be at run time."""

    kind: str | int | None = None  # SCALAR, RANGE, SEQUENCE, an int (an ndarray of that many axes), or None
    shape: Any = None  # static shape (see shapes.py), None when unknown
    dims: Any = None  # for values that are themselves shapes (x.shape): the dims they hold
    integer: bool = False  # known to be a Python int (loop indices, sizes)
    pytype: Any = None  # the exact Python number type of a specialised argument (float, int, bool)
    dtype: Any = None  # the NumPy dtype of an array, when known (see shapes.infer_dtype)


def _abstract_field(name: str) -> property:
    """``value.<name>``: that fact of ``value.aval`` (setting it replaces the abstract value)."""
    index = Abstract._fields.index(name)

    def get(value: Value) -> Any:
        return value.aval[index]

    def set_(value: Value, fact: Any) -> None:
        aval = value.aval
        value.aval = Abstract(*aval[:index], fact, *aval[index + 1:]) if type(aval) is Abstract \
            else aval._replace(**{name: fact})  # (positionally: _replace is several times slower)
    return property(get, set_, doc=f"The ``{name}`` of this value's abstract value.")


class Value:
    """One SSA value. ``hint`` is the source name it came from (for readable code); ``aval`` is
    its abstract value (:class:`Abstract`: kind, shape, dims, int-ness, Python type, dtype), whose
    facts read as attributes (``value.shape``); ``const`` holds the value of a constant
    (``NOT_CONST`` otherwise)."""

    __slots__ = ("hint", "const", "aval", "id")

    def __init__(self, hint: str | None = None, kind: str | int | None = None, const: Any = NOT_CONST,
                 aval: Abstract | None = None, **facts: Any):
        self.hint = hint
        self.const = const
        self.aval = aval if aval is not None else Abstract(kind, **facts)
        self.id = next(_ids)

    kind = _abstract_field("kind")
    shape = _abstract_field("shape")
    dims = _abstract_field("dims")
    integer = _abstract_field("integer")
    pytype = _abstract_field("pytype")
    dtype = _abstract_field("dtype")

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
    that NumPy broadcasting depends on) and its dtype; for an array of another library that
    NumPy hands over to (a dask or CuPy array, see symdiff/arrays.py), its type as well (None:
    an ndarray)."""

    ones: tuple
    dtype: Any
    type: Any = None


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


class OpKind(str, Enum):
    """What an op does; see the module docstring for the layout of each kind."""

    CONST = "const"
    CALL = "call"
    IF = "if"
    FOR = "for"
    WHILE = "while"

    def __str__(self) -> str:
        return self.value


@dataclass(eq=False)
class Op:
    """One operation; structured ops (``IF``, ``FOR``, ``WHILE``) hold regions, read through the
    named accessors below. ``kind`` may be given as its string value (``"call"``)."""

    kind: OpKind
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

    def __post_init__(self) -> None:
        if type(self.kind) is not OpKind:  # (a string value; OpKind of a member is the member)
            self.kind = OpKind(self.kind)

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

    # ------------------------------------------------------------------ structured ops

    @property
    def is_loop(self) -> bool:
        """Whether this is a ``FOR`` or ``WHILE`` op."""
        return self.kind is OpKind.FOR or self.kind is OpKind.WHILE

    def _expect(self, *kinds: OpKind) -> None:
        if self.kind not in kinds:
            raise IRError(f"a {self.kind} op has no such part (only {', '.join(map(str, kinds))} ops do)")

    @property
    def test(self) -> Value:
        """An ``IF``'s condition value."""
        self._expect(OpKind.IF)
        return self.args[0]

    @property
    def then(self) -> Region:
        """An ``IF``'s arm run when the condition holds."""
        self._expect(OpKind.IF)
        return self.regions[0]

    @property
    def orelse(self) -> Region:
        """An ``IF``'s arm run when the condition does not hold."""
        self._expect(OpKind.IF)
        return self.regions[1]

    @property
    def iterable(self) -> Value:
        """The value a ``FOR`` loop iterates."""
        self._expect(OpKind.FOR)
        return self.args[0]

    @property
    def target(self) -> Value:
        """A ``FOR`` loop's item: the first param of its body."""
        self._expect(OpKind.FOR)
        return self.regions[0].params[0]

    @property
    def inits(self) -> list[Value]:
        """A loop's initial values of its carried values (a new list)."""
        self._expect(OpKind.FOR, OpKind.WHILE)
        return self.args[1:] if self.kind is OpKind.FOR else list(self.args)

    @property
    def body(self) -> Region:
        """A loop's body: it yields the next carried values."""
        self._expect(OpKind.FOR, OpKind.WHILE)
        return self.regions[-1]

    @property
    def cond(self) -> Region:
        """A ``WHILE`` loop's condition region: it yields one boolean."""
        self._expect(OpKind.WHILE)
        return self.regions[0]

    def carried(self, region: Region) -> list[Value]:
        """The carried params of ``region``, one of this loop's regions (a new list): a ``for``
        body's params after the target, all of a ``while`` region's params."""
        self._expect(OpKind.FOR, OpKind.WHILE)
        return region.params[1:] if self.kind is OpKind.FOR else list(region.params)

    def keep_results(self, indices: list[int]) -> None:
        """Keep only the results at ``indices`` (in ascending order) of an ``IF`` or a loop, and
        what produces them: the arms' yields of an ``IF``; a loop's initial values, carried
        params and body yields."""
        self._expect(OpKind.IF, OpKind.FOR, OpKind.WHILE)
        self.results = [self.results[i] for i in indices]
        if self.kind is OpKind.IF:
            for sub in self.regions:
                sub.yields = [sub.yields[i] for i in indices]
            return
        head = self.args[:1] if self.kind is OpKind.FOR else []
        inits = self.inits
        self.args = head + [inits[i] for i in indices]
        for sub in self.regions:
            lead = sub.params[:1] if self.kind is OpKind.FOR else []
            carried = self.carried(sub)
            sub.params = lead + [carried[i] for i in indices]
        body = self.body
        body.yields = [body.yields[i] for i in indices]


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
    like: Any = None  # an argument of another array library, which the arrays the code creates follow


def walk(region: Region) -> Iterator[tuple[Op, Region]]:
    """All ops of ``region`` and of its nested regions, in program order, with their region."""
    # (one generator and a stack, not a generator per region, through every enclosing one of
    # which each op would pass; lists are read when the recursive walk would read them)
    stack: list[tuple[Region | None, Iterator]] = [(region, iter(region.ops))]
    while stack:
        current, items = stack[-1]
        if current is None:  # the regions of an op
            sub = next(items, None)
            if sub is None:
                stack.pop()
            else:
                stack.append((sub, iter(sub.ops)))
            continue
        for op in items:
            yield op, current
            if op.regions:
                stack.append((None, iter(op.regions)))
                break
        else:
            stack.pop()


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
        self.trail: list[tuple[Region, Op]] | None = None  # what is emitted while a caller records (to drop it)

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
        if self.trail is not None:
            self.trail.append((self.region, op))
        return op

    def const(self, value: Any, hint: str | None = None) -> Value:
        kind = SCALAR if type(value) in (float, int, bool) else None
        result = Value(hint, kind, value)
        result.integer = type(value) is int
        if kind == SCALAR:
            result.shape = ()
        elif type(value).__name__ == "ndarray":  # a global or closure array, compiled in
            result.aval = Abstract(value.ndim, value.shape, dtype=value.dtype)
        elif type(value).__module__ == "numpy" and getattr(value, "shape", None) == () \
                and getattr(value, "dtype", None) is not None and value.dtype.kind in "biuf":
            result.aval = Abstract(shape=(), dtype=value.dtype)  # a NumPy number, as x[i] of a vector is
        if type(value) is tuple and all(type(d) is int for d in value):
            result.dims = value
        return self.emit(Op(OpKind.CONST, [], [result], fn=value)).result

    def call(self, fn: Any, args: list[Value], kwargs: dict[str, Value] | None = None,
             hint: str | None = None, kind: str | None = None, effect: bool = False) -> Value:
        kwargs = kwargs or {}
        if self.simplify is not None:
            simpler = self.simplify(self, fn, args, kwargs)
            if simpler is not None:
                return simpler
        op = Op(OpKind.CALL, list(args) + list(kwargs.values()), [Value(hint, kind)], fn=fn,
                kwnames=tuple(kwargs), effect=effect)
        if self.annotate is not None:
            aval = self.annotate(fn, list(args), kwargs)
            if aval.integer:
                kind = SCALAR
            elif aval.kind is not None:  # known whatever the caller says (a NumPy float64 scalar, a tuple of ints)
                kind = aval.kind
            elif kind is None and aval.shape:  # an array of known rank
                kind = len(aval.shape)
            op.result.aval = Abstract(kind, *aval[1:]) if type(aval) is Abstract else aval._replace(kind=kind)
        if kind == SCALAR:
            op.result.shape = ()
        return self.emit(op).result

    def drop(self, emitted: list[tuple[Region, Op]]) -> None:
        """Remove ops this builder emitted (recorded in :attr:`trail`) from their regions."""
        for region, op in reversed(emitted):
            region.ops.remove(op)
            for r in op.results:
                self.producer.pop(r, None)

    def push(self, region: Region) -> None:
        self.stack.append(region)

    def pop(self) -> Region:
        return self.stack.pop()


_TEMP_NAMES = {"add": "total", "sub": "diff", "mul": "prod", "truediv": "ratio", "pow": "power",
               "getitem": "item", "neg": "neg", "sum": "total", "tuple": "pair", "list": "items"}


def temp_name(op: Op) -> str:
    """A readable name for a value the user did not name, after the op computing it."""
    if op.kind is not OpKind.CALL:
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
        if op.kind is OpKind.CONST:
            lines.append(f"{indent}{res} = const {op.fn!r:.40}")
        elif op.kind is OpKind.CALL:
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

    visible: set[int] = set()  # one set for all regions: each takes out what it added when it ends

    def check_region(region: Region) -> None:
        added: list[int] = []
        for p in region.params:
            define(p)
            added.append(p.id)
        visible.update(added)
        for op in region.ops:
            for a in op.args:
                if a.id not in visible and not a.is_const:
                    raise IRError(f"{a!r} used by {op.kind} {_callee_name(op.fn)} before definition")
            _check_shape(op)
            for sub in op.regions:
                check_region(sub)
            for r in op.results:
                define(r)
                visible.add(r.id)
                added.append(r.id)
        for y in region.yields:
            if y.id not in visible and not y.is_const:
                raise IRError(f"yield of undefined {y!r}")
        visible.difference_update(added)  # (defined once: none of them was visible before)

    check_region(fn.body)


def _check_shape(op: Op) -> None:
    n = len(op.results)
    if op.kind in (OpKind.CONST, OpKind.CALL) and (n != 1 or op.regions):
        raise IRError(f"{op.kind} must have one result and no regions")
    if op.kind is OpKind.IF and (len(op.regions) != 2 or any(len(r.yields) != n for r in op.regions)):
        raise IRError("if must have two regions yielding one value per result")
    if op.kind is OpKind.FOR:
        if len(op.regions) != 1 or len(op.body.params) != n + 1 or len(op.body.yields) != n \
                or len(op.args) != n + 1:
            raise IRError("for: params/yields/results mismatch")
    if op.kind is OpKind.WHILE:
        if len(op.regions) != 2 or len(op.cond.yields) != 1 or len(op.body.yields) != n or len(op.inits) != n \
                or any(len(op.carried(sub)) != n for sub in op.regions):
            raise IRError("while: cond/body/results mismatch")
