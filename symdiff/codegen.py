"""Codegen: IR -> Python ``ast`` -> source text (astor, or ``ast.unparse``) -> code object (compile/exec).

Readability decisions live here:

* temporaries used once are folded back into the expression that uses them (at most
  MAX_INLINE_DEPTH deep: a long chain of them is named every so often);
* a loop's initial, carried and final values share one Python name when that is safe, and so
  do an ``if``'s results and the values its arms compute, so the code reads like a person's;
* functions are spelt the way people write them (``np.tanh``, ``math.exp``, ``x @ W``);
* the backward sweep carries comments pointing back to the source line it differentiates
  (:class:`Comment` statements, which :func:`to_source` writes as ``# ...`` lines).
"""

from __future__ import annotations

import ast
import bisect
import builtins
import keyword
import linecache
import math
import operator
import os
import re
import types
import warnings
from typing import Any

import numpy as np

from . import desugar, operators, passes, primitives, runtime
from .display import GeneratedSource
from .ir import (
    BUILD_LIST,
    BUILD_SLICE,
    BUILD_TUPLE,
    RANGE,
    SCALAR,
    UNDEFINED,
    BuildDict,
    Function,
    GetAttr,
    Method,
    Op,
    OpKind,
    Region,
    Value,
    temp_name,
    walk,
)
from .operators import inverse

BINOPS = inverse(operators.BINOPS)
UNARY = inverse(operators.UNARYOPS)
COMPARE = inverse(operators.CMPOPS)


# An expression folds at most this many temporaries into one another: the code stays readable,
# and printing and compiling it recurse no deeper than that, whatever the length of a chain.
MAX_INLINE_DEPTH = 24

RUNTIME = {id(getattr(runtime, n)): n for n in dir(runtime)
           if not n.startswith("_") and isinstance(getattr(runtime, n), types.FunctionType)
           and getattr(runtime, n).__module__ == runtime.__name__}


def _write_between(writes: list[int], start: int, end: int) -> bool:
    """Whether an op at a position in ``writes`` (sorted) lies strictly between ``start`` and ``end``."""
    i = bisect.bisect_right(writes, start)
    return i < len(writes) and writes[i] < end


class Comment(ast.stmt):
    """A ``# text`` line among the statements of generated code; only :func:`to_source` knows it."""

    _fields = ("text",)


