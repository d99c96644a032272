"""Lowering: a desugared Python function (``ast``, see desugar.py) to SSA IR with structured
control flow.

The user's variables are tracked in an environment ``name -> Value`` (``Lowerer.env``);
assignment rebinds the name. What the lowering itself keeps -- whether the function returned
and what, whether a loop broke or continued, a loop's index -- lives beside it, in
``Lowerer.flags`` (keyed by :class:`Flag`, so no user name can collide with it). Branches and
loops lower their regions with copies of both and merge what they change into op results
(this replaces phi nodes). ``return``/``break``/``continue`` set flags; statements after a
possible jump run under an ``if`` on them, and loops with ``break`` or ``return`` become
``while`` loops that test them. Only the flags a construct can set are carried: a loop body
starts knowing that its loop neither broke nor returned.

The lowering also decides what needs the values' kinds (a container argument's loop is
unrolled, a list being built is iterated as a snapshot) and refuses the in-place updates
whose aliasing it cannot model.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import linecache
import operator
import types
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import desugar, mutation, operators, passes, primitives, rules, runtime, shapes
from .errors import (
    AliasingError,
    MutationError,
    NeedsArgumentsError,
    SymdiffError,
    UnresolvedNameError,
    UnsupportedSyntaxError,
    located,
)
from .frontend import _MISSING, Parsed, check_entry_signature, names_read, parse_function
from .ir import (
    BUILD_LIST,
    BUILD_SLICE,
    BUILD_TUPLE,
    RANGE,
    SCALAR,
    SEQUENCE,
    Abstract,
    ArraySpec,
    BuildDict,
    Builder,
    Function,
    GetAttr,
    Method,
    Op,
    OpKind,
    Region,
    Struct,
    Value,
)
from .patterns import match

BINOPS, UNARYOPS, CMPOPS = operators.BINOPS, operators.UNARYOPS, operators.CMPOPS


@dataclass(frozen=True)
class Flag:
    """A value the lowering keeps for itself beside the user's variables: whether the function
    has returned (``returned``) and what (``result``), whether the loop ``level`` deep has
    broken or continued (``broke``, ``continued``) and its index (``index``), or the value of
    an expression node being merged across branches (``value``, ``level`` is the node's id)."""

    role: str
    level: int = 0

    @property
    def hint(self) -> str | None:
        """The name it reads as in generated code (the code generator renames on a clash)."""
        return {"index": "i", "value": None}.get(self.role, self.role)


RETURNED, RESULT = Flag("returned"), Flag("result")
State = dict  # the user's variables (str keys) and the lowering's flags (Flag keys), together
OPERATOR_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@",
                 ast.FloorDiv: "//", ast.Mod: "%"}

class Lowerer:
    """Lowers one function, specialised for its arguments (see :func:`lower`)."""

    def __init__(self, parsed: Parsed, specs: list[Any]):
        check_entry_signature(parsed)
        self.p, self.namer = desugared(parsed)
        self.body = Region(params=[Value(name) for name in parsed.params])
        # constant folding stays on: it is what makes `axis=-1` or `(2, 0, 1)` static arguments
        self.b = Builder(self.body, simplify=passes.fold_constants, annotate=shapes.annotate)
        self.b.file = parsed.filename
        self.env: dict[str, Value] = dict(zip(parsed.params, self.body.params))  # the user's variables
        self.flags: dict[Flag, Value] = {}  # the lowering's own (see Flag)
        if parsed.bound is not _MISSING:  # a bound method: `self` is a constant, read at call time
            self.env[parsed.all_params[0]] = self.b.const(parsed.bound, hint=parsed.all_params[0])
        for name, value in (getattr(parsed.fn, "__kwdefaults__", None) or {}).items():
            self.env[name] = self.b.const(value, hint=name)  # keyword-only: the default, a constant
        self.loop_depth = 0
        self.statements: list[ast.stmt] = []  # the statements being lowered, outermost first
        self.contexts: list[Value] = []  # the managers of the with blocks being lowered, outermost first
        self.updated_in_place: set[Value] = set()  # values some name updates in place (a += 1)
        self.views: dict[Value, Value] = {}  # a value that may be a NumPy view -> the array it views
        self.same_object: dict[Value, Value] = {}  # a loop's carried value or result -> the value it starts as
        self.contained: set[Value] = set()  # values appended to (or stored in) a list built at run time
        # what values of unknown kind surely are: "array" (an ndarray with axes: updated in place)
        # or "number" (a Python or NumPy scalar: immutable)
        self.nature: dict[Value, str] = {}
        self.maybe_aliases: dict[Value, set[str]] = {}  # a value -> names that may be bound to it
        self.foreign: set[Value] = set()  # when inlining a helper: its caller's arrays and lists
        self.inlining: tuple[Callable, ...] = (parsed.fn,)  # functions being inlined, outermost first
        self.structs: dict[Value, dict] = {}  # container values known item by item: key -> value
        self.item_lists: dict[Value, Value] = {}  # container -> a list value of its items
        self.struct_types: dict[Value, type] = {}  # container arguments (and slices) -> list/tuple/dict
        self.arguments: set[Value] = set()  # container arguments and the containers in them
        self.rebuilds: dict[Value, Value] = {}  # such a container -> a display of its items
        self.reads: list[tuple[Any, str, Any]] = []
        self.local_calls: frozenset = frozenset()  # nested functions being inlined
        self.param_structs: dict[int, tuple] = {}
        for i, (param, spec) in enumerate(zip(self.body.params, specs)):
            if isinstance(spec, Struct):
                self.b.line = parsed.node.lineno
                leaves: list[Value] = []
                self.unpack(param, spec, leaves)
                self.param_structs[i] = (spec, leaves)
            elif isinstance(spec, (types.FunctionType, types.BuiltinFunctionType, np.ufunc)):
                # a function argument: the gradient is specialised on it, so it is a constant
                self.env[param.hint] = self.b.const(spec, hint=param.hint)
            else:
                specialise(param, spec)

    def unpack(self, value: Value, spec: Struct, leaves: list[Value]) -> None:
        """Read a container argument's items once, at the top: ``W1 = params["W1"]``."""
        items = {}
        for key, item_spec in zip(spec.keys, spec.items):
            hint = key if isinstance(key, str) and key.isidentifier() else f"{value.hint}_{key}"
            item = self.b.call(operator.getitem, [value, self.b.const(key)], hint=hint)
            if isinstance(item_spec, Struct):
                self.unpack(item, item_spec, leaves)
            else:
                specialise(item, item_spec)
                leaves.append(item)
            items[key] = item
        self.structs[value] = items
        self.struct_types[value] = spec.type
        self.arguments.add(value)

    @classmethod
    def for_inlining(cls, parsed: Parsed, outer: Lowerer, env: dict[str, Value],
                     namer: desugar.Namer) -> Lowerer:
        """A lowerer that emits a callee's body (desugared; ``namer`` names the function it is
        part of) into ``outer``'s current region."""
        self = cls.__new__(cls)
        self.p, self.b, self.env, self.body = parsed, outer.b, env, None
        self.namer, self.flags = namer, {}
        self.loop_depth = 0
        self.statements = []
        self.contexts = outer.contexts
        self.updated_in_place = outer.updated_in_place
        self.views = outer.views
        self.same_object = outer.same_object
        self.contained = outer.contained
        self.nature = outer.nature
        self.maybe_aliases = outer.maybe_aliases
        # the caller's objects, which an in-place update here would change for the caller too
        self.foreign = {v for v in env.values() if v.kind not in (SCALAR, RANGE) and not v.is_const}
        self.inlining = outer.inlining + (parsed.fn,)
        self.structs = outer.structs
        self.item_lists = outer.item_lists
        self.struct_types = outer.struct_types
        self.arguments = outer.arguments
        self.rebuilds = outer.rebuilds
        self.reads = outer.reads
        self.local_calls = outer.local_calls
        return self

    # ------------------------------------------------------------------ entry point

    def lower(self) -> Function:
        self.body.yields = [self.lower_body()]
        return Function(self.p.name, self.body, self.p.filename, structs=self.param_structs, reads=self.reads)

    def lower_body(self) -> Value:
        """Lower the function's statements; return the value it returns."""
        node = self.p.node
        self.flags[RETURNED] = self.b.const(False)
        self.flags[RESULT] = self.b.const(None)
        if isinstance(node, ast.Lambda):
            self.b.line = node.lineno
            self.flags[RESULT] = self.expr(node.body)
        else:
            self.block(node.body)
        return self.flags[RESULT]

    def state(self) -> State:
        """What branches and loops merge: the user's variables and the flags, in one dict."""
        return {**self.env, **self.flags}

    def restore(self, state: State) -> None:
        """Make ``state`` (see :meth:`state`) the current variables and flags."""
        self.env = {k: v for k, v in state.items() if type(k) is str}
        self.flags = {k: v for k, v in state.items() if type(k) is Flag}

    def bind(self, key: str | Flag, value: Value) -> None:
        """Bind a user variable (a ``str`` key) or a flag."""
        (self.flags if type(key) is Flag else self.env)[key] = value

    def desugared(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        """Statements made while lowering, desugared as the function was."""
        return desugar.desugar_statements(stmts, self.p.resolve, self.namer)

    # ------------------------------------------------------------------ statements

    def block(self, stmts: list[ast.stmt]) -> None:
        """Lower statements (desugared: early exits already normalised) in order, those after
        a possible jump in an ``if`` on the flags."""
        for i, stmt in enumerate(stmts):
            jumped = self.jumped()
            if jumped is True:
                return  # the rest is unreachable
            if jumped is not False:
                go_on = self.b.call(operator.not_, [jumped], hint="go_on")
                self.branch(go_on, functools.partial(self.block_not_jumped, stmts[i:]), None)
                return
            self.b.line = stmt.lineno
            self.stmt(stmt)
            if isinstance(stmt, ast.Raise):
                return  # the rest is unreachable (the exception ends the function)

    def block_not_jumped(self, stmts: list[ast.stmt]) -> None:
        """Lower ``stmts`` in the arm where no jump happened: the flags are known False there."""
        self.known_not_jumped(self.flag_names())
        self.block(stmts)

    def known_not_jumped(self, names: list[Flag]) -> None:
        """Bind the jump flags ``names`` (those set) to False: code known to run only when none
        of them is set. A flag already the constant False keeps its value."""
        for name in names:
            if name in self.flags and not _same_const(self.flags[name], FALSE):
                self.flags[name] = self.b.const(False, hint=name.hint)

    def jumped(self) -> Value | bool:
        """Whether control left the current block: True, False, or a runtime flag value."""
        flags = [self.flags[n] for n in self.flag_names() if n in self.flags]
        if any(f.const is True for f in flags):
            return True
        dynamic = [f for f in flags if not f.is_const]
        if not dynamic:
            return False
        result = dynamic[0]
        for f in dynamic[1:]:
            result = self.b.call(operator.or_, [result, f], hint="jumped")
        return result

    def flag_names(self) -> list[Flag]:
        """The flags that say control left the block being lowered."""
        names = [RETURNED]
        if self.loop_depth:
            names += [Flag("broke", self.loop_depth), Flag("continued", self.loop_depth)]
        return names

    def stmt(self, node: ast.stmt) -> None:
        method = getattr(self, "stmt_" + type(node).__name__, None)
        if method is None:
            raise self.p.error(node, f"{type(node).__name__} statement is not supported by symdiff")
        self.statements.append(node)
        method(node)
        self.statements.pop()

    def stmt_Pass(self, node: ast.Pass) -> None:
        pass

    def stmt_Raise(self, node: ast.Raise) -> None:
        """``raise E(...)``: the exception is made and raised where the source raises it (an
        effect: it stays in the derivative's forward code, in the same branch). What follows
        it in its block is unreachable; the values its branch merges are never used."""
        if node.cause is not None:
            raise self.p.error(node, "`raise ... from ...` is not supported by symdiff: drop the `from` clause")
        exc = self.expr(node.exc)
        self.b.call(runtime.throw, [exc, *reversed(self.contexts)], effect=True)  # (leaving the with blocks)

    def stmt_With(self, node: ast.With) -> None:
        """``with np.errstate(...):`` or ``with warnings.catch_warnings():`` -- the body is lowered
        between a call that enters the manager and one that exits it (effects: they stay in the
        derivative's forward code around the body's operations, in order). Other managers are
        refused: what they do on entering and leaving is not known."""
        managers = []
        for item in node.items:
            managers.append(self.context_manager(item.context_expr))
        jumps = [n for n in _this_function([*node.body]) if isinstance(n, ast.Return)] + \
            [n for n in _this_function([*node.body], loops=False) if isinstance(n, (ast.Break, ast.Continue))]
        if jumps:
            raise self.p.error(jumps[0], f"`{type(jumps[0]).__name__.lower()}` inside a `with` block is not "
                               "supported by symdiff: assign the value in the block and return (or break) after it")
        for manager in managers:
            self.b.call(runtime.enter_context, [manager], effect=True)
            self.contexts.append(manager)
        self.block(node.body)
        self.b.line = node.end_lineno or node.lineno
        for manager in reversed(managers):
            self.contexts.pop()
            self.b.call(runtime.exit_context, [manager], effect=True)

    def context_manager(self, expr: ast.expr) -> Value:
        """The manager of a ``with`` item: a call of a context manager symdiff knows."""
        callee = self.expr(expr.func) if isinstance(expr, ast.Call) else None
        if callee is None or not callee.is_const or not any(callee.const is known for known in runtime.CONTEXTS):
            raise self.p.error(expr, f"the context manager {ast.unparse(expr)} is not supported by symdiff (only "
                               "np.errstate(...) and warnings.catch_warnings() are): move the `with` block out "
                               "of the differentiated function, or call the function inside it")
        args, kwargs = self.call_arguments(expr)
        return self.b.call(callee.const, args, kwargs, hint="manager", effect=True)

    def stmt_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant):
            return  # docstring or bare constant
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "append" \
                and isinstance(call.func.value, ast.Name) and len(call.args) == 1 and not call.keywords:
            items = self.load(call.func.value.id, call.func.value)
            if items.kind == SEQUENCE or items in self.structs:
                return self.append(call.func.value.id, items, self.expr(call.args[0]))
        self.expr(node.value)

    def append(self, name: str, items: Value, value: Value) -> None:
        """``items.append(value)``: in place, as in Python; its position is recorded for the
        backward sweep, which hands each appended value the cotangent of its position."""
        position = self.call(len, [items], hint="position")
        self.contained.add(value)
        self.update(name, items, self.call(runtime.list_append, [items, value, position], hint=name))

    def stmt_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0], (ast.Tuple, ast.List)) \
                and isinstance(node.value, (ast.Tuple, ast.List)) \
                and len(node.targets[0].elts) == len(node.value.elts):
            values = [self.expr(e) for e in node.value.elts]  # a, b = b, a: evaluate all first
            for target, value in zip(node.targets[0].elts, values):
                self.assign(target, value)
            return
        if len(node.targets) == 1 and isinstance(node.targets[0], (ast.Tuple, ast.List)) \
                and self.is_builtin_call(node.value, zip):  # a, b = zip(*pairs): its rows
            value = self.zip_rows(node.value, BUILD_TUPLE)
        else:
            value = self.expr(node.value, hint=_target_hint(node.targets[0]))
        for target in node.targets:
            self.assign(target, value)

    def stmt_AugAssign(self, node: ast.AugAssign) -> None:
        target = node.target
        if isinstance(target, ast.Subscript):  # a[i] += v  is  a[i] = a[i] + v
            base, index = self.item_target(target)
            value = self.expr(node.value)
            current = self.call(operator.getitem, [base, index])
            updated = self.call(BINOPS[type(node.op)], [current, value])
            if base.kind == SEQUENCE and base not in self.structs and self.may_be_mutable(current):
                op = OPERATOR_TEXT.get(type(node.op), "+")
                raise self.p.error(node, f"{ast.unparse(target)} {op}= ... changes the array in the list in place, "
                                   "which every other reference to it would see; symdiff does not model that: "
                                   f"write {ast.unparse(target)} = {ast.unparse(target)} {op} ...",
                                   cls=AliasingError)
            if base in self.structs:  # d["a"] *= v updates the array d["a"] in place: its other names see it
                if self.may_be_mutable(current) and self.held_by_live_container(current, self.live_names(),
                                                                                       besides=(base, index)):
                    raise self.p.error(node, "the array updated in place here is also another item of a list or "
                                       "dict, which would see the change; symdiff does not model that: write "
                                       "the item as a new array (d[k] = d[k] * 2.0)", cls=AliasingError)
                self.update(ast.unparse(target), current, updated, item=True)
            self.store_item(target, base, index, updated)
            return
        if not isinstance(target, ast.Name):
            raise self.p.error(node, "augmented assignment to an attribute is not supported")
        current = self.load(target.id, target)
        value = self.expr(node.value)
        updated = self.call(BINOPS[type(node.op)], [current, value], hint=target.id)
        if type(current.kind) is int:  # an ndarray updated in place keeps its rank and dtype
            updated.kind, updated.dtype = current.kind, current.dtype
        self.update(target.id, current, updated)

    def update(self, name: str, current: Value, updated: Value, item: bool = False) -> None:
        """Rebind ``name`` after an in-place update of its value (``+=``, ``a[i] = v``). With
        ``item``, the value is an item of a container (``d["a"] *= v``; ``name`` is its source
        text): only the names bound to it are rebound."""
        live = self.live_names()  # (walks the function: once per update)
        self.refuse_update_through_view(name, current, live)
        self.refuse_update_of_viewed_item(name, current, live)
        self.refuse_update_of_shared(name, current, live, item)
        maybe = self.maybe_aliases.get(current, set()) - {name}
        if maybe & live:
            raise self.p.error(self.statements[-1], f"{name!r} may or may not be the same array as "
                               f"{sorted(maybe)[0]!r} here, depending on a branch taken earlier (one arm binds "
                               "them to one array, the other does not) or on whether a loop that binds them "
                               "apart ran at all; symdiff cannot model an in-place "
                               f"update of it: write {name} = {name}.copy() before the update, or the update "
                               f"as a new value ({name} = {name} * 2.0)", cls=AliasingError)
        aliases = [n for n, v in self.env.items() if v is current and n != name]
        if aliases and current.kind != SCALAR and self.nature.get(current) != "number":
            # An ndarray (or list) is updated in place, so every name bound to it sees the update;
            # a number is immutable, so only `name` is rebound.
            if type(current.kind) is int or current.kind == SEQUENCE or current in self.structs \
                    or self.nature.get(current) in ("array", "ndarray"):
                self.env.update((alias, updated) for alias in aliases)
            elif live & set(aliases):
                raise self.p.error(self.statements[-1], f"{name!r} and {aliases[0]!r} are one object, updated "
                                   "in place here, but symdiff cannot tell whether it is an array (which both "
                                   "names would see changed) or a number (which only one would): write the "
                                   f"update as a new value ({name} = {name} * 2.0), or take a copy first "
                                   f"({name} = {aliases[0]}.copy())", cls=AliasingError)
        if current.kind != SCALAR:
            self.updated_in_place.add(current)
        if not item:
            self.env[name] = updated

    def refuse_update_through_view(self, name: str, current: Value, live: set[str]) -> None:
        """An array updated in place while a live name holds a view of it (``u = v[1:3]``), or a
        view updated in place while its array is live: NumPy would change both; symdiff's
        updates are functional, so it refuses instead of answering differently."""
        root = self.object_root(current)
        for other, value in self.env.items():
            if other == name or value is current or other not in live:
                continue
            is_view = self.same_object.get(current, current) in self.views
            if self.object_root(value) is root and (self.same_object.get(value, value) in self.views or is_view):
                view, array = (name, other) if is_view else (other, name)
                raise self.p.error(self.statements[-1], f"{view!r} may be a NumPy view of {array!r} (a basic slice, "
                                   "reshape or transpose shares its memory), so updating one in place changes "
                                   "the other, which symdiff does not model: take a copy (.copy()) of the "
                                   "view, or write the update as a new array (a = a * 2.0)", cls=AliasingError)

    def object_root(self, value: Value) -> Value:
        """The array ``value`` is, or may be a view of: a loop's carried value is the object it
        starts as (``y`` in a loop is the array a view ``head = y[:2]`` taken before it shows)."""
        value = self.same_object.get(value, value)
        return self.views.get(value, value)

    def sharing_memory(self, value: Value) -> set[Value]:
        """The other values that may share memory with ``value``: the array it may be a view of,
        and every other value that may be a view of that array."""
        root = self.views.get(value, value)
        return ({root} | {v for v, r in self.views.items() if r is root}) - {value}

    def refuse_update_of_viewed_item(self, name: str, current: Value, live: set[str]) -> None:
        """An in-place update of an array that may share memory with an item of a list or dict
        that is read later (``ps = [t.reshape(-1), t]; ps[0] *= 2.0`` changes ``ps[1]`` too)."""
        if current.kind == SCALAR or current.shape == () or self.nature.get(current) == "number":
            return
        for other in self.sharing_memory(current):
            if other in self.contained or self.held_by_live_container(other, live):
                raise self.p.error(self.statements[-1], f"{name} may share memory with (be a NumPy view of, or "
                                   "have a view that is) an item of a list or dict, which would see an in-place "
                                   "update of it; symdiff does not model that: take a copy (.copy()) of the "
                                   f"view, or write the update as a new array ({name} = {name} * 2.0)",
                                   cls=AliasingError)

    def refuse_update_of_shared(self, name: str, current: Value, live: set[str], item: bool = False) -> None:
        """An in-place update of an object that something other than this function's names
        holds: a caller (when inlining a helper), or a list or dict that is read later
        (``item``: ``current`` is an item of a container, updated through it)."""
        if current.kind == SCALAR or current.shape == () or self.nature.get(current) == "number":
            return  # numbers (and NumPy scalars) are immutable
        where = self.statements[-1] if self.statements else self.p.node
        if current in self.foreign:
            raise self.p.error(where, f"{self.p.name}() updates {name!r} in place (+=, item assignment or "
                               "append), and that object belongs to its caller, who would see the change; "
                               "symdiff does not carry it back: return the new value instead",
                               cls=AliasingError)
        if current in self.contained:
            raise self.p.error(where, f"{name!r} is also an item of a list or dict built in the function "
                               "(appended to it, or read from it), which would see the change; symdiff does "
                               f"not model that: write the update as a new array ({name} = {name} * 2.0)"
                               if not item else "the array updated in "
                               "place here is also held elsewhere (it was read from, or appended to, a list "
                               "built in the function); symdiff does not model that: write the item as a new "
                               "array (d[k] = d[k] * 2.0)", cls=AliasingError)
        if item:
            return  # d[k] += v: the container's own item, updated through the container
        if self.held_by_live_container(current, live):
            raise self.p.error(where, f"{name!r} is also an item of a list or dict, which would see an in-place "
                               "update of it; symdiff does not model that: write the update as a new "
                               f"array ({name} = {name} * 2.0) or update the container's item", cls=AliasingError)

    def held_by_live_container(self, value: Value, live: set[str], besides: tuple | None = None) -> bool:
        """Whether a container known item by item, bound to a ``live`` name, holds ``value``
        (``besides``: a ``(container, key)`` slot that does not count)."""
        skip = None
        if besides is not None and besides[1].is_const:
            key = besides[1].const
            items = self.structs[besides[0]]
            skip = (besides[0], key % len(items) if type(key) is int and list(items) == list(range(len(items)))
                    else key)

        def holds(c: Value, items: dict, inner: set) -> bool:
            return any(v in inner and (c, k) != skip for k, v in items.items())

        holders, frontier = set(), {value}
        while frontier:
            frontier = {c for c, items in self.structs.items() if c not in holders and holds(c, items, frontier)}
            holders |= frontier
        return any(v in holders for n, v in self.env.items() if n in live)

    def live_names(self) -> set[str]:
        """Names that may be read after the statement being lowered: later in the function, or
        anywhere in a loop around it (in its next iteration)."""
        live = self.p.names_read_after(self.statements[-1]) if self.statements else set()
        for stmt in self.statements:
            if isinstance(stmt, (ast.For, ast.While)):
                live |= {n.id for n in names_read(stmt)}
        return live

    def item_target(self, target: ast.Subscript) -> tuple[Value, Value]:
        if not isinstance(target.value, ast.Name):
            raise self.p.error(target, "item assignment to an expression other than a name is not supported")
        return self.load(target.value.id, target.value), self.index(target.slice)

    def store_item(self, target: ast.Subscript, base: Value, index: Value, value: Value) -> None:
        """``a[i] = v`` as a functional update: a new array equal to ``a`` but at ``i``; for a
        list or dict known item by item and a constant key, a new display with that item."""
        name = target.value.id
        if base in self.structs and index.is_const and type(index.const) is not slice:
            return self.update(name, base, self.with_item(target, base, index.const, value))
        self.update(name, base, self.call(runtime.setitem, [base, index, value], hint=name))

    def with_item(self, target: ast.Subscript, container: Value, key: Any, value: Value) -> Value:
        """A display equal to ``container`` (known item by item) with ``container[key] = value``."""
        kind = self.container_type(container)
        items = dict(self.structs[container])
        if kind is tuple:
            raise self.p.error(target, "'tuple' object does not support item assignment", cls=SymdiffError)
        if kind is list:
            if type(key) is not int or not -len(items) <= key < len(items):
                raise self.p.error(target, "list assignment index out of range" if type(key) is int
                                   else f"list indices must be integers, not {type(key).__name__}", cls=SymdiffError)
            key %= len(items)
        elif not _hashable(key):
            raise self.p.error(target, f"unhashable dict key of type {type(key).__name__}", cls=SymdiffError)
        items[key] = value
        build = BuildDict(tuple(items)) if kind is dict else BUILD_LIST
        new = self.call(build, list(items.values()), hint=target.value.id)
        self.structs[new] = items
        return new

    def assign(self, target: ast.expr, value: Value) -> None:
        if isinstance(target, ast.Name):
            if value.hint is None or value.hint.startswith("_") or value.is_const:
                value.hint = target.id
            self.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)) and value.is_const and type(value.const) in (tuple, list) \
                and len(value.const) == len(target.elts) and not any(isinstance(e, ast.Starred) for e in target.elts):
            for elt, item in zip(target.elts, value.const):  # (k, w) of a constant pair: constants too
                self.assign(elt, self.b.const(item))
        elif isinstance(target, (ast.Tuple, ast.List)):
            known = self.structs.get(value)
            if known is not None and self.container_type(value) is not dict and len(known) != len(target.elts):
                raise self.p.error(target, f"cannot unpack {len(known)} values into {len(target.elts)} names",
                                   cls=SymdiffError)
            for i, elt in enumerate(target.elts):
                self.assign(elt, self.call(operator.getitem, [value, self.b.const(i)], hint=_target_hint(elt)))
        elif isinstance(target, ast.Subscript):
            base, index = self.item_target(target)
            self.store_item(target, base, index, value)
        else:
            raise self.p.error(target, f"assignment to {type(target).__name__} is not supported")

    def stmt_Return(self, node: ast.Return) -> None:
        self.flags[RESULT] = self.expr(node.value) if node.value is not None else self.b.const(None)
        self.flags[RETURNED] = self.b.const(True, hint=RETURNED.hint)

    def stmt_Break(self, node: ast.Break) -> None:
        broke = Flag("broke", self.loop_depth)
        self.flags[broke] = self.b.const(True, hint=broke.hint)

    def stmt_Continue(self, node: ast.Continue) -> None:
        continued = Flag("continued", self.loop_depth)
        self.flags[continued] = self.b.const(True, hint=continued.hint)

    def stmt_If(self, node: ast.If) -> None:
        cond = self.expr(node.test)
        self.branch(cond, lambda: self.block(node.body), lambda: self.block(node.orelse))

    def branch(self, cond: Value, then: Callable[[], None], orelse: Callable[[], None] | None) -> None:
        """Lower an ``if`` whose arms change ``self.env``; merge the names they change."""
        if cond.is_const:  # `if DEBUG:` and friends: only the taken arm exists
            taken = then if cond.const else orelse
            if taken is not None:
                taken()
            return
        line = self.b.line
        before = self.state()
        then_region, then_env = self.region(then, before)
        else_region, else_env = self.region(orelse, before)
        names = list(dict.fromkeys([*then_env, *else_env]))
        changed = [n for n in names if then_env.get(n) is not else_env.get(n)]
        after = dict(before)
        after.update((n, then_env[n]) for n in names if n not in changed)
        results: list[Value] = []
        merged: dict[tuple, Value] = {}  # names bound to one object in both arms stay one after
        tuples: list[Callable[[], None]] = []  # tuples rebuilt after the if from its merged items
        for name in changed:
            a = then_env.get(name) or self.b.const(None)
            c = else_env.get(name) or self.b.const(None)
            if (a, c) in merged:
                after[name] = merged[a, c]
                continue
            if _same_const(a, c):  # one constant: bound outside the arms, where it is read
                after[name] = before[name] if name in before and _same_const(before[name], a) \
                    else self.b.const(a.const, hint=a.hint)
                continue
            after[name] = self.merge_arms(name, a, c, (then_region, else_region), results, merged, tuples)
        self.restore(after)
        self.note_conditional_aliases([n for n in changed if type(n) is str], then_env, else_env)
        self.b.emit(Op(OpKind.IF, [cond], results, regions=[then_region, else_region], line=line))
        for rebuild in tuples:
            rebuild()

    def merge_arms(self, name: str | Flag, a: Value, c: Value, arms: tuple[Region, Region], results: list[Value],
                   merged: dict[tuple, Value], tuples: list[Callable[[], None]]) -> Value:
        """The value after an ``if`` of what is ``a`` after one arm and ``c`` after the other: a
        result of the ``if`` with the facts both share. Two tuples built in the arms (a helper
        returning ``h, s`` from either arm) merge item by item, each item a result with its
        own facts, and the tuple is built again after the ``if`` (``tuples`` builds them)."""
        if (a, c) in merged:
            return merged[a, c]
        if a is c:  # an item bound before the if
            return a
        if _same_const(a, c):  # one constant: made again after the arms, where it is read
            return self.b.const(a.const, hint=a.hint)
        if self.tuple_display(a) and self.tuple_display(c) and list(self.structs[a]) == list(self.structs[c]):
            items = {k: self.merge_arms(name, self.structs[a][k], self.structs[c][k], arms, results, merged, tuples)
                     for k in self.structs[a]}
            value = Value(_merged_hint(name, a, c), SEQUENCE)

            def rebuild() -> None:
                self.b.emit(Op(OpKind.CALL, list(items.values()), [value], fn=BUILD_TUPLE))
                self.structs[value] = items
            tuples.append(rebuild)
            merged[a, c] = value
            return value
        arms[0].yields.append(a)
        arms[1].yields.append(c)
        result = Value(_merged_hint(name, a, c), aval=_merged_aval(a, c))
        if _nature_of(a, self.nature) is not None and _nature_of(a, self.nature) == _nature_of(c, self.nature):
            self.nature[result] = _nature_of(a, self.nature)
        results.append(result)
        merged[a, c] = result
        self.maybe_aliases[result] = self.maybe_aliases.get(a, set()) | self.maybe_aliases.get(c, set())
        return result

    def tuple_display(self, v: Value) -> bool:
        """Whether ``v`` is a tuple built in the function and known item by item (immutable:
        another tuple of the same items is the same to every reader)."""
        producer = self.b.producer.get(v)
        return v in self.structs and v not in self.arguments and producer is not None \
            and producer.fn is BUILD_TUPLE and list(self.structs[v]) == list(range(len(self.structs[v])))

    def note_conditional_aliases(self, changed: list[str], then_env: dict, else_env: dict) -> None:
        """Names that are one object after one arm of an ``if`` but not after the other
        (``b = a`` in one, ``b = a.copy()`` in the other) may or may not alias: remember it,
        so that an in-place update through either is refused rather than guessed."""
        for name in changed:
            for other in self.env:
                if other == name:
                    continue
                together = [env.get(name) is env.get(other) and env.get(name) is not None
                            and self.may_be_mutable(env[name]) for env in (then_env, else_env)]
                if together[0] != together[1]:
                    self.maybe_aliases.setdefault(self.env[name], set()).add(other)
                    self.maybe_aliases.setdefault(self.env[other], set()).add(name)

    def may_be_mutable(self, value: Value) -> bool:
        """False for numbers and constants, which in-place operators only rebind."""
        return not value.is_const and value.kind not in (SCALAR, RANGE) and self.nature.get(value) != "number"

    def region(self, fill: Callable[[], None] | None, state: State) -> tuple[Region, State]:
        """Lower ``fill`` into a new region, starting from ``state`` (see :meth:`state`);
        return the region and the state it ends in."""
        region = Region()
        self.restore(state)
        self.b.push(region)
        if fill is not None:
            fill()
        self.b.pop()
        return region, self.state()

    # ------------------------------------------------------------------ loops

    def stmt_For(self, node: ast.For) -> None:
        if node.orelse:
            raise self.p.error(node, "for ... else is not supported")
        spread = self.spread_iterable(node)
        if spread is not None:  # `for a, b in zip(*pairs)`: the loop over zip(pairs[0], pairs[1])
            return self.block(self.desugared([spread]))
        if _remembered(node, "jumps out", lambda: _jumps_out(node.body)):
            self.for_as_while(node)
        else:
            self.for_loop(node)
        for name in desugar.temporaries(node):  # an index loop's sequences: dead from here on
            self.env.pop(name, None)

    def spread_iterable(self, node: ast.For) -> ast.For | None:
        """``node`` iterating a call with star-arguments of known length (``zip(*pairs)``, of
        a name known item by item or a display) as a loop over the call of the items
        (``zip(pairs[0], pairs[1])``), which the desugarings can make an index loop of; else None."""
        call = node.iter
        if not isinstance(call, ast.Call) or not any(isinstance(a, ast.Starred) for a in call.args):
            return None
        args: list[ast.expr] = []
        for a in call.args:
            if not isinstance(a, ast.Starred):
                args.append(a)
            elif isinstance(a.value, (ast.List, ast.Tuple)) and not any(isinstance(e, ast.Starred)
                                                                         for e in a.value.elts):
                args.extend(a.value.elts)
            else:
                if isinstance(a.value, ast.Name) and a.value.id in self.env:
                    name = a.value.id
                else:  # zip(*helper(x)): its value, once, under a name of ours
                    name = self.namer.fresh("_spread")
                    self.env[name] = self.expr(a.value)
                items, is_dict = self.known_items(self.env[name])
                if items is None or is_dict:
                    self.spread(a.value, "*")  # refuses it, saying what to write
                args.extend(ast.copy_location(ast.Subscript(ast.Name(name, ast.Load()), ast.Constant(k),
                                                            ast.Load()), a) for k in sorted(items))
        new_call = ast.copy_location(ast.Call(call.func, args, call.keywords), call)
        return ast.copy_location(ast.For(node.target, new_call, node.body, node.orelse), node)

    def for_loop(self, node: ast.For) -> None:
        """``for t in seq`` whose body neither breaks nor returns: a ``for`` op, or one copy
        of the body per item of a container argument."""
        iterable = self.iterated(self.expr(node.iter))
        if iterable in self.structs:
            return self.unrolled_for(node, list(self.structs[iterable].values()))
        if iterable.kind == SEQUENCE:  # iterate a snapshot: the list may grow afterwards
            iterable = self.b.call(tuple, [iterable], kind=SEQUENCE, effect=True)
        names = self.carried(node)
        target_kind = SCALAR if iterable.kind == RANGE else None

        def body() -> None:
            self.assign(node.target, target)
            self.loop_body(node.body)

        target = Value(_target_hint(node.target), target_kind)
        target.integer = target_kind == SCALAR
        target.shape = () if target.integer else None
        if type(iterable.kind) is int and iterable.kind >= 1:  # an array's rows: what `x[i]` is
            target.aval = shapes.row_of(iterable)
        if iterable.kind is None or type(iterable.kind) is int and iterable.kind > 1:
            self.views[target] = self.views.get(iterable, iterable)  # the rows of an array are views
        rebinding = _always_rebound(node) if self.surely_runs(iterable) else frozenset()
        op = self.loop(OpKind.FOR, [iterable], [target], names, body, None, rebinding=rebinding)
        op.line = node.lineno

    def unrolled_for(self, node: ast.For, items: list[Value]) -> None:
        """``for w in weights`` over a container argument: one copy of the body per item (the
        body neither breaks nor returns: such a loop is a ``while`` over an index)."""
        self.loop_depth += 1
        for item in items:
            self.assign(node.target, item)
            self.loop_body(node.body)
        self.loop_depth -= 1
        self.drop_loop_flags()

    def stmt_While(self, node: ast.While) -> None:
        if node.orelse:
            raise self.p.error(node, "while ... else is not supported")
        brk = Flag("broke", self.loop_depth + 1)
        breaks, returns = _remembered(node, "breaks, returns", lambda: (_breaks(node.body), _returns(node)))
        if breaks:
            self.flags[brk] = self.b.const(False, hint=brk.hint)
        names = self.carried(node) + ([brk] if breaks else []) + ([RETURNED, RESULT] if returns else [])

        def cond() -> Value:
            return self.and_not_jumped(lambda: self.expr(node.test), breaks)

        def body() -> None:
            self.known_not_jumped(([brk] if breaks else []) + ([RETURNED] if returns else []))
            self.loop_body(node.body)

        op = self.loop(OpKind.WHILE, [], [], names, body, cond)
        op.line = node.lineno

    def for_as_while(self, node: ast.For) -> None:
        """``for t in seq`` with break/return: ``i = 0; while i < len(seq) and not jumped: t = seq[i]...``."""
        seq = self.iterated(self.expr(node.iter, hint="seq"))
        length = self.call(len, [seq], hint="n")
        index, brk = Flag("index", self.loop_depth + 1), Flag("broke", self.loop_depth + 1)
        breaks, returns = _remembered(node, "breaks, returns", lambda: (_breaks(node.body), _returns(node)))
        self.flags[index] = self.b.const(0, hint=index.hint)
        if breaks:
            self.flags[brk] = self.b.const(False, hint=brk.hint)
        names = self.carried(node) + [index] + ([brk] if breaks else []) + ([RETURNED, RESULT] if returns else [])

        def cond() -> Value:
            return self.and_not_jumped(
                lambda: self.call(operator.lt, [self.flags[index], length]), breaks)

        def body() -> None:
            self.known_not_jumped(([brk] if breaks else []) + ([RETURNED] if returns else []))
            i = self.flags[index]
            item = self.call(operator.getitem, [seq, i], hint=_target_hint(node.target))
            if seq.kind == RANGE and not item.is_const:  # an item of a range is an int
                item.kind, item.integer, item.shape = SCALAR, True, ()
            elif type(seq.kind) is int and seq.kind >= 1:  # a row of an array (the index is an int)
                item.aval = shapes.row_of(seq)
            self.assign(node.target, item)
            self.flags[index] = self.call(operator.add, [i, self.b.const(1)], hint=i.hint)
            self.loop_body(node.body)

        op = self.loop(OpKind.WHILE, [], [], names, body, cond)
        op.line = node.lineno

    def and_not_jumped(self, test: Callable[[], Value], breaks: bool) -> Value:
        """``not broke and not returned and test()`` inside a loop condition."""
        names = ([Flag("broke", self.loop_depth)] if breaks else []) + [RETURNED]
        flags = [self.flags[n] for n in names if n in self.flags]
        flags = [f for f in flags if not (f.is_const and f.const is False)]
        if not flags:
            return test()
        go_on = self.b.call(operator.not_, [flags[0]], hint="go_on")
        for f in flags[1:]:
            go_on = self.b.call(passes.both, [go_on, self.b.call(operator.not_, [f])], hint="go_on")
        key = Flag("value", id(go_on))
        self.flags[key] = go_on
        self.branch(go_on, lambda: self.bind_after(key, test), None)
        return self.flags.pop(key)

    def bind_after(self, key: Flag, compute: Callable[[], Value]) -> None:
        """Bind the flag ``key`` to ``compute()``, in the flags as they are *after* ``compute``
        (which replaces them when it lowers a branch: ``a and b``, ``x if c else y``)."""
        value = compute()
        self.flags[key] = value

    def loop_body(self, stmts: list[ast.stmt]) -> None:
        continued = Flag("continued", self.loop_depth)
        self.flags[continued] = self.b.const(False, hint=continued.hint)
        self.block(stmts)
        self.flags.pop(continued, None)

    def note_carried(self, values: list[Value], inits: list[Value], ints: list[bool], natures: list,
                     maybes: list) -> None:
        """What is known of a loop's carried values (its regions' params, or its results) from
        their initial values and the iterations so far: which are Python ints, the object each
        starts as, what sort of object each is, and which names each may be an alias of."""
        _mark_ints(values, ints)
        self.same_object.update((v, self.same_object.get(init, init)) for v, init in zip(values, inits))
        self.nature.update((v, n) for v, n in zip(values, natures) if n)
        self.maybe_aliases.update((v, set(m)) for v, m in zip(values, maybes) if m)

    def carried(self, node: ast.stmt) -> list[str]:
        """Names a loop must carry: assigned in it, and defined before it or read after it."""
        assigned = _remembered(node, "assigned", lambda: desugar.assigned_names(node))
        after = self.p.names_read_after(node)
        return [n for n in assigned if n in self.env or n in after]

    def loop(self, kind: OpKind, args: list[Value], extra_params: list[Value], names: list[str | Flag],
             body: Callable[[], None], cond: Callable[[], Value] | None, rebinding: frozenset = frozenset()) -> Op:
        """Emit a ``for``/``while`` op carrying ``names`` (variables and flags); retries once if
        a kind was too narrow.

        Names bound to one array (or list) when the loop starts are one object in Python: the
        loop carries it once and binds every alias to it, so that an in-place update through
        one name is seen through the others, in the loop and after it. Aliases the body binds
        apart are still one object after a loop that ran no iteration, or whose iterations all
        skipped the rebinding: they may or may not alias after it, unless one of them is in
        ``rebinding``, names a loop that surely runs rebinds in every iteration."""
        for name in names:
            if name not in self.env and name not in self.flags:
                self.env[name] = self.b.const(None, hint=name)
        before = self.state()
        unshared: set[str] = set()  # aliases found to part ways in the loop: carried on their own
        apart: list[tuple[str, str]] = []  # (alias, the name it shared its object with)
        names, aliases = self.share_aliases(names, before, unshared)
        inits = [before[n] for n in names]
        kinds, shapes_, dtypes, natures, maybes = self.known_of(inits)
        ints = [v.integer for v in inits]  # (i = 0; ... i = i + 1: a Python int throughout)
        self.loop_depth += 1
        while True:  # until the kinds and shapes assumed for the carried values hold
            params = [self._carried(n, v, k, s, d) for n, v, k, s, d in zip(names, inits, kinds, shapes_, dtypes)]
            self.note_carried(params, inits, ints, natures, maybes)
            cond_region = None
            if cond is not None:
                cond_params = [self._carried(n, v, k, s, d)
                               for n, v, k, s, d in zip(names, inits, kinds, shapes_, dtypes)]
                self.note_carried(cond_params, inits, ints, natures, maybes)
                cond_region, cond_env = self.region(None, before)
                self._bind_carried(names, cond_params, aliases)
                self.b.push(cond_region)
                cond_region.params = cond_params
                cond_region.yields = [cond()]
                self.b.pop()
            region, env = self.region(functools.partial(self._loop_body, names, params, aliases, body), before)
            region.params = extra_params + params
            region.yields = [env[n] for n in names]
            parted = [a for a, rep in aliases.items() if env.get(a) is not env.get(rep)]
            if parted:
                self.refuse_parted_aliases(parted, aliases, names, params)
                unshared.update(parted)
                apart += [(a, aliases[a]) for a in parted]
            # names rebound without being assigned (aliases of an array updated in place)
            rebound = [n for n in before if n not in names and n not in aliases and env.get(n) is not before[n]
                       and not _same_const(env.get(n), before[n])]
            if parted or rebound:
                names, aliases = self.share_aliases(names + rebound, before, unshared)
                inits = [before[n] for n in names]
                kinds, shapes_, dtypes, natures, maybes = self.known_of(inits)
                ints = [v.integer for v in inits]
                continue
            new_kinds = [k if y.kind == k else None for y, k in zip(region.yields, kinds)]
            new_shapes = [_settle(s, shapes.merge(s, y.shape)) for y, s in zip(region.yields, shapes_)]
            new_dtypes = [d if y.dtype is d else None for y, d in zip(region.yields, dtypes)]
            new_natures = [n if _nature_of(y, self.nature) == n else None for y, n in zip(region.yields, natures)]
            new_maybes = [m | self.maybe_aliases.get(y, set()) for y, m in zip(region.yields, maybes)]
            new_ints = [i and y.integer for y, i in zip(region.yields, ints)]
            if new_kinds == kinds and all(a is b for a, b in zip(new_shapes, shapes_)) \
                    and all(a is b for a, b in zip(new_dtypes, dtypes)) and new_natures == natures \
                    and new_maybes == maybes and new_ints == ints:  # (dtypes by identity: np.dtype("float64") == None)
                break
            kinds, shapes_, dtypes, natures, maybes = new_kinds, new_shapes, new_dtypes, new_natures, new_maybes
            ints = new_ints
        self.loop_depth -= 1
        self.restore(before)
        if any(p in self.updated_in_place for p in params):  # the loop updates these in place
            self.updated_in_place.update(v for v, p in zip(inits, params) if p in self.updated_in_place)
        results = [self._carried(n, v, k, s, d) for n, v, k, s, d in zip(names, inits, kinds, shapes_, dtypes)]
        self.note_carried(results, inits, ints, natures, maybes)
        self._bind_carried(names, results, aliases)
        self.note_loop_aliases([(a, r) for a, r in apart if a not in rebinding and r not in rebinding])
        self.drop_loop_flags()
        regions = [cond_region, region] if cond_region is not None else [region]
        return self.b.emit(Op(kind, args + inits, results, regions=regions))

    def surely_runs(self, iterable: Value) -> bool:
        """Whether a loop over ``iterable`` surely runs its body: a constant that is not empty,
        or ``range(...)`` of constants that is not."""
        producer = self.b.producer.get(iterable)
        if producer is not None and producer.fn is range and all(a.is_const for a in producer.args) \
                and not producer.kwnames:
            try:
                return len(range(*(a.const for a in producer.args))) > 0
            except TypeError:
                return False
        if not iterable.is_const:
            return False
        try:
            return len(iterable.const) > 0
        except TypeError:
            return False

    def note_loop_aliases(self, apart: list[tuple[str, str]]) -> None:
        """Names one object when a loop starts that its body binds apart (``b = a`` before it,
        ``a = a * 2.0`` in it) are still one object after no iteration: remember that they may
        alias, so that an in-place update through either is refused rather than guessed."""
        for alias, rep in apart:
            va, vr = self.env.get(alias), self.env.get(rep)
            if va is None or vr is None or va is vr or not (self.may_be_mutable(va) and self.may_be_mutable(vr)):
                continue
            self.maybe_aliases.setdefault(va, set()).add(rep)
            self.maybe_aliases.setdefault(vr, set()).add(alias)

    def known_of(self, values: list[Value]) -> tuple[list, ...]:
        """What is known of each of ``values`` (a loop's initial values): kind, shape, dtype,
        nature and the names it may alias; the loop assumes these of its carried values."""
        return ([v.kind for v in values], [v.shape for v in values], [_float64_start(v) for v in values],
                [_nature_of(v, self.nature) for v in values],
                [frozenset(self.maybe_aliases.get(v, ())) for v in values])

    @staticmethod
    def share_aliases(names: list, env: State, unshared: set[str]) -> tuple[list, dict]:
        """Split the names a loop carries into one name per object and its aliases: other
        variables (carried or not) bound to the same array or list when the loop starts."""
        carried, aliases = [], {}
        for name in names:
            if name in aliases:
                continue
            carried.append(name)
            value = env[name]
            if value.kind == SCALAR or value.is_const or name in unshared:
                continue  # numbers are immutable: sharing them changes nothing
            aliases.update((other, name) for other, v in env.items()
                           if v is value and other != name and other not in unshared
                           and type(other) is str and other not in aliases)
        return carried, aliases

    def refuse_parted_aliases(self, parted: list[str], aliases: dict, names: list[str], params: list[Value]) -> None:
        """Aliases that the loop rebinds apart (``b = a`` before it, ``b = b * 2`` in it) are one
        object in the first iteration only: an in-place update of it cannot be modelled."""
        for alias in parted:
            rep = aliases[alias]
            if params[names.index(rep)] in self.updated_in_place:
                loop = next(n for n in reversed(self.statements) if isinstance(n, (ast.For, ast.While)))
                raise self.p.error(loop, f"{alias!r} and {rep!r} are one array when this loop "
                                   "starts but not after its first iteration, and the loop updates it in "
                                   f"place: write {alias} = {rep}.copy() before the loop", cls=AliasingError)

    @staticmethod
    def _bind_aliases(env: dict[str, Value], aliases: dict) -> None:
        env.update((alias, env[rep]) for alias, rep in aliases.items())

    def _bind_carried(self, names: list, values: list[Value], aliases: dict) -> None:
        for name, value in zip(names, values):
            self.bind(name, value)
        self._bind_aliases(self.env, aliases)

    def drop_loop_flags(self) -> None:
        """Forget the break/continue flags and index of a loop that just ended (one level
        deeper than the code after it): a later loop at that depth starts without them."""
        depth = self.loop_depth + 1
        for role in ("broke", "continued", "index"):
            self.flags.pop(Flag(role, depth), None)

    @staticmethod
    def _carried(name: str | Flag, init: Value, kind: Any, shape: Any, dtype: Any = None) -> Value:
        return Value(_hint(name, init), kind, shape=shape, dtype=dtype)

    def _loop_body(self, names: list, params: list[Value], aliases: dict, body: Callable[[], None]) -> None:
        self._bind_carried(names, params, aliases)
        body()

    # ------------------------------------------------------------------ expressions

    def expr(self, node: ast.expr, hint: str | None = None) -> Value:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.p.error(node, f"{type(node).__name__} expression is not supported by symdiff")
        value = method(node)
        if hint and value.hint is None:
            value.hint = hint
        return value

    def materialised(self, v: Value) -> Value:
        """``v``, or for a :class:`LocalPartial` of a Python function the call making that partial
        when the code runs (it is passed on, not called here)."""
        if not (v.is_const and isinstance(v.const, LocalPartial)) or isinstance(v.const.fn, LocalFunction):
            return v
        made = v.const
        return self.b.call(functools.partial, [self.b.const(made.fn), *made.args], dict(made.keywords),
                           hint="partial")

    def call(self, fn: Any, args: list[Value], kwargs: dict[str, Value] | None = None,
             hint: str | None = None) -> Value:
        if args and args[0] in self.structs and not kwargs:
            items = self.structs[args[0]]
            if fn is operator.getitem and args[1].is_const:
                key = args[1].const
                if type(key) is slice:
                    return self.slice_container(args[0], key)
                if type(key) is int and key < 0 and key + len(items) in items:
                    key += len(items)
                if _hashable(key) and key in items:
                    return items[key]
            if fn is len:
                return self.b.const(len(items))
            if type(fn) is Method and fn.name == "get" and len(args) in (2, 3) and args[1].is_const \
                    and self.container_type(args[0]) is dict and _hashable(args[1].const):
                default = args[2] if len(args) == 3 else self.b.const(None)
                return items.get(args[1].const, default)  # d.get(key, default) of a dict known by key
            if fn is operator.getitem and args[0].kind != SEQUENCE:
                # a container argument indexed by a run-time value: index a list of its items,
                # so that each item (a leaf being differentiated) gets its own cotangent
                if list(items) != list(range(len(items))):
                    raise SymdiffError(f"{self.p.filename}:{self.b.line}: indexing a dict argument needs a "
                                       "constant key")
                return self.call(operator.getitem, [self.items_list(args[0]), args[1]], hint=hint)
        if fn is not len and any(a in self.arguments for a in [*args, *(kwargs or {}).values()]):
            # a container argument used whole (np.stack(ws), np.array(xs)): its items are the
            # values being differentiated, so the call reads a container built of them
            args = [self.rebuilt(a) for a in args]
            kwargs = {k: self.rebuilt(v) for k, v in (kwargs or {}).items()}
        if any(isinstance(a.const, LocalPartial) and not isinstance(a.const.fn, LocalFunction)
               for a in [*args, *(kwargs or {}).values()]):  # a partial passed on: made when the code runs
            args = [self.materialised(a) for a in args]
            kwargs = {k: self.materialised(v) for k, v in (kwargs or {}).items()}
        if any(isinstance(a.const, (LocalFunction, LocalPartial)) for a in [*args, *(kwargs or {}).values()]):
            raise SymdiffError(f"{self.p.filename}:{self.b.line}: a function defined inside the differentiated "
                               "function can only be called directly (not passed to another function)")
        if fn is reversed and len(args) == 1 and not kwargs and args[0].kind == SEQUENCE:
            return self.b.call(runtime.reverse_sequence, args, kind=SEQUENCE, effect=True, hint=hint)
        if fn is operator.getitem and args[0].kind == SEQUENCE:  # lst[i] on a list built here
            position = self.call(runtime.list_index, [args[0], args[1]], hint="position")
            sliced = args[1].is_const and type(args[1].const) is slice or \
                getattr(self.b.producer.get(args[1]), "fn", None) is BUILD_SLICE
            item = self.b.call(operator.getitem, [args[0], position], hint=hint, effect=True,
                               kind=SEQUENCE if sliced else None)
            self.contained.add(item)  # the list still holds it: an in-place update would show there
            return item
        def growing(a: Value) -> bool:  # (a tuple display never grows)
            return a.kind == SEQUENCE and a not in self.structs and match(self.b.producer, a, BUILD_TUPLE) is None

        if fn not in (len, runtime.list_append, runtime.list_index) and not rules.is_result_field(fn) and any(
                growing(a) for a in args):
            # a list that may still grow: pass a snapshot, so the backward sweep sees what was used
            # (xs + ys joins them, and a container holds it: a copy of the same type, still a list)
            snapshot = runtime.copy_sequence if fn in (operator.add, BUILD_TUPLE, BUILD_LIST) \
                or isinstance(fn, BuildDict) else tuple
            args = [self.b.call(snapshot, [a], kind=SEQUENCE, effect=True) if growing(a) else a for a in args]
        kind = shapes.result_kind(fn, [a.kind for a in args]) or shapes.creation_kind(fn, args)
        if fn in (BUILD_LIST, BUILD_TUPLE, runtime.list_append) or rules.sequence_result(fn, args, kwargs) or (
                fn in (list, tuple) and len(args) == 1 and not kwargs) or (  # (of an array too: its rows)
                fn is operator.add and len(args) == 2 and all(a.kind == SEQUENCE for a in args)):  # joined
            kind = SEQUENCE
        # reading a list that grows in place must not be moved past an append
        effect = not passes.is_pure(fn) or any(self.may_grow(a) for a in args)
        if self.b.region is self.b.stack[0] and not kwargs:  # runs whenever the function returns
            shapes.unify(fn, args)
        result = self.b.call(fn, args, kwargs, hint=hint, kind=kind, effect=effect)
        if args and _may_view(fn, args, result):
            viewed = args[primitives.lookup(fn).viewed]
            self.views[result] = self.views.get(viewed, viewed)
        nature = _nature(fn, args, kwargs or {}, self.nature) if result.kind is None else None
        if nature is not None:
            self.nature[result] = nature
        return result

    def slice_container(self, container: Value, index: slice) -> Value:
        """``items[1:]`` of a container known item by item (an argument, a display): a new
        container of the selected items, itself known item by item."""
        items = self.structs[container]
        kind = self.container_type(container)
        if kind is dict or list(items) != list(range(len(items))):
            raise self.error_here("a dict cannot be sliced; index it with a constant key")
        selected = [items[k] for k in range(len(items))[index]]
        value = self.call(BUILD_TUPLE if kind is tuple else BUILD_LIST, selected)
        self.structs[value] = dict(enumerate(selected))
        self.struct_types[value] = kind
        return value

    def rebuilt(self, v: Value) -> Value:
        """A container argument (or one of its containers) as a display of its items, built
        once at function level; any other value as it is."""
        if v not in self.arguments:
            return v
        if v not in self.rebuilds:
            kind = self.struct_types[v]
            items = self.structs[v]
            here, line = self.b.stack, self.b.line
            self.b.stack = [self.b.stack[0]]  # at function level, so every region can read it
            try:
                values = [self.rebuilt(item) for item in items.values()]
                build = BuildDict(tuple(items)) if kind is dict else BUILD_TUPLE if kind is tuple else BUILD_LIST
                value = self.b.call(build, values, kind=None if kind is dict else SEQUENCE, hint=v.hint)
            finally:
                self.b.stack, self.b.line = here, line
            self.structs[value] = dict(zip(items, values))
            self.rebuilds[v] = value
        return self.rebuilds[v]

    def known_dict(self, v: Value) -> bool:
        """Whether ``v`` is a dict known key by key (an argument's, or a display's)."""
        return v in self.structs and self.container_type(v) is dict

    def iterated(self, iterable: Value) -> Value:
        """What a ``for`` loop over ``iterable`` walks: a dict known key by key gives its keys."""
        if not self.known_dict(iterable):
            return iterable
        keys = list(self.structs[iterable])
        return self.built(BUILD_TUPLE, list(range(len(keys))), [self.b.const(k) for k in keys])

    def dict_method(self, d: Value, name: str, args: list[Value], kwargs: dict[str, Value]) -> Value | None:
        """``d.keys()``, ``d.values()``, ``d.items()``, ``d.get(key[, default])`` of a dict known
        key by key, as tuples of what it holds; None for other methods (and other calls)."""
        items = self.structs[d]
        if name in ("keys", "values", "items") and not args and not kwargs:
            if name == "keys":
                parts = [self.b.const(k) for k in items]
            elif name == "values":
                parts = list(items.values())
            else:
                parts = [self.built(BUILD_TUPLE, [0, 1], [self.b.const(k), v]) for k, v in items.items()]
            return self.built(BUILD_TUPLE, list(range(len(parts))), parts)
        if name == "get" and 1 <= len(args) <= 2 and not kwargs:
            if not args[0].is_const:
                raise self.error_here("d.get(key) of a dict needs a constant key here")
            key = args[0].const
            return items[key] if key in items else args[1] if len(args) == 2 else self.b.const(None)
        return None

    def container_type(self, container: Value) -> type:
        """``list``, ``tuple`` or ``dict``: the type of a container known item by item."""
        if container in self.struct_types:
            return self.struct_types[container]
        producer = self.b.producer.get(container)
        fn = producer.fn if producer is not None else None
        return dict if isinstance(fn, BuildDict) else tuple if fn is BUILD_TUPLE else list

    def error_here(self, message: str) -> SymdiffError:
        """A SymdiffError located at the line being lowered."""
        filename = self.b.file or self.p.filename
        line = self.b.line
        source = linecache.getline(filename, line) if line else None
        return SymdiffError(located(message, filename, line, None, source or None))

    def may_grow(self, v: Value) -> bool:
        """Whether ``v`` may be a list that appends change (tuples built here do not)."""
        producer = self.b.producer.get(v)
        return v.kind == SEQUENCE and not (producer is not None and producer.fn in (BUILD_TUPLE, tuple))

    def items_list(self, container: Value) -> Value:
        """A list value of a container argument's items (built once, where it was unpacked)."""
        if container not in self.item_lists:
            items = list(self.structs[container].values())
            here = self.b.stack
            self.b.stack = [self.b.stack[0]]  # at function level, so every region can read it
            line = self.b.line
            value = self.b.call(BUILD_LIST, items, kind=SEQUENCE)
            self.b.line = line
            self.b.stack = here
            self.structs[value] = dict(enumerate(items))
            self.item_lists[container] = value
        return self.item_lists[container]

    def load(self, name: str, node: ast.AST) -> Value:
        if name in self.env:
            return self.env[name]
        obj = self.p.resolve(name)
        holder = self.p.holder(name)
        if obj is not _MISSING and holder is not None and not isinstance(obj, types.ModuleType):
            self.reads.append((holder, name, obj))  # compiled in: the gradient checks it is unchanged
        if obj is _MISSING:
            if name in desugar.assigned_names(self.p.node):
                raise self.p.error(node, f"local variable '{name}' may be used before it is assigned")
            raise self.p.error(node, f"name '{name}' is not defined", cls=UnresolvedNameError)
        return self.b.const(obj, hint=name)

    def expr_Name(self, node: ast.Name) -> Value:
        return self.load(node.id, node)

    def expr_Constant(self, node: ast.Constant) -> Value:
        return self.b.const(node.value)

    def expr_Attribute(self, node: ast.Attribute) -> Value:
        base = self.expr(node.value)
        if base.is_const and isinstance(base.const, types.ModuleType):
            try:
                return self.b.const(getattr(base.const, node.attr), hint=node.attr)
            except AttributeError:
                raise self.p.error(node, f"module '{base.const.__name__}' has no attribute '{node.attr}'",
                                   cls=UnresolvedNameError) from None
        return self.call(GetAttr(node.attr), [base], hint=node.attr if node.attr != "T" else None)

    def expr_BinOp(self, node: ast.BinOp) -> Value:
        left, right = self.expr(node.left), self.expr(node.right)
        fn = BINOPS[type(node.op)]
        if primitives.lookup(fn).float_operands:  # 1 - x on a float x: 1.0 - x (the same value, one conversion less)
            left, right = (self.as_float(a, other) for a, other in ((left, right), (right, left)))
        return self.call(fn, [left, right])

    def as_float(self, v: Value, other: Value) -> Value:
        """A small int constant as a float where the other operand is surely a Python float."""
        if v.is_const and type(v.const) is int and abs(v.const) < 2 ** 53 and other.kind == SCALAR \
                and passes.surely_float(other, self.b.producer):
            return self.b.const(float(v.const))
        return v

    def expr_UnaryOp(self, node: ast.UnaryOp) -> Value:
        return self.call(UNARYOPS[type(node.op)], [self.expr(node.operand)])

    def expr_Compare(self, node: ast.Compare) -> Value:
        left = self.expr(node.left)
        pairs = list(zip(node.ops, node.comparators))

        def compare(i: int, left: Value) -> Value:
            op, comparator = pairs[i]
            right = self.expr(comparator)
            if isinstance(op, (ast.In, ast.NotIn)) and left.is_const and self.known_dict(right):
                result = self.b.const((left.const in self.structs[right]) == isinstance(op, ast.In))
            elif left.is_const and right.is_const and all(type(v.const) in _PLAIN_CONSTANTS for v in (left, right)):
                result = self.b.const(CMPOPS[type(op)](left.const, right.const))  # k == "b" of a key: known now
            else:
                result = self.call(CMPOPS[type(op)], [left, right])
            if i + 1 == len(pairs):
                return result
            # a < b < c  ==  (a < b) and (b < c), with b evaluated once
            return self.short_circuit(result, lambda: compare(i + 1, right), is_and=True)

        return compare(0, left)

    def expr_BoolOp(self, node: ast.BoolOp) -> Value:
        def chain(i: int) -> Value:
            value = self.expr(node.values[i])
            if i + 1 == len(node.values):
                return value
            return self.short_circuit(value, lambda: chain(i + 1), isinstance(node.op, ast.And))

        return chain(0)

    def short_circuit(self, first: Value, rest: Callable[[], Value], is_and: bool) -> Value:
        """``first and rest()`` / ``first or rest()`` with Python's short-circuit semantics."""
        key = Flag("value", id(first))
        self.flags[key] = first

        def evaluate() -> None:
            self.bind_after(key, rest)

        self.branch(first, evaluate if is_and else None, None if is_and else evaluate)
        return self.flags.pop(key)

    def expr_IfExp(self, node: ast.IfExp) -> Value:
        key = Flag("value", id(node))
        cond = self.expr(node.test)

        def arm(e: ast.expr) -> Callable[[], None]:
            return lambda: self.bind_after(key, lambda: self.expr(e))

        self.branch(cond, arm(node.body), arm(node.orelse))
        return self.flags.pop(key)

    def call_arguments(self, node: ast.Call) -> tuple[list[Value], dict[str, Value]]:
        """The positional and keyword arguments of a call, star-arguments (``*t``, ``**d``) spread
        into their items: those of a tuple, list or dict known item by item here."""
        args: list[Value] = []
        for a in node.args:
            args.extend(self.spread(a.value, "*") if isinstance(a, ast.Starred) else [self.expr(a)])
        kwargs: dict[str, Value] = {}
        for k in node.keywords:
            pairs = self.spread(k.value, "**") if k.arg is None else [(k.arg, self.expr(k.value))]
            for name, value in pairs:
                if name in kwargs:
                    raise self.p.error(k, f"the keyword argument '{name}' is given twice", cls=SymdiffError)
                kwargs[name] = value
        return args, kwargs

    def spread(self, node: ast.expr, star: str) -> list:
        """The items of ``*node`` (a list of values) or ``**node`` (a list of ``(key, value)``):
        ``node`` must be known item by item at compile time."""
        value = self.expr(node)
        items, is_dict = self.known_items(value)
        if items is None or is_dict != (star == "**"):
            what = "a dict whose keys" if star == "**" else "a tuple or list whose length"
            shape_of = self.shape_of(value)
            unknown = (value in self.b.stack[0].params and value.kind is None) \
                or (shape_of is not None and shape_of.kind is None)  # (an argument, or an array, of any kind)
            raise self.p.error(node, f"`{star}{ast.unparse(node)}` in a call is not supported here: it needs {what} "
                               "symdiff knows at compile time (a display, or a value built from one); pass the "
                               + ("keywords one by one (f(a=d['a']))" if star == "**" else
                                  "items one by one (f(t[0], t[1])) or spread a display (f(*(a, b)))"),
                               cls=NeedsArgumentsError if unknown else UnsupportedSyntaxError)
        if star == "**":
            if not all(isinstance(k, str) for k in items):
                raise self.p.error(node, f"`**{ast.unparse(node)}` needs string keys", cls=SymdiffError)
            return list(items.items())
        return [items[k] for k in sorted(items)]

    def known_items(self, value: Value) -> tuple[dict | None, bool]:
        """``(items, is_dict)``: the items of ``value`` by key (index for a tuple or list) when
        known at compile time -- a constant container, a display, an argument -- else None."""
        if value.is_const and isinstance(value.const, (tuple, list, dict)):
            const = value.const
            items = dict(const) if isinstance(const, dict) else dict(enumerate(const))
            return {k: self.b.const(v) for k, v in items.items()}, isinstance(const, dict)
        items = self.structs.get(value)
        if items is None and self.shape_of(value) is not None and type(self.shape_of(value).kind) is int:
            rank = self.shape_of(value).kind  # x.shape of an array of known rank: its sizes, one by one
            return {k: self.call(operator.getitem, [value, self.b.const(k)]) for k in range(rank)}, False
        return items, items is not None and self.container_type(value) is dict

    def sorted_by_keys(self, value: Value) -> Value | None:
        """``sorted(d)`` and ``sorted(d.items())`` of a dict known key by key (or of another
        container of constants, or of ``(constant, value)`` pairs with distinct constants): the
        list sorted now, since only the constants are compared; else None."""
        items, is_dict = self.known_items(value)
        if items is None:
            return None
        if is_dict:
            items = {i: self.b.const(k) for i, k in enumerate(items)}
        parts = list(items.values())
        if all(p.is_const and type(p.const) in _PLAIN_CONSTANTS for p in parts):
            ordered = sorted(parts, key=lambda p: p.const)
        else:
            pairs = [self.structs.get(p) for p in parts]
            if not all(pair is not None and len(pair) == 2 and pair[0].is_const for pair in pairs):
                return None
            firsts = [pair[0].const for pair in pairs]
            if len(set(firsts)) != len(firsts) or not all(type(f) in _PLAIN_CONSTANTS for f in firsts):
                return None
            ordered = [p for _, p in sorted(zip(firsts, parts), key=lambda fp: fp[0])]
        return self.built(BUILD_LIST, list(range(len(ordered))), ordered)

    def constant_range(self, value: Value) -> dict | None:
        """The ints of ``value`` by position, if it is ``range(...)`` of constant ints; else None."""
        op = self.b.producer.get(value)
        if op is None or op.fn is not range or not all(a.is_const and type(a.const) is int for a in op.args):
            return None
        return {i: self.b.const(n) for i, n in enumerate(range(*(a.const for a in op.args)))}

    def shape_of(self, value: Value) -> Value | None:
        """The array ``value`` is the ``.shape`` of, if it is one."""
        op = match(self.b.producer, value, GetAttr("shape"), 1)
        return op.args[0] if op is not None else None

    def dict_call(self, node: ast.Call) -> Value:
        """``dict(a=x)``, ``dict(d, a=x)`` of a dict known item by item, ``dict(pairs)`` of
        known ``(key, value)`` pairs and ``dict(zip(keys, values))``: a dict display, its keys
        constants (as in a display)."""
        positional, extra = node.args, [k for k in node.keywords]
        items: dict = {}
        if len(positional) > 1 or any(isinstance(a, ast.Starred) for a in positional):
            raise self.p.error(node, "dict() takes at most one positional argument here", cls=SymdiffError)
        if positional:
            items = self.dict_items(positional[0])
        _, kwargs = self.call_arguments(ast.Call(node.func, [], extra))
        items.update(kwargs)
        keys = list(items)
        return self.built(BuildDict(tuple(keys)), keys, list(items.values()))

    def is_builtin_call(self, node: ast.expr, builtin: Any) -> bool:
        """Is ``node`` a call of ``builtin`` by its own name (not rebound by the function)?"""
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in self.env \
            and self.p.resolve(node.func.id) is builtin

    def zip_rows(self, node: ast.Call, build: Any) -> Value:
        """The rows of ``zip(a, b, ...)`` of tuples or lists known item by item, as many as the
        shortest has, as a tuple or list (``build``) of tuples: what ``a, b = zip(*pairs)``
        unpacks and ``list(zip(xs, ys))`` makes, known item by item too. Of other sequences, the
        ``tuple(zip(...))`` or ``list(zip(...))`` of the calls as written. (``for a, b in
        zip(...)`` never gets here: it becomes a loop over an index.)"""
        args, kwargs = self.call_arguments(node)
        known = [self.known_items(a) for a in args]
        if kwargs or any(items is None or is_dict for items, is_dict in known):
            return self.call(tuple if build is BUILD_TUPLE else list, [self.call(zip, args, kwargs)])
        columns = [[items[k] for k in sorted(items)] for items, _ in known]
        rows = [self.built(BUILD_TUPLE, list(range(len(row))), list(row)) for row in zip(*columns)]
        return self.built(build, list(range(len(rows))), rows)

    def dict_items(self, arg: ast.expr) -> dict:
        """The items of the dict ``dict(arg)`` makes, by constant key."""
        advice = ("this dict(...) is not supported: it needs its items known at compile time (a dict, a display "
                  "of (key, value) pairs, zip of a display of constant keys and a display of values): write a "
                  "display {'a': x, ...} or dict(a=x, ...)")
        is_zip = isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id not in self.env \
            and self.p.resolve(arg.func.id) is zip and len(arg.args) == 2 and not arg.keywords \
            and not any(isinstance(a, ast.Starred) for a in arg.args)
        if is_zip:
            (keys, keys_dict), (values, values_dict) = (self.known_items(self.expr(a)) for a in arg.args)
            if keys is None or values is None or keys_dict or values_dict:
                raise self.p.error(arg, advice)
            pairs = list(zip([keys[k] for k in sorted(keys)], [values[k] for k in sorted(values)]))
        else:
            value = self.expr(arg)
            items, is_dict = self.known_items(value)
            if items is not None and is_dict:
                return dict(items)
            if items is None:  # (of an argument of any kind: the first call's arguments may tell)
                raise self.p.error(arg, advice, cls=NeedsArgumentsError if value.kind is None and not value.is_const
                                   else UnsupportedSyntaxError)
            pairs = []
            for k in sorted(items):
                pair, pair_dict = self.known_items(items[k])
                if pair is None or pair_dict or len(pair) != 2:
                    raise self.p.error(arg, advice)
                pairs.append((pair[0], pair[1]))
        out = {}
        for key, value in pairs:
            if not key.is_const or not _hashable(key.const):
                raise self.p.error(arg, advice)
            out[key.const] = value
        return out

    def expr_Call(self, node: ast.Call) -> Value:
        if self.is_builtin_call(node, dict):
            return self.dict_call(node)
        if self.is_builtin_call(node, sorted) and len(node.args) == 1 and not node.keywords:
            known = self.sorted_by_keys(self.expr(node.args[0]))
            if known is not None:
                return known
        for collect, build in ((list, BUILD_LIST), (tuple, BUILD_TUPLE)):
            if self.is_builtin_call(node, collect) and len(node.args) == 1 and not node.keywords \
                    and self.is_builtin_call(node.args[0], zip):  # list(zip(xs, ys)): its rows
                return self.zip_rows(node.args[0], build)
        args, kwargs = self.call_arguments(node)
        for name, default in (("out", None), ("where", True)):  # spelt-out defaults change nothing
            if name in kwargs and kwargs[name].is_const and kwargs[name].const is default:
                del kwargs[name]
        func = node.func
        frozen = self.frozen_method(node)
        if frozen is not None:  # norm(loc, scale).logpdf(x): norm.logpdf(x, loc, scale)
            return frozen
        if isinstance(func, ast.Attribute):
            base = self.expr(func.value)
            known = self.dict_method(base, func.attr, args, kwargs) if self.known_dict(base) else None
            if known is not None:
                return known
            if base.is_const and type(base.const) is dict and func.attr in ("keys", "values", "items") \
                    and not args and not kwargs:  # of a global dict: what it holds now, as constants are
                return self.b.const(tuple(getattr(base.const, func.attr)()))
            method = getattr(base.const, func.attr, None) if base.is_const else None
            bound = isinstance(method, types.MethodType) and method.__self__ is base.const
            if bound and primitives.registered(method) is not None:  # norm.logpdf(x), model.energy(x) with a rule
                return self.call(method, args, kwargs)
            if bound and _is_user_function(method.__func__) \
                    and rules.lookup(method.__func__) is None:  # self.helper(x) on a known object
                return self.inline(method.__func__, [base] + args, kwargs, node)
            held = self.held_function(base, func.attr)
            if held is not _MISSING:  # xp.sum(x) on a namespace object: the function it holds
                callee = self.b.const(held, hint=func.attr)
            elif not (base.is_const and isinstance(base.const, types.ModuleType)):
                self.refuse_mutating_method(node, base, method)
                return self.call(Method(func.attr), [base] + args, kwargs)
            else:
                callee = self.expr_Attribute(func)
        else:
            callee = self.expr(func)
        if not callee.is_const:
            if self.body is not None and callee in self.body.params:  # known once called with one
                raise self.p.error(node, f"calling the argument '{callee.hint}' needs a Python function "
                                   "(a def or lambda) there", cls=UnresolvedNameError)
            raise self.p.error(node, "calling a function held in a variable is not supported yet")
        return self.call_known(callee.const, args, kwargs, node)

    def call_known(self, fn: Any, args: list[Value], kwargs: dict[str, Value], node: ast.Call) -> Value:
        """Lower a call of ``fn``, a callee known at compile time."""
        func = node.func
        if isinstance(fn, LocalFunction):
            return self.inline_local(fn, args, kwargs, node)
        if fn is slice and not kwargs and 1 <= len(args) <= 3:  # slice(a, b): the slice a:b (its rank facts)
            none = self.b.const(None)
            parts = [none, args[0], none] if len(args) == 1 else [*args, none][:3]
            return self.call(BUILD_SLICE, parts)
        if isinstance(fn, LocalPartial):  # partial(f, a)(x): f(a, x)
            return self.call_known(fn.fn, [*fn.args, *args], {**fn.keywords, **kwargs}, node)
        if fn is functools.partial and args and args[0].is_const and \
                (isinstance(args[0].const, LocalFunction) or callable(args[0].const)):
            return self.b.const(LocalPartial(args[0].const, tuple(args[1:]), dict(kwargs)))
        if _transformation(fn) and all(a.is_const and not isinstance(a.const, (LocalFunction, LocalPartial))
                                       for a in [*args, *kwargs.values()]):
            # grad(f)(x) inside a differentiated function: the gradient object made now, a primitive
            made = fn(*(a.const for a in args), **{k: v.const for k, v in kwargs.items()})
            return self.b.const(made, hint=getattr(made, "__name__", None))
        if not callable(fn):
            raise self.p.error(node, f"'{type(fn).__name__}' object is not callable", cls=SymdiffError)
        message = None if _is_user_function(fn) else mutation.function_message(fn, node, ast.unparse(func))
        if message is not None:
            raise self.p.error(node, message, cls=MutationError)
        if rules.lookup(fn) is None:
            self.refuse_gradient_call(node, fn)
            bound = self.bound_call(node, fn, args, kwargs)
            if bound is not None:  # a partial or a bound method of a Python function: inline that
                return self.inline(*bound, node)
        if _is_user_function(fn) and rules.lookup(fn) is None and rules.differentiable(fn):
            return self.inline(fn, args, kwargs, node)  # (a registered rule takes precedence)
        return self.call(fn, args, kwargs)

    def frozen_method(self, node: ast.Call) -> Value | None:
        """``dist(*params, **kw).method(x)`` of a scipy.stats distribution ``dist`` whose
        ``method`` has a record, as SciPy computes it: ``dist.method(x, *params, **kw)`` (a
        frozen distribution passes its parameters on); else None. (Only in one expression: a
        frozen distribution held in a variable would leave a call of ``dist`` to differentiate.)"""
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)):
            return None
        freeze = func.value
        dist = self.static_object(freeze.func)
        if dist is _MISSING or isinstance(dist, (type, types.ModuleType)) or \
                not type(dist).__module__.startswith("scipy.stats"):
            return None
        method = getattr(dist, func.attr, None)
        if not isinstance(method, types.MethodType) or method.__self__ is not dist or \
                primitives.registered(method) is None:
            return None
        if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred) or \
                any(k.arg is None for k in freeze.keywords) or any(isinstance(a, ast.Starred) for a in freeze.args):
            return None  # (a frozen distribution's method takes x alone)
        self.expr(freeze.func)  # (the names it reads are compiled in)
        params = [self.expr(a) for a in freeze.args]
        kw = {k.arg: self.expr(k.value) for k in freeze.keywords}
        return self.call(method, [self.expr(node.args[0])] + params, kw)

    def static_object(self, node: ast.expr) -> Any:
        """The object a global name or a module's attribute (``scipy.stats.norm``) names, found
        without emitting anything; ``_MISSING`` for anything else."""
        if isinstance(node, ast.Name):
            return _MISSING if node.id in self.env else self.p.resolve(node.id)
        if isinstance(node, ast.Attribute):
            base = self.static_object(node.value)
            if isinstance(base, types.ModuleType):
                return getattr(base, node.attr, _MISSING)
        return _MISSING

    def bound_call(self, node: ast.Call, fn: Any, args: list[Value], kwargs: dict[str, Value]) -> tuple | None:
        """``(function, args, kwargs)`` calling a Python function for a call of ``fn``, when
        ``fn`` is a ``functools.partial`` or a bound method of one; else None."""
        if isinstance(fn, functools.partial):
            inner, fixed, keywords = fn.func, list(fn.args), dict(fn.keywords)
        elif isinstance(fn, types.MethodType):
            inner, fixed, keywords = fn.__func__, [fn.__self__], {}
        else:
            return None
        if getattr(inner, "_symdiff", None) is not None:
            name = getattr(inner, "__name__", "g")
            raise self.p.error(node, f"a functools.partial of {name}, a function symdiff made, is not supported: "
                               f"call {name} itself, e.g. (lambda x: {name}(x, ...))", cls=SymdiffError)
        if not _is_user_function(inner) or rules.lookup(inner) is not None or not rules.differentiable(inner):
            return None
        consts = {k: self.b.const(v) for k, v in keywords.items()}
        return inner, [self.b.const(a) for a in fixed] + args, {**consts, **kwargs}

    def held_function(self, base: Value, attr: str) -> Any:
        """The function ``base.attr`` names when ``base`` is a known object (not a module) that
        holds it as a plain attribute -- ``xp.sum`` for ``xp = SimpleNamespace(sum=np.sum)``, a
        class's staticmethod -- rather than as a method bound to ``base``; else ``_MISSING``."""
        if not base.is_const or isinstance(base.const, (types.ModuleType, np.ndarray, np.generic, list, dict, tuple)):
            return _MISSING
        try:
            held = getattr(base.const, attr)
        except AttributeError:
            return _MISSING
        if not callable(held) or isinstance(held, type) or getattr(held, "__self__", None) is base.const:
            return _MISSING
        fields = getattr(base.const, "__dict__", None)
        if type(fields) is dict and fields.get(attr) is held:  # compiled in: recompile when rebound
            self.reads.append((fields, attr, held))
        return held

    def refuse_gradient_call(self, node: ast.Call, fn: Any) -> None:
        """Calling a function symdiff made (a gradient, a Hessian-vector product) inside a
        differentiated function: it becomes a primitive whose derivatives are more generated
        code (:meth:`symdiff.api._Compiler.register_primitive`); inlining the function it
        differentiates would be wrong. Those whose output cannot be differentiated are refused."""
        compiler = getattr(fn, "_symdiff", None)
        if compiler is not None:
            try:
                compiler.register_primitive(fn)
            except SymdiffError as exc:
                raise self.p.error(node, str(exc), cls=SymdiffError) from None

    def refuse_mutating_method(self, node: ast.Call, base: Value, bound: Any) -> None:
        """Refuse a method call that changes an array, list or dict in place (see mutation.py),
        or that writes through ``out=``/``where=``."""
        message = mutation.method_message(node, self.receiver_type(base))
        if message is None:  # rng.shuffle(a), np.add.at(a, i, v), x.sum(out=y)
            message = mutation.keyword_message(None, node) if bound is None else \
                mutation.function_message(bound, node, ast.unparse(node.func))
        if message is not None:
            raise self.p.error(node, message, cls=MutationError)

    def receiver_type(self, base: Value) -> str | None:
        """What a method's receiver is known to be: "array", "list", "dict", "other" or None."""
        if base.is_const:
            kinds = ((np.ndarray, "array"), (list, "list"), (dict, "dict"))
            return next((name for cls, name in kinds if isinstance(base.const, cls)), "other")
        if base.kind in (SCALAR, RANGE):
            return "other"
        if type(base.kind) is int:
            return "array"
        if base in self.structs:
            return {list: "list", dict: "dict"}.get(self.container_type(base), "other")
        return "list" if base.kind == SEQUENCE else None

    def inline(self, fn: Callable, args: list[Value], kwargs: dict[str, Value], node: ast.Call) -> Value:
        """Lower a call of a Python function by lowering its body in place (its own names,
        its own returns). Recursive calls, and functions whose source cannot be read, stay
        calls: differentiating through them needs a rule (the error says why)."""
        reason = None
        if fn in self.inlining:
            reason = f"recursive: {fn.__qualname__} calls itself (its own generated VJP is used)"
        else:
            try:
                parsed = parse_function(fn)
            except SymdiffError as exc:  # fine as long as no derivative has to flow through it
                reason = str(exc)
        if reason is not None:
            value = self.call(fn, args, kwargs)
            self.b.producer[value].note = reason
            return value
        parsed, namer = desugared(parsed)
        env = self.bind_arguments(parsed, args, kwargs, node)
        line, file = self.b.line, self.b.file
        self.b.file = parsed.filename
        try:
            result = Lowerer.for_inlining(parsed, self, env, namer).lower_body()
            if result.hint is None and not result.is_const:
                result.hint = "_" + parsed.name  # a weak name: `sigmoid` for sigmoid(...)'s value
            return result
        finally:
            self.b.line, self.b.file = line, file

    def expr_Lambda(self, node: ast.Lambda) -> Value:
        return self.local_function(node)

    def stmt_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.decorator_list:
            raise self.p.error(node, "decorators on a nested function are not supported")
        self.env[node.name] = self.local_function(node)
        self.env[node.name].hint = node.name

    def local_function(self, node: ast.Lambda | ast.FunctionDef) -> Value:
        """A lambda or def inside the function: a compile-time value, inlined where called."""
        args = node.args
        if getattr(args, "posonlyargs", []):
            raise self.p.error(node, "positional-only parameters are not supported: drop the `/`")
        defaults = tuple(self.expr(d) for d in args.defaults)  # evaluated once, as in Python
        kwdefaults = {a.arg: self.expr(d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
        return self.b.const(LocalFunction(node, defaults, self, kwdefaults))

    def inline_local(self, local: LocalFunction, args: list[Value], kwargs: dict[str, Value],
                     node: ast.Call) -> Value:
        """Call a lambda/def defined in the function: its body is lowered here, reading the
        enclosing variables as they are now (Python closures read them at call time too)."""
        if local.node in self.local_calls:
            raise self.p.error(node, "recursive calls of a nested function are not supported")
        name = getattr(local.node, "name", "lambda")
        owner = local.owner  # it reads the variables of the function defining it (also when passed on)
        parsed = Parsed(owner.p.fn, local.node, owner.p.filename, name)
        env = dict(owner.env)
        bound = self.bind_arguments(parsed, args, kwargs, node, local.defaults, local.kwdefaults)
        env.update(bound)
        sub = Lowerer.for_inlining(parsed, self, env, owner.namer)
        sub.local_calls = self.local_calls | {local.node}
        line = self.b.line
        try:
            result = sub.lower_body()
        finally:
            self.b.line = line
        return result

    def bind_arguments(self, parsed: Parsed, args: list[Value], kwargs: dict[str, Value],
                       node: ast.Call, defaults: tuple[Value, ...] | None = None,
                       kwdefaults: dict[str, Value] | None = None) -> dict[str, Value]:
        """Parameter name -> argument value for a call, with the callee's defaults (those of
        keyword-only parameters too): the extra positional arguments make the tuple of a
        ``*args`` parameter, the extra keywords the dict of a ``**kwargs`` one (both known item
        by item)."""
        signature = parsed.node.args
        params = parsed.all_params
        kwonly = [a.arg for a in signature.kwonlyargs]
        if len(args) > len(params) and signature.vararg is None:
            raise self.p.error(node, f"{parsed.name}() takes {len(params)} positional arguments "
                               f"but {len(args)} were given", cls=SymdiffError)
        env = dict(zip(params, args))
        extra: dict[str, Value] = {}
        for name, value in kwargs.items():
            if name in env or name not in params and name not in kwonly and signature.kwarg is None:
                raise self.p.error(node, f"{parsed.name}() got an unexpected or repeated argument '{name}'",
                                   cls=SymdiffError)
            (env if name in params or name in kwonly else extra)[name] = value
        if defaults is None:  # the callee's own function's defaults (not a bound method's)
            defaults = tuple(self.b.const(d) for d in parsed.fn.__defaults__ or ())
        if kwdefaults is None:
            kwdefaults = {k: self.b.const(v) for k, v in (parsed.fn.__kwdefaults__ or {}).items()}
        for name, default in [*zip(params[len(params) - len(defaults):], defaults), *kwdefaults.items()]:
            if name not in env:
                env[name] = default
        missing = [n for n in params + kwonly if n not in env]
        if missing:
            raise self.p.error(node, f"{parsed.name}() is missing argument '{missing[0]}'", cls=SymdiffError)
        if signature.vararg is not None:
            rest = args[len(params):]
            env[signature.vararg.arg] = self.built(BUILD_TUPLE, list(range(len(rest))), rest)
        if signature.kwarg is not None:
            env[signature.kwarg.arg] = self.built(BuildDict(tuple(extra)), list(extra), list(extra.values()))
        return env

    def expr_Subscript(self, node: ast.Subscript) -> Value:
        base = self.expr(node.value)
        index = self.index(node.slice)
        item = self.call(operator.getitem, [base, index])
        rank = _basic_rank(base, index, self.b.producer) if item.kind is None and not item.is_const else None
        if rank:  # x[:, :d], x[i, a:b]: a view of known rank (its sizes are not known)
            item.aval = item.aval._replace(kind=rank)
        return item

    def index(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Slice):
            parts = [self.expr(p) if p is not None else self.b.const(None) for p in (node.lower, node.upper, node.step)]
            return self.call(BUILD_SLICE, parts)
        if isinstance(node, ast.Tuple):
            return self.call(BUILD_TUPLE, [self.index(e) for e in node.elts])
        if type(node).__name__ == "Index":  # Python 3.8 compatibility node
            return self.index(node.value)  # pragma: no cover
        return self.expr(node)

    def expr_Tuple(self, node: ast.Tuple) -> Value:
        return self.display(BUILD_TUPLE, list(range(len(node.elts))), node.elts)

    def expr_List(self, node: ast.List) -> Value:
        return self.display(BUILD_LIST, list(range(len(node.elts))), node.elts)

    def expr_Dict(self, node: ast.Dict) -> Value:
        if not all(isinstance(k, ast.Constant) for k in node.keys):
            raise self.p.error(node, "dict display with keys that are not constants is not supported")
        keys = [k.value for k in node.keys]
        return self.display(BuildDict(tuple(keys)), keys, node.values)

    def expr_DictComp(self, node: ast.DictComp) -> Value:
        """``{k: v for t in seq if c}`` over a container known item by item (a dict argument, its
        ``.items()``, a tuple argument, a display): one key and value per item, as a dict display
        -- the keys and conditions must be known at compile time."""
        gen = node.generators[0]
        if len(node.generators) != 1 or gen.is_async:
            raise self.p.error(node, "a dict comprehension with more than one `for` is not supported: build "
                               "the dict with a display {'a': x, ...} or dict(a=x, ...)")
        iterable = self.expr(gen.iter)
        items, is_dict = self.known_items(iterable)
        if is_dict:  # (iterating a dict walks its keys)
            items = {i: self.b.const(k) for i, k in enumerate(items)}
        elif items is None:
            items = self.constant_range(iterable)
        if items is None:
            unknown = iterable.kind is None and not iterable.is_const  # (an argument of any kind, say)
            raise self.p.error(node, "a dict comprehension needs a container symdiff knows item by item (a dict "
                               "or tuple argument, d.items() of one, a display, range() of constants); build the "
                               "dict with a display {'a': x, ...} or dict(a=x, ...)",
                               cls=NeedsArgumentsError if unknown else UnsupportedSyntaxError)
        local = desugar.assigned_names(gen.target)
        shadowed = {n: self.env[n] for n in local if n in self.env}
        built: dict[Any, Value] = {}
        for item in list(items.values()):
            self.assign(gen.target, item)
            conditions = [self.expr(c) for c in gen.ifs]
            if not all(c.is_const for c in conditions):
                raise self.p.error(node, "the conditions of a dict comprehension must be known at compile time "
                                   "(tests of its keys): build the dict with a display instead")
            if not all(c.const for c in conditions):
                continue
            key = self.expr(node.key)
            if not key.is_const:
                raise self.p.error(node.key, "the keys of a dict comprehension must be known at compile time "
                                   "(constants, or the keys of a dict argument)")
            built[key.const] = self.expr(node.value)  # (a repeated key keeps its place, the last value wins)
        for name in local:
            self.env.pop(name, None)
        self.env.update(shadowed)
        keys = list(built)
        return self.built(BuildDict(tuple(keys)), keys, list(built.values()))

    def expr_ListComp(self, node: ast.ListComp | ast.GeneratorExp) -> Value:
        """``[e for x in seq if c]``: the loop :func:`desugar.comprehension_loop` makes of it,
        lowered here, with ``x`` local to the comprehension, as in Python 3."""
        if any(gen.is_async for gen in node.generators):
            raise self.p.error(node, "asynchronous comprehensions are not supported")
        out = self.namer.fresh("_items")
        local = {n for gen in node.generators for n in desugar.assigned_names(gen.target)}
        shadowed = {n: self.env[n] for n in local if n in self.env}
        for stmt in self.desugared(desugar.comprehension_loop(node, out)):
            self.stmt(stmt)
        for name in local:
            self.env.pop(name, None)
        self.env.update(shadowed)
        return self.env.pop(out)

    expr_GeneratorExp = expr_ListComp

    def display(self, build: Any, keys: list, elts: list[ast.expr]) -> Value:
        """A tuple/list/dict display; its items stay known by key for later indexing."""
        if any(isinstance(e, ast.Starred) for e in elts):  # [*xs, y]: the items of xs, known here, spread
            items = [v for e in elts for v in (self.spread(e.value, "*") if isinstance(e, ast.Starred)
                                               else [self.expr(e)])]
            return self.built(build, list(range(len(items))), items)
        return self.built(build, keys, [self.expr(e) for e in elts])

    def built(self, build: Any, keys: list, items: list[Value]) -> Value:
        """A display of ``items`` (already lowered), known by key for later indexing."""
        value = self.call(build, items)
        self.structs[value] = dict(zip(keys, items))
        return value


# ---------------------------------------------------------------------- helpers on the AST


def desugared(parsed: Parsed) -> tuple[Parsed, desugar.Namer]:
    """``parsed`` with its function desugared (see desugar.py), and the namer that made the
    names the desugarings introduced (for those the lowering makes later)."""
    cached = parsed.__dict__.get("_desugared")
    if cached is None or cached[0] is not parsed.node or any(parsed.resolve(name) is not obj
                                                            for name, obj in cached[3].items()):
        namer = desugar.Namer(parsed.node)
        asked: dict[str, Any] = {}  # the free names the desugarings resolved (a rebound one: desugar again)

        def resolve(name: str) -> Any:
            asked[name] = parsed.resolve(name)
            return asked[name]

        node = desugar.desugar(parsed.node, resolve, namer)
        # (each specialisation lowers the same desugared tree, which lowering only reads; the
        # names the desugarings took are handed out again to none of them)
        cached = parsed.__dict__["_desugared"] = (parsed.node, node, namer, asked)
    _, node, namer, _ = cached
    fresh = copy.copy(namer)
    fresh.taken = set(namer.taken)
    return dataclasses.replace(parsed, node=node), fresh


# Facts of the desugared tree's loops, which the lowering of each specialisation asks again
# (and of each loop around them): the tree is only read once desugared, and a new one is made
# when it is desugared again, so what is found stays true while the node lives.
_FACTS: weakref.WeakKeyDictionary[ast.AST, dict[str, Any]] = weakref.WeakKeyDictionary()


def _remembered(node: ast.AST, what: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, a fact ``what`` of the subtree ``node``, found once per node."""
    facts = _FACTS.get(node)
    if facts is None:
        facts = _FACTS[node] = {}
    if what not in facts:
        facts[what] = compute()
    return facts[what]


# constants whose comparisons the lowering computes (a dict's keys, loop items of a known container)
_PLAIN_CONSTANTS = (str, int, float, bool, type(None))


def _breaks(body: list[ast.stmt]) -> bool:
    """Whether a loop body can ``break`` out of this loop (not of a loop inside it)."""
    return any(isinstance(n, ast.Break) for n in _this_function(body, loops=False))


def _returns(node: ast.AST) -> bool:
    """Whether ``node`` contains a ``return`` of the function being lowered (not of a
    function defined in it)."""
    return any(isinstance(n, ast.Return) for n in _this_function([node]))


def _jumps_out(body: list[ast.stmt]) -> bool:
    """Whether a loop body can ``break`` out of this loop or ``return``."""
    return _breaks(body) or any(_returns(s) for s in body)


def _this_function(nodes: list[ast.AST], loops: bool = True) -> list[ast.AST]:
    """The nodes under ``nodes`` that run as part of the function being lowered: not those
    of functions defined there (nor, without ``loops``, those of loops there)."""
    found, todo = [], list(nodes)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.Lambda)) or not loops and isinstance(node, (ast.For, ast.While)):
            continue
        found.append(node)
        for name in node._fields:  # (ast.iter_child_nodes, inline)
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                todo.append(value)
            elif isinstance(value, list):
                todo.extend([item for item in value if isinstance(item, ast.AST)])
    return found


def _basic_rank(base: Value, index: Value, producer: dict) -> int | None:
    """The rank of ``base[index]`` for an array ``base`` of known rank and a tuple ``index`` of
    slices (of any bounds), ints and ``None``s; None when not known."""
    op = producer.get(index)
    if type(base.kind) is not int or op is None or op.fn is not BUILD_TUPLE:
        return None
    rank = base.kind
    for part in op.args:
        if part.pytype is slice or part.is_const and type(part.const) is slice:
            continue
        if part.is_const and part.const is None:
            rank += 1
        elif part.integer:
            rank -= 1
        else:
            return None
    return rank if len(op.args) - sum(1 for a in op.args if a.is_const and a.const is None) <= base.kind else None


@dataclass(frozen=True, eq=False)
class LocalPartial:
    """``functools.partial(f, *args, **keywords)`` made inside the function being differentiated,
    of a callee ``f`` known when compiling (or a :class:`LocalFunction`): called, it calls ``f``
    with ``args`` (values of the function) first, as a direct call would (a Python function is
    inlined); passed on to another function, it is made when the code runs."""

    fn: Any
    args: tuple
    keywords: dict


def _transformation(fn: Any) -> bool:
    """Whether ``fn`` is one of symdiff's transformations (``symdiff.grad``...): called on
    functions known at compile time, it makes a gradient object then and there."""
    return getattr(fn, "__module__", None) == "symdiff.api" and getattr(fn, "__name__", None) in _TRANSFORMATIONS


_TRANSFORMATIONS = frozenset({"grad", "value_and_grad", "elementwise_grad", "jacrev", "jacobian", "jacfwd",
                              "hessian", "hvp"})


@dataclass(frozen=True, eq=False)
class LocalFunction:
    """A lambda or def inside the function being differentiated (and its default values)."""

    node: ast.Lambda | ast.FunctionDef
    defaults: tuple
    owner: Any  # the Lowerer of the function that defines it: its variables are the closure's
    kwdefaults: dict = dataclasses.field(default_factory=dict)  # keyword-only parameter -> its default


def _is_user_function(fn: Any) -> bool:
    """A Python function (not a library's) whose body symdiff should differentiate through."""
    module = getattr(fn, "__module__", None) or ""
    return isinstance(fn, types.FunctionType) and not module.startswith(("numpy", "scipy", "symdiff")) \
        and module != "warnings"  # (warnings.simplefilter: a call, made where the source makes it)


def _target_hint(target: ast.expr) -> str | None:
    return target.id if isinstance(target, ast.Name) else None


def _hint(name: str | Flag, value: Value) -> str | None:
    """The name a value carried by a loop for ``name`` (a variable or a flag) reads as."""
    return name if type(name) is str else name.hint or value.hint


def _merged_aval(a: Value, c: Value) -> Abstract:
    """What is known of a value that is ``a`` on one path and ``c`` on the other: the facts of
    both (kind, shape, int-ness, Python type, dtype)."""
    return Abstract(a.kind if a.kind == c.kind else None, shapes.merge(a.shape, c.shape),
                    integer=a.integer and c.integer, pytype=a.pytype if a.pytype is c.pytype else None,
                    dtype=a.dtype if a.dtype is c.dtype else None)


def _merged_hint(name: str | Flag, a: Value, c: Value) -> str | None:
    """The name an ``if``'s result for ``name`` reads as, ``a`` and ``c`` being what its arms
    yield: the variable's (the values' for a temporary ``_x``), or the flag's; a returned
    value or an expression's keeps the name its values have, if any."""
    if type(name) is str:
        return name if not name.startswith("_") else (a.hint or c.hint)
    if name.role in ("result", "value"):
        return a.hint or c.hint or name.hint
    return name.hint


FALSE = Value(const=False)


def _nature_of(v: Value, natures: dict) -> str | None:
    """"array", "number" or None for ``v`` (see :func:`_nature`)."""
    if v.kind == SCALAR:
        return "number"
    return "array" if type(v.kind) is int and v.kind > 0 else natures.get(v)


def _nature(fn: Any, args: list[Value], kwargs: dict, natures: dict) -> str | None:
    """"array" when ``fn(*args)`` is surely an ndarray with axes, "ndarray" when surely an
    ndarray, "number" when surely a Python or NumPy scalar, else None (``natures`` holds what
    is known of values of unknown kind)."""
    def nature(v: Value) -> str | None:
        return _nature_of(v, natures)
    if fn is operator.getitem and type(args[0].kind) is int and args[0].kind > 0:
        index = args[1].const if args[1].is_const else None
        parts = index if type(index) is tuple else (index,)
        if args[1].kind == SCALAR and args[0].kind == 1 or \
                all(type(p) is int for p in parts) and len(parts) == args[0].kind:
            return "number"  # one element of an array
        return None
    record = primitives.lookup(fn)
    if record.nature == primitives.AXES:
        return "array"
    if record.nature == primitives.KEEPS:
        first = nature(args[0]) if args else None
        if first in ("array", "ndarray"):
            return first
    if record.ndarray:
        return "ndarray"
    if record.nature == primitives.REDUCES and not kwargs and len(args) == 1 or record.nature == primitives.NUMBER:
        return "number"
    if record.nature != primitives.ELEMENTWISE:
        return None
    found = [nature(a) for a in [*args, *kwargs.values()]]
    if "array" in found:
        return "array"
    # a ufunc of numbers is a NumPy scalar (np.where of numbers is a 0-d array: left unknown)
    return "number" if fn is not np.where and all(n == "number" for n in found) else None


def _may_view(fn: Any, args: list[Value], result: Value) -> bool:
    """Whether ``fn(*args)`` may return an array sharing memory with its argument at the
    record's ``viewed`` position (``args[0]`` but for np.einsum)."""
    record = primitives.lookup(fn)
    if result.kind == SCALAR or len(args) <= record.viewed or args[record.viewed].kind in (SCALAR, SEQUENCE, RANGE):
        return False
    if fn is not operator.getitem:
        return record.alias in (primitives.VIEW, primitives.ITSELF)
    index = args[1]
    if index.is_const:
        parts = index.const if type(index.const) is tuple else (index.const,)
        if not all(p is None or p is Ellipsis or type(p) in (int, slice) for p in parts):
            return False  # a list, an array or a mask: advanced indexing copies
        if type(args[0].kind) is int:  # the rank of the result: is it an array at all?
            return args[0].kind - sum(type(p) is int for p in parts) + sum(p is None for p in parts) > 0
        return True
    if type(index.kind) is int:  # an index array
        return False
    if index.kind == SCALAR and type(args[0].kind) is int:
        return args[0].kind > 1
    return True


def _same_const(a: Value | None, b: Value | None) -> bool:
    """Whether two values are constants of one type and value (different ops may make them)."""
    return a is not None and b is not None and a.is_const and b.is_const and type(a.const) is type(b.const) \
        and _same(a.const, b.const)


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _same(a: Any, b: Any) -> bool:
    """Whether two constants are the same value (by identity for anything but plain scalars)."""
    return a == b if isinstance(a, (bool, int, float, str, type(None))) else a is b




def _mark_ints(values: list[Value], ints: list[bool]) -> None:
    """Say of a loop's carried values (or results) which are Python ints: those starting as one
    that every iteration keeps one."""
    for v, integer in zip(values, ints):
        if integer and v.kind == SCALAR:
            v.integer, v.shape = True, ()


def _float64_start(v: Value) -> Any:
    """The dtype a loop assumes of a carried value that starts as ``v``: a Python float counts
    as float64 (a loop that adds float64 scalars to ``s = 0.0`` carries float64 numbers)."""
    if v.dtype is None and ((v.is_const and type(v.const) is float) or v.pytype is float):
        return shapes.F64
    return v.dtype


def _settle(old: Any, new: Any) -> Any:
    """``old`` if ``new`` says the same about every axis (so that loop lowering converges)."""
    if old is None or new is None:
        return None if new is None else new
    if len(old) == len(new) and all((a == 1) == (b == 1) for a, b in zip(old, new)) and all(
            shapes.equal_dims(a, b) or (isinstance(a, shapes.Dim) and a.source is None)
            for a, b in zip(old, new)):
        return old
    return new


def specialise(value: Value, spec: Any) -> None:
    """Give an argument the kind and shape its specialisation key promises: a Python number
    type, a tuple of bools (an array's size-1 axes), or None (anything)."""
    if spec in (float, int, bool):
        value.aval = Abstract(SCALAR, (), integer=spec is int, pytype=spec)
    elif isinstance(spec, ArraySpec):  # (the dtype facts are of NumPy's arrays: x[0] is a NumPy float64...)
        dtype = spec.dtype if spec.type is None else None
        value.aval = Abstract(len(spec.ones), shapes.param_shape(value, spec.ones), dtype=dtype)
    elif type(spec) is tuple:  # size-1 axes only (dtype unknown)
        value.aval = Abstract(len(spec), shapes.param_shape(value, spec))


def lower(parsed: Parsed, specs: list[Any]) -> Function:
    """Lower a parsed function to IR, specialised for its arguments' specs: Python number
    types, arrays' size-1 axes, container structures (see api._guard_key), or None."""
    return Lowerer(parsed, specs).lower()


def _always_rebound(node: ast.For) -> frozenset:
    """Names every iteration of the loop ``node`` (without ``break`` or ``return``) rebinds: the
    targets of the assignments of its body's own statements, if nothing in it ``continue``s."""
    if any(isinstance(n, ast.Continue) for n in ast.walk(node)):
        return frozenset()
    names = set()
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
                names.update(e.id for e in elts if isinstance(e, ast.Name))
    return frozenset(names)