def _load_astor() -> Any:
    """The astor module, or None where it cannot be imported or cannot print.

    astor 0.8 reads ``ast.Num`` and its kin when it is imported, which Python 3.12 and 3.13
    deprecate (a ``DeprecationWarning`` in the user's program, an error under ``-W error``) and
    3.14 removes; those warnings are silenced here, for that import only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import astor
        astor.to_source(ast.parse("x = -1.0 * f(a, *b)"))  # (fails where astor does not know this Python's ast)
    except Exception:
        return None
    return astor


_ASTOR = _load_astor()

# Which printer writes generated code: "astor" (the default, where it works) or "unparse"
# (the standard library's ``ast.unparse``, Python 3.9+), which ``SYMDIFF_PRINTER=unparse`` picks
# and which is used where astor cannot be imported. Both give code that compiles to the same
# thing; the text differs in a few spellings: ``ast.unparse`` puts parentheses around tuples
# (``return (dx, dW)`` for astor's ``return dx, dW``) and negative exponents (``2 ** (-1)``),
# writes infinity as ``1e309`` (astor: ``1e1000``) and writes ``1j`` where astor writes ``1.0j``;
# on Python 3.9 and 3.10 it also puts parentheses around tuple targets (``(s, ds) = ...``,
# ``for (i, x) in ...``).
PRINTER = os.environ.get("SYMDIFF_PRINTER", "astor" if _ASTOR is not None else "unparse")


def _astor_printer() -> type:
    """astor's printer, which also writes :class:`Comment` statements, text as it is, and
    notes the names the code reads (in ``loaded``) as it prints them."""

    class Printer(_ASTOR.SourceGenerator):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.loaded: set[str] = set()
            # per statement carrying an origin: where it starts in ``result``, the line breaks still
            # to be written before it there, and its origin (see Codegen.region)
            self.marks: list[tuple[int, int, tuple]] = []

        def newline(self, node: ast.AST | None = None, extra: int = 0) -> None:
            super().newline(node, extra)
            origin = getattr(node, "symdiff_origin", None)
            if origin is not None:
                self.marks.append((len(self.result), self.new_lines, origin))

        def visit_Comment(self, node: Comment) -> None:
            self.statement(node, "# ", node.text)

        def visit_Name(self, node: ast.Name) -> None:
            if isinstance(node.ctx, ast.Load):
                self.loaded.add(node.id)
            self.write(node.id)  # (what astor's visit_Name does)

    return Printer


_PRINTERS: dict[str, type] = {}


def to_source(node: ast.AST) -> str:
    """Python source of ``node`` (which may hold :class:`Comment` statements), with no line
    breaks inside expressions: the one place generated code is turned into text."""
    return _printed(node)[0]


def _printed(node: ast.AST) -> tuple[str, set[str]]:
    """:func:`to_source` of ``node`` and the names it reads (``np`` in ``np.tanh(x)``)."""
    text, loaded, _ = _printed_with_origins(node)
    return text, loaded


def _printed_with_origins(node: ast.AST) -> tuple[str, set[str], dict[int, tuple]]:
    """:func:`_printed`, and the origin of each printed line (1-based) whose statement has one."""
    if PRINTER == "astor" and _ASTOR is not None:
        return _printed_by_astor(node)
    return _printed_by_unparse(node)


def _printed_by_astor(node: ast.AST) -> tuple[str, set[str], dict[int, tuple]]:
    """:func:`_printed_with_origins` by astor (the names read and the origins found while
    printing: one walk of the tree)."""
    if "astor" not in _PRINTERS:
        _PRINTERS["astor"] = _astor_printer()
    printer = _PRINTERS["astor"](" " * 4, False, _ASTOR.code_gen.pretty_string)
    printer.visit(node)
    printer.result.append("\n")
    if set(printer.result[0]) == set("\n"):
        printer.result[0] = ""  # (so a statement marked at the start has its line breaks dropped)
    origins: dict[int, tuple] = {}
    breaks, done = 0, 0  # line breaks in result[:done]
    for index, pending, origin in printer.marks:
        breaks += sum(part.count("\n") for part in printer.result[done:index])
        done = index
        origins[breaks + (pending if index else 0) + 1] = origin
    return "".join(printer.result), printer.loaded, origins


_COMMENT_MARK = "__symdiff_comment_"


def _printed_by_unparse(node: ast.AST) -> tuple[str, set[str], dict[int, tuple]]:
    """:func:`_printed_with_origins` by ``ast.unparse``: each :class:`Comment`, and each
    statement with an origin, is preceded by a statement of one name marking its place (in a copy
    of the tree); the marks then become the ``# text`` lines, or are dropped, noting the origin
    of the line after them."""
    texts: list[str] = []
    origins: list[tuple] = []

    class Marked(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> Any:
            origin = getattr(node, "symdiff_origin", None)
            new = super().visit(node)
            if origin is None or not isinstance(node, ast.stmt):
                return new
            origins.append(origin)
            return [ast.Expr(ast.Name(f"{_ORIGIN_MARK}{len(origins) - 1}", ast.Load())), new]

        def visit_Comment(self, comment: Comment) -> ast.stmt:
            texts.append(comment.text)
            return ast.Expr(ast.Name(f"{_COMMENT_MARK}{len(texts) - 1}", ast.Load()))

    marked = Marked().visit(desugar.copy_tree(node))
    loaded = {n.id for n in ast.walk(marked) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
              and not n.id.startswith((_COMMENT_MARK, _ORIGIN_MARK))}
    text = ast.unparse(ast.fix_missing_locations(marked))
    mark = re.compile(rf"^(\s*){_COMMENT_MARK}(\d+)$", re.M)
    text = mark.sub(lambda m: f"{m.group(1)}# {texts[int(m.group(2))]}", text)
    lines: list[str] = []
    at: dict[int, tuple] = {}
    pending = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(_ORIGIN_MARK):
            pending = origins[int(stripped[len(_ORIGIN_MARK):])]
            continue
        lines.append(line)
        if pending is not None:
            at[len(lines)], pending = pending, None
    return "\n".join(lines) + "\n", loaded, at


_ORIGIN_MARK = "__symdiff_origin_"


class Codegen:
    def __init__(self, fn: Function):
        self.fn = fn
        self.uses: dict[Value, int] = {}
        self.defs: dict[Value, Op] = {}
        self.inlined: set[Value] = set()
        self.depth: dict[Value, int] = {}  # how deep the expression of each inlined value nests
        self.alias: dict[Value, Value] = {}
        self.aliased: dict[Value, list[Value]] = {}  # the values given to each in alias (while coalescing)
        self.region_of: dict[Op, Region] = {}
        self.floats: dict[Value, bool] = {}  # passes.surely_float's answers
        self.settled = False  # whether the names are settled (no more sharing or unsharing)
        self.suffix: dict[str, int] = {}  # the last numbered name fresh tried for each base
        self.names: dict[Value, str] = {}
        self.taken: set[str] = set(keyword.kwlist) | {"np", "math"} | set(RUNTIME.values())
        self.globals: dict[str, Any] = {"np": np, "math": math}
        self.global_names: dict[int, str] = {}
        self.runtime_used: set[str] = set()
        self._analyse(fn.body)

    # ------------------------------------------------------------------ analysis

    def _analyse(self, body: Region) -> None:
        def count(region: Region) -> None:
            for op in region.ops:
                self.region_of[op] = region
                for r in op.results:
                    self.defs[r] = op
                for a in op.args:
                    self.uses[a] = self.uses.get(a, 0) + 1
                for sub in op.regions:
                    count(sub)
            for y in region.yields:
                self.uses[y] = self.uses.get(y, 0) + 1

        count(body)
        self.updated: set[Value] = set()  # arrays updated in place: they need a name
        for op, _ in walk(body):  # acc[i] += g (and acc += g) returns acc: one name for both
            if (self._written_in_place(op) and op.fn is not runtime.getitem_vjp) or op.fn is operator.iadd:
                self._alias(op.result, op.args[0])
                self.updated.add(op.args[0])
        self._choose_inlining(body)
        self._pending: list[tuple[Value, Value, list[Op]]] = []
        self._coalesce(body)
        self._undo_clashing_shares()
        self.settled = True

    def _choose_inlining(self, region: Region) -> None:
        local_uses: dict[Value, int] = {}
        for op in region.ops:
            for a in op.args if op.kind is not OpKind.FOR else [op.iterable]:
                local_uses[a] = local_uses.get(a, 0) + 1
        for y in region.yields:
            local_uses[y] = local_uses.get(y, 0) + 1
        # where each value is read last, and the ops that write into an array in place: a value is
        # not folded into a read after such a write (it may read what the write changes: a view)
        last_use = {a: k for k, op in enumerate(region.ops) for a in op.args}
        last_use.update((y, len(region.ops)) for y in region.yields)
        writes = [k for k, op in enumerate(region.ops) if self._writes_in_place(op)]
        for k, op in enumerate(region.ops):
            for sub in op.regions:
                self._choose_inlining(sub)
            if op.kind is not OpKind.CALL or op.effect or self._written_in_place(op):
                continue
            v = op.result
            if v in self.updated or any(a in self.updated for a in op.args):
                continue  # (a read of an array updated in place stays where it is: before the update)
            if self._reads_arrays(op) and _write_between(writes, k, last_use.get(v, k)):
                continue
            temporary = v.hint is None or v.hint.startswith("_")
            depth = 1 + max((self.depth.get(a, 0) for a in op.args), default=0)
            if depth > MAX_INLINE_DEPTH:
                continue  # a long chain of one-use temporaries: named every so often, not one deep expression
            if primitives.lookup(op.fn).cheap and all(a.is_const or a.hint or a in self.inlined for a in op.args):
                self.inlined.add(v)
                self.depth[v] = depth
            elif temporary and self.uses.get(v) == 1 and local_uses.get(v) == 1:
                self.inlined.add(v)
                self.depth[v] = depth

    def _reads_arrays(self, op: Op) -> bool:
        """Whether ``op``, with what is folded into it, reads anything but numbers and constants."""
        return any(not (a.is_const or a.kind in (SCALAR, RANGE))
                   or (a in self.inlined and self._reads_arrays(self.defs[a])) for a in op.args)

    def _writes_in_place(self, op: Op) -> bool:
        """Whether ``op`` (or an op in its regions) writes into an array in place."""
        if op.kind is OpKind.CALL:
            return self._written_in_place(op) or op.fn is operator.iadd or (
                op.effect and primitives.lookup(op.fn).updates)
        return any(self._writes_in_place(inner) for sub in op.regions for inner, _ in walk(sub))

    def _coalesce(self, region: Region) -> None:
        """Let loop/if results share names with the values that flow into them."""
        for op in region.ops:
            for sub in op.regions:
                self._coalesce(sub)
            if op.kind is OpKind.IF:
                for i, r in enumerate(op.results):
                    exported = any(sub.yields[i].const is UNDEFINED for sub in op.regions)
                    for sub in op.regions:
                        self._share_yield(sub, sub.yields[i], r, None, always=exported)
            elif op.is_loop:
                body, inits = op.body, op.inits
                carried = {sub: op.carried(sub) for sub in op.regions}
                for i, r in enumerate(op.results):
                    for sub in op.regions:
                        self._alias(carried[sub][i], r)
                    self._share_yield(body, body.yields[i], r, carried[body][i])
                    init = inits[i]
                    if self._owned_by(init, region, op) and init not in self.alias:
                        self._alias(init, r)

    def _owned_by(self, v: Value, region: Region, user: Op) -> bool:
        """``v`` is computed by a non-inlined op of ``region`` and read only by ``user``."""
        op = self.defs.get(v)
        return (op is not None and self.region_of.get(op) is region and op.kind is OpKind.CALL
                and self.uses.get(v) == 1 and v not in self.inlined and not v.is_const
                and self.region_of.get(user) is region)

    def _share_yield(self, region: Region, y: Value, target: Value, param: Value | None,
                     always: bool = False) -> None:
        """Name ``y`` like ``target`` (an if/loop result) so the arm/body assigns it directly.

        Safe only when nothing later in the region reads the old value under that name: for a
        loop, its carried ``param``; for an ``if`` arm, anything (so ``y`` must come last).
        """
        op = self.defs.get(y)
        if op is None or self.region_of.get(op) is not region or y in self.alias or y in self.inlined:
            return
        # values already sharing y's name (a loop's initial value) take it from where they are made
        members = [v for v in self._sharing(y) if self.region_of.get(self.defs.get(v)) is region]
        index = min(region.ops.index(self.defs[v]) for v in [y, *members])
        if always:
            pass  # the target is assigned in this arm only: nothing else goes by its name
        elif param is None:
            later = [o for o in region.ops[index + 1:] if o.kind is not OpKind.CONST and o.results
                     and o.results[0] not in self.inlined]
            others = [v for v in region.yields if v is not y]  # assigned after the arm's ops
            if later or others:  # safe unless they read the old value of the name: known once all names are
                self._pending.append((y, target, later, others))
        elif not self._param_dead_after(region, param, index):
            return
        self._alias(y, target)

    def _undo_clashing_shares(self) -> None:
        """An ``if`` arm value named like the ``if`` result before the arm ends: keep the shared
        name only if nothing after it in the arm reads another value going by that name."""
        for y, target, later, others in self._pending:
            root = self._root(target)
            def clashes(v: Value, y: Value = y, root: Value = root) -> bool:
                return v is not y and self._root(v) is root

            if any(self._reads_where(op, clashes) for op in later) or any(
                    clashes(v) or (v in self.inlined and self._reads_where(self.defs[v], clashes)) for v in others):
                del self.alias[y]

    def _alias(self, v: Value, target: Value) -> None:
        """Give ``v`` the name of ``target``."""
        self.alias[v] = target
        self.aliased.setdefault(target, []).append(v)

    def _sharing(self, root: Value) -> list[Value]:
        """The values :meth:`_alias` gave the name of ``root`` (directly or through others), in
        the order they were given it."""
        found, todo = [], [(v, root) for v in reversed(self.aliased.get(root, []))]
        while todo:
            v, given = todo.pop()
            if self.alias.get(v) is given:  # (not since given another name)
                found.append(v)
                todo.extend((u, v) for u in reversed(self.aliased.get(v, [])))
        return found

    def _root(self, v: Value) -> Value:
        """The value whose name ``v`` goes by; once the names are settled, each value on the way
        is pointed straight at it (a chain of loops sharing one name is as long as the function)."""
        root = v
        while root in self.alias:
            root = self.alias[root]
        if self.settled:
            while v is not root:
                following = self.alias[v]
                self.alias[v] = root
                v = following
        return root

    def _reads_where(self, op: Op, hit: Any) -> bool:
        """Whether ``op`` (with what is inlined into it, and its regions) reads a value ``hit`` accepts."""
        for a in op.args:
            if hit(a) or (a in self.inlined and self._reads_where(self.defs[a], hit)):
                return True
        for sub in op.regions:
            if any(hit(y) for y in sub.yields) or any(self._reads_where(o, hit) for o in sub.ops):
                return True
        return False

    def _param_dead_after(self, region: Region, param: Value, index: int) -> bool:
        """Nothing in ``region`` reads ``param`` after op ``index`` starts (yields read at the
        end): the op itself neither, if it is a loop or an ``if`` -- its regions assign the
        shared name as they go (a loop's carried values), and may read ``param`` afterwards."""
        if any(y is param or (y in self.inlined and self._reads(self.defs[y], param)) for y in region.yields):
            return False  # a yield (or an expression inlined into one) still reads it
        if any(param in sub.yields or any(self._reads(o, param) for o in sub.ops)
               for sub in region.ops[index].regions):
            return False  # (its operands, a loop's initial values, are read before it starts)
        for later in region.ops[index + 1:]:
            if self._reads(later, param):
                return False
        return True

    def _reads(self, op: Op, v: Value) -> bool:
        return self._reads_where(op, lambda a: a is v)

    # ------------------------------------------------------------------ names

    def name(self, v: Value) -> str:
        root = self._root(v)
        if root not in self.names:
            self.names[root] = self.fresh(root.hint or self.temp_hint(root))
        return self.names[root]

    def temp_hint(self, v: Value) -> str:
        """A name for a value the user did not name, after what computes it."""
        if v is self.fn.body.yields[0] or v in self.fn.body.yields:
            return "out"
        op = self.defs.get(v)
        return temp_name(op) if op is not None else "t"

    def fresh(self, hint: str) -> str:
        base = re.sub(r"\W", "_", hint).strip("_") or "t"
        if base[0].isdigit():
            base = "v" + base
        n = self.suffix.get(base, 0)  # (the names below it are taken: names are never given back)
        candidate = base if n == 0 else f"{base}_{n}"
        while candidate in self.taken or hasattr(builtins, candidate):
            n += 1
            candidate = f"{base}_{n}"
        self.taken.add(candidate)
        self.suffix[base] = n
        return candidate

    def global_name(self, obj: Any, hint: str | None) -> str:
        known = primitives.code_name(obj)
        if known is not None:
            return known
        if id(obj) in RUNTIME:
            self.runtime_used.add(RUNTIME[id(obj)])
            return RUNTIME[id(obj)]
        if isinstance(obj, types.ModuleType):
            name = {"numpy": "np"}.get(obj.__name__, obj.__name__.split(".")[-1])
            self.globals.setdefault(name, obj)
            return name
        if id(obj) not in self.global_names:
            name = self.fresh(hint or getattr(obj, "__name__", None) or "const")
            self.global_names[id(obj)] = name
            self.globals[name] = obj
        return self.global_names[id(obj)]

    # ------------------------------------------------------------------ expressions

    def expr(self, v: Value) -> ast.expr:
        if v.is_const:
            return self.literal(v.const, v.hint)
        if v in self.inlined:
            return self.call_expr(self.defs[v])
        return ast.Name(self.name(v), ast.Load())

    def literal(self, value: Any, hint: str | None = None) -> ast.expr:
        if value is None or type(value) in (bool, str):
            return ast.Constant(value)
        if type(value) in (int, float):
            if isinstance(value, float) and not math.isfinite(value):
                return ast.Call(ast.Name("float", ast.Load()), [ast.Constant(repr(value))], [])
            node = ast.Constant(abs(value))
            return ast.UnaryOp(ast.USub(), node) if value < 0 or (value == 0 and math.copysign(1, value) < 0) else node
        if type(value) is tuple:
            return ast.Tuple([self.literal(x) for x in value], ast.Load())
        if type(value) is slice:
            return ast.Call(ast.Name("slice", ast.Load()),
                            [self.literal(value.start), self.literal(value.stop), self.literal(value.step)], [])
        if value is Ellipsis:
            return ast.Constant(...)
        return ast.Name(self.global_name(value, hint), ast.Load())

    def index_expr(self, v: Value) -> ast.expr:
        """An index inside ``x[...]``: slices and tuples in subscript syntax."""
        op = self.defs.get(v) if v in self.inlined else None
        if v.is_const and type(v.const) is slice:
            s = v.const
            return ast.Slice(*(None if p is None else self.literal(p) for p in (s.start, s.stop, s.step)))
        if v.is_const and type(v.const) is tuple:
            return ast.Tuple([self.index_literal(x) for x in v.const], ast.Load())
        if op is not None and op.fn is BUILD_SLICE:
            return ast.Slice(*(None if a.is_const and a.const is None else self.expr(a) for a in op.args))
        if op is not None and op.fn is BUILD_TUPLE:
            return ast.Tuple([self.index_expr(a) for a in op.args], ast.Load())
        return self.expr(v)

    def index_literal(self, x: Any) -> ast.expr:
        if type(x) is slice:
            return ast.Slice(*(None if p is None else self.literal(p) for p in (x.start, x.stop, x.step)))
        return self.literal(x)

    def call_expr(self, op: Op) -> ast.expr:
        fn, args = op.fn, op.positional
        if fn is operator.pow and self._float_square(op):  # x ** 2 on a float: x * x, the same value
            return ast.BinOp(self.expr(args[0]), ast.Mult(), self.expr(args[0]))
        if fn in BINOPS and len(args) == 2:
            return ast.BinOp(self.expr(args[0]), BINOPS[fn](), self.expr(args[1]))
        if fn in UNARY and len(args) == 1:
            return ast.UnaryOp(UNARY[fn](), self.expr(args[0]))
        if fn in COMPARE and len(args) == 2:
            return ast.Compare(self.expr(args[0]), [COMPARE[fn]()], [self.expr(args[1])])
        if fn is passes.both:
            return ast.BoolOp(ast.And(), [self.expr(a) for a in args])
        if fn is operator.getitem:
            return ast.Subscript(self.expr(args[0]), self.index_expr(args[1]), ast.Load())
        if isinstance(fn, GetAttr):
            return ast.Attribute(self.expr(args[0]), fn.name, ast.Load())
        keywords = [ast.keyword(k, self.expr(v)) for k, v in op.keywords.items()]
        if isinstance(fn, Method):
            func = ast.Attribute(self.expr(args[0]), fn.name, ast.Load())
            return ast.Call(func, [self.expr(a) for a in args[1:]], keywords)
        if isinstance(fn, BuildDict):
            return ast.Dict([self.literal(k) for k in fn.keys], [self.expr(a) for a in args])
        if fn is BUILD_TUPLE:
            return ast.Tuple([self.expr(a) for a in args], ast.Load())
        if fn is BUILD_LIST:
            return ast.List([self.expr(a) for a in args], ast.Load())
        if fn is BUILD_SLICE:
            return ast.Call(ast.Name("slice", ast.Load()), [self.expr(a) for a in args], [])
        func = _dotted(self.global_name(fn, None))
        return ast.Call(func, [self.expr(a) for a in args], keywords)

    def _float_square(self, op: Op) -> bool:
        """``x ** 2`` of a Python float held in a name: ``x * x`` is the same number (up to
        overflow, which gives inf instead of OverflowError) at a third of the cost."""
        base, exponent = op.positional if len(op.positional) == 2 else (None, None)
        return (base is not None and exponent.is_const and type(exponent.const) in (int, float)
                and exponent.const == 2 and not op.kwnames and base not in self.inlined
                and base.kind == SCALAR and passes.surely_float(base, self.defs, self.floats))

    # ------------------------------------------------------------------ in-place updates

    def _written_in_place(self, op: Op) -> bool:
        """The backward sweep's scatters into its own zeros, spelt as item assignments when the
        index is basic (each element at most once) and the array surely an ndarray:
        ``getitem_vjp(g, x, i)`` is ``dx = np.zeros(x.shape); dx[i] = g``, and
        ``add_at_index(dx, i, g)`` is ``dx[i] += g``."""
        if op.kind is not OpKind.CALL or len(op.args) != 3 or op.kwnames:
            return False
        if op.fn is runtime.store:  # y[i] = v into the code's own array
            return True
        if op.fn is runtime.getitem_vjp:
            return type(op.args[1].kind) is int and self._basic(op.args[2])
        if op.fn is runtime.add_at_index:  # (an array of known rank is no dict)
            return self._basic(op.args[1]) and (self._zeros_array(op.args[0]) or type(op.args[0].kind) is int)
        return op.fn is runtime.add_at and self._zeros_array(op.args[0])

    def _zeros_array(self, v: Value) -> bool:
        """``v`` is an ndarray of zeros this code made (then scattered into)."""
        op = self.defs.get(v)
        if op is None or op.kind is not OpKind.CALL:
            return False
        if op.fn in (runtime.add_at_index, runtime.add_at):
            return self._zeros_array(op.args[0])
        if op.fn is runtime.getitem_vjp:
            return type(op.args[1].kind) is int
        return op.fn in (np.zeros, np.zeros_like)

    def _basic(self, index: Value) -> bool:
        """An index known to be basic: ints, slices, None, Ellipsis, and tuples of them."""
        if index.is_const:
            return runtime.is_basic_index(index.const)
        if index.integer:
            return True
        op = self.defs.get(index)
        if op is not None and op.fn is BUILD_SLICE:
            return all(a.is_const and a.const is None or a.integer for a in op.args)
        return op is not None and op.fn is BUILD_TUPLE and all(self._basic(a) for a in op.args)

    def in_place(self, op: Op) -> list[ast.stmt]:
        target = ast.Subscript(ast.Name(self.name(op.args[0] if op.fn is not runtime.getitem_vjp else op.result),
                                        ast.Load()), None, ast.Store())
        if op.fn is runtime.getitem_vjp:
            g, x, index = op.args
            target.slice = self.index_expr(index)
            like = [ast.keyword("like", self.expr(self.fn.like))] if self.fn.like is not None else []
            zeros = ast.Call(_dotted("np.zeros"), [ast.Attribute(self.expr(x), "shape", ast.Load())], like)
            fresh = ast.Assign([ast.Name(self.name(op.result), ast.Store())], zeros)
            return [fresh, ast.Assign([target], self.expr(g))]
        acc, index, g = op.args
        target.slice = self.index_expr(index)
        if op.fn is runtime.store:
            return [ast.Assign([target], self.expr(g))]
        return [ast.AugAssign(target, ast.Add(), self.expr(g))]

    # ------------------------------------------------------------------ statements

    def region(self, region: Region, copies: list[tuple[Value, Value]] = ()) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        line = None
        for op in region.ops:
            statements = self.statement(op)
            if op.line is not None:  # (for tracebacks: the user's line each statement runs or differentiates)
                origin = (op.file or self.fn.filename, op.line, op.adjoint)
                for statement in statements:
                    statement.symdiff_origin = origin
            if statements and op.adjoint and op.line is not None and (op.file, op.line) != line \
                    and self.fn.mode != "forward":  # tangent code sits right under its source line
                line = (op.file, op.line)
                out.append(self.comment(op.file, op.line))
            out.extend(statements)
            if statements and isinstance(statements[-1], ast.Raise):
                return out  # (what follows never runs: the values the region yields are never used)
        out.extend(self.assign_many([(t, y) for t, y in copies]))
        return out or [ast.Pass()]

    def comment(self, file: str | None, line: int) -> Comment:
        """``# line N: <source text>``, pointing back to a line of the user's code."""
        file = file or self.fn.filename
        # characters str.splitlines() breaks at (form feed, U+2028...) would end the comment early
        text = " ".join(linecache.getline(file, line).strip().splitlines())
        where = f"line {line}" if file == self.fn.filename else f"{os.path.basename(file)}:{line}"
        return Comment(f"{where}: {text}" if text else where)

    def assign_many(self, pairs: list[tuple[Value, Value]]) -> list[ast.stmt]:
        """``a = x`` for each pair whose names differ, as one tuple assignment if several."""
        pairs = [(t, v) for t, v in pairs if v.const is not UNDEFINED
                 and (v.is_const or v in self.inlined or self.name(t) != self.name(v))]
        if not pairs:
            return []
        if len(pairs) == 1:
            t, v = pairs[0]
            return [ast.Assign([ast.Name(self.name(t), ast.Store())], self.expr(v))]
        targets = ast.Tuple([ast.Name(self.name(t), ast.Store()) for t, _ in pairs], ast.Store())
        return [ast.Assign([targets], ast.Tuple([self.expr(v) for _, v in pairs], ast.Load()))]

    def statement(self, op: Op) -> list[ast.stmt]:
        if op.kind is OpKind.CONST or (op.results and op.results[0] in self.inlined):
            return []
        if op.kind is OpKind.CALL and self._written_in_place(op):
            return self.in_place(op)
        if op.kind is OpKind.CALL and op.fn is operator.iadd:
            return [ast.AugAssign(ast.Name(self.name(op.args[0]), ast.Store()), ast.Add(), self.expr(op.args[1]))]
        if op.kind is OpKind.CALL and op.fn is runtime.throw and len(op.args) == 1:
            return [ast.Raise(self.expr(op.args[0]), None)]  # the user's raise (or failed assert)
        if op.kind is OpKind.CALL:
            value = self.call_expr(op)
            if self.uses.get(op.result, 0) == 0:
                return [ast.Expr(value)]
            return [ast.Assign([ast.Name(self.name(op.result), ast.Store())], value)]
        if op.kind is OpKind.IF:
            then, orelse = op.then, op.orelse
            body = self.region(then, list(zip(op.results, then.yields)))
            other = self.region(orelse, list(zip(op.results, orelse.yields)))
            if other == [] or (len(other) == 1 and isinstance(other[0], ast.Pass)):
                other = []
            return [ast.If(self.expr(op.test), body, other)]
        body = op.body
        before = self.assign_many(list(zip(op.results, op.inits)))
        inner = self.region(body, list(zip(op.results, body.yields)))
        if op.kind is OpKind.FOR:
            target = op.target
            name = self.name(target) if self.uses.get(target) else "_"
            return before + [ast.For(ast.Name(name, ast.Store()), self.expr(op.iterable), inner, [])]
        cond = op.cond
        cond_ops = [s for o in cond.ops for s in self.statement(o)]
        if not cond_ops:
            return before + [ast.While(self.expr(cond.yields[0]), inner, [])]
        stop = ast.If(ast.UnaryOp(ast.Not(), self.expr(cond.yields[0])), [ast.Break()], [])
        return before + [ast.While(ast.Constant(True), cond_ops + [stop] + inner, [])]

    # ------------------------------------------------------------------ the module

    def function(self, name: str) -> ast.FunctionDef:
        """The generated function as an AST (with :class:`Comment` statements)."""
        params = [self.name(p) for p in self.fn.body.params]
        body = self.region(self.fn.body)
        ret = self.fn.body.yields[0]
        body = [s for s in body if not isinstance(s, ast.Pass)]
        body.append(ast.Return(self.expr(ret)))
        args = ast.arguments(posonlyargs=[], args=[ast.arg(p) for p in params], vararg=None,
                             kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
        return ast.FunctionDef(name, args, body, [], None)

    def module(self, name: str, doc: str) -> GeneratedSource:
        """The source of a module defining the function ``name``: ``doc`` as header comments,
        the imports the function reads, then the function; with the user's line each of its lines
        runs or differentiates (``origins``)."""
        node = self.function(name)
        fn_text, read, origins = _printed_with_origins(node)
        header = [f"# {line}" for line in doc.splitlines()]
        stdlib = ["import math"] if "math" in read else []
        third = ["import numpy as np"] if "np" in read else []
        if self.runtime_used:
            third.append(f"from symdiff.runtime import {', '.join(sorted(self.runtime_used))}")
        header += stdlib + ([""] if stdlib and third else []) + third
        user = sorted(n for n in self.globals if n not in ("np", "math"))
        if user:
            header.append(f"# from your code: {', '.join(user)}")
        first = len(header) + 3  # (the line the function starts on, after two blank lines)
        return GeneratedSource("\n".join(header) + "\n\n\n" + fn_text,
                               {first + line - 1: origin for line, origin in origins.items()})


def _dotted(path: str) -> ast.expr:
    parts = path.split(".")
    node: ast.expr = ast.Name(parts[0], ast.Load())
    for part in parts[1:]:
        node = ast.Attribute(node, part, ast.Load())
    return node


def generate(fn: Function, name: str, doc: str = "") -> tuple[GeneratedSource, dict[str, Any]]:
    """Python source of ``fn`` as a module defining ``name`` (with the user's line each of its
    lines comes from, ``.origins``), and the globals it needs."""
    gen = Codegen(fn)
    gen.taken.add(name)  # (a global it calls may have its name: a gradient object named like it, grad_f)
    for p in fn.body.params:
        gen.name(p)  # parameters keep the user's names
    source = gen.module(name, doc)
    namespace = dict(gen.globals)
    namespace.update({n: getattr(runtime, n) for n in gen.runtime_used})
    return source, namespace


def register_source(source: str, filename: str) -> None:
    """Put generated ``source`` in ``linecache`` under ``filename`` (a name in angle brackets, of
    no file), so that tracebacks, ``pdb`` and ``inspect.getsource`` show the generated lines."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def compile_function(source: str, name: str, namespace: dict[str, Any], filename: str) -> Any:
    """Compile generated source (registered in ``linecache`` under ``filename``) and return the
    function it defines."""
    register_source(source, filename)
    code = compile(source, filename, "exec")
    scope = dict(namespace)
    exec(code, scope)  # noqa: S102 - executing our own generated code is the point
    return scope[name]
