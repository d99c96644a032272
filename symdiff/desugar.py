"""Desugaring: source-to-source rewrites of a parsed function, before it is lowered to IR.

Each rewrite is a function from ``ast`` to a new ``ast`` (its input is left as it is) that
needs nothing but the syntax tree (and, to know that ``enumerate`` is the builtin, what a free
name refers to): no IR, no lowering state. :func:`desugar` runs them, in this order:

0. :func:`statements` -- ``assert c, m`` becomes ``if not c: raise AssertionError(m)``;
   ``map(f, s)`` and ``filter(f, s)`` of the builtins become list comprehensions; the body of
   a generator function (one that yields) becomes one that builds the list of what it yields
   and returns it.
1. :func:`index_loops` -- ``for i, v in enumerate(s)``, ``for a, b in zip(s, t)`` and ``for v
   in reversed(s)`` (and these nested: ``enumerate(zip(s, t))``) become loops over an index,
   so that items are read, and differentiated, by position.
2. :func:`normalize_jumps` -- the statements after an ``if`` one of whose arms always returns,
   breaks or continues move into its other arm, so that the common early exits need no flag.

One more rewrite is applied by the lowering, where the expression is evaluated, since the
loop it makes must run exactly there (in one arm of ``a and b``, in a lambda's body, in a
loop's test): :func:`comprehension_loop` -- ``[e for x in s if c]`` becomes a loop appending
to a list; :func:`desugar_statements` then runs the rewrites above on what it returns.

A node a rewrite makes carries the source position of the node it stands for, so that error
messages and the ``# line`` comments of generated code point at the user's line. The names a
rewrite introduces come from a :class:`Namer`: never a name the function's source uses.
"""

from __future__ import annotations

import ast
import copy
import functools
from typing import Any, Callable

from .frontend import nodes

__all__ = ["Namer", "always_jumps", "comprehension_loop", "desugar", "desugar_statements", "index_loops",
           "normalize_jumps", "statements", "temporaries"]

Resolve = Callable[[str], Any]  # a free name -> the object it refers to (frontend.Parsed.resolve)
Block = list  # a list of ast.stmt

# The attribute on a loop made by index_loops that names the temporaries assigned before it.
_TEMPORARIES = "symdiff_temporaries"


class Namer:
    """The names of one function (``tree``, nested functions included): fresh names for the
    variables desugarings introduce (``_seq``, ``_seq_1``, ...), never a name its source uses
    (a variable, parameter, global or nested function) nor one handed out before; and the
    names it binds, which no builtin's rewrite may take for the builtin."""

    def __init__(self, tree: ast.AST):
        self.taken = _identifiers(tree)
        self.bound = frozenset(_bound_names(tree))

    def fresh(self, base: str) -> str:
        """A new name starting with ``base``."""
        name, n = base, 0
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


def desugar(node: ast.FunctionDef | ast.Lambda, resolve: Resolve, namer: Namer | None = None) -> ast.AST:
    """Every desugaring, in order, of ``node`` (a def or a lambda, nested functions included)."""
    namer = namer if namer is not None else Namer(node)
    simpler = statements(node, resolve, namer)  # (a copy: the later rewrites change it in place)
    return normalize_jumps(index_loops(simpler, resolve, namer, in_place=True), in_place=True)


def desugar_statements(stmts: Block, resolve: Resolve, namer: Namer) -> Block:
    """:func:`desugar` for statements made while lowering the function ``namer`` names."""
    holder = ast.Module(body=stmts, type_ignores=[])
    return normalize_jumps(index_loops(holder, resolve, namer), in_place=True).body


# ---------------------------------------------------------------------- 0. statements


def statements(tree: ast.AST, resolve: Resolve, namer: Namer) -> ast.AST:
    """A copy of ``tree`` with three constructs written in simpler Python::

        assert c, m                 ->      if not c:
                                                raise AssertionError(m)

        map(f, s, t)                ->      [f(_a, _b) for _a, _b in zip(s, t)]
        filter(f, s)                ->      [_a for _a in s if f(_a)]      (f None: if _a)

        def gen(x):                         def gen(x):
            for i in range(3):      ->          _yielded = []
                yield x * i                     for i in range(3):
                                                    _yielded.append(x * i)
                                                return _yielded

    The assertion is checked whatever ``python -O`` says (the derivative checks its input as
    the function does when run normally). ``map`` and ``filter`` give a list where Python
    gives an iterator, as a generator gives the list of what it yields: symdiff has no lazy
    iterators, and a consumer (``for``, ``list``, ``sum``, ``zip``...) sees the same items.
    Only the builtins ``map`` and ``filter`` (not a name the function binds) of a callee that
    is a name, an attribute, a lambda or a ``functools.partial`` of names and constants
    (evaluated once per item here) are rewritten."""
    tree = copy_tree(tree)
    bound = namer.bound

    def builtin(call: ast.expr, fn: Callable) -> bool:
        return isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id not in bound \
            and not call.keywords and not any(isinstance(a, ast.Starred) for a in call.args) \
            and resolve(call.func.id) is fn

    def partial(call: ast.expr) -> bool:  # functools.partial(f, a, k=b) of names and constants
        simple = (ast.Name, ast.Attribute, ast.Constant)
        return isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id not in bound \
            and resolve(call.func.id) is functools.partial and call.args \
            and all(isinstance(a, simple) for a in [*call.args, *(k.value for k in call.keywords)]) \
            and all(k.arg is not None for k in call.keywords)

    class Rewrite(ast.NodeTransformer):
        def visit_Assert(self, node: ast.Assert) -> ast.stmt:
            self.generic_visit(node)
            error = _call(AssertionError, *([node.msg] if node.msg is not None else []))
            test = ast.UnaryOp(ast.Not(), node.test)
            return _located(ast.If(test, [_located(ast.Raise(error, None), node)], []), node)

        def visit_Call(self, node: ast.Call) -> ast.expr:
            self.generic_visit(node)
            callee = node.args[0] if node.args else None
            if not isinstance(callee, (ast.Name, ast.Attribute, ast.Lambda)) and not partial(callee) and \
                    not (isinstance(callee, ast.Constant) and callee.value is None):
                return node
            if builtin(node, map) and len(node.args) >= 2 and not isinstance(callee, ast.Constant):
                return _located(_mapped(callee, node.args[1:], namer), node)
            if builtin(node, filter) and len(node.args) == 2:
                return _located(_filtered(callee, node.args[1], namer), node)
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
            self.generic_visit(node)
            return _generator_as_list(node, namer) if _yields(node) else node

    return Rewrite().visit(tree)


def _mapped(fn: ast.expr, iterables: list[ast.expr], namer: Namer) -> ast.ListComp:
    """``[fn(_a, ...) for _a, ... in zip(*iterables)]`` (no ``zip`` for one iterable)."""
    names = [namer.fresh("_item") for _ in iterables]
    target: ast.expr = ast.Name(names[0], ast.Store()) if len(names) == 1 else \
        ast.Tuple([ast.Name(n, ast.Store()) for n in names], ast.Store())
    source = iterables[0] if len(iterables) == 1 else _call(zip, *iterables)
    elt = ast.Call(fn, [ast.Name(n, ast.Load()) for n in names], [])
    return ast.ListComp(elt, [ast.comprehension(target, source, [], 0)])


def _filtered(fn: ast.expr, iterable: ast.expr, namer: Namer) -> ast.ListComp:
    """``[_a for _a in iterable if fn(_a)]`` (``if _a`` when ``fn`` is None)."""
    name = namer.fresh("_item")
    test = ast.Name(name, ast.Load()) if isinstance(fn, ast.Constant) else \
        ast.Call(fn, [ast.Name(name, ast.Load())], [])
    clause = ast.comprehension(ast.Name(name, ast.Store()), iterable, [test], 0)
    return ast.ListComp(ast.Name(name, ast.Load()), [clause])


def _yields(node: ast.FunctionDef) -> bool:
    """Whether ``node`` is a generator function: a ``yield`` in its own body (not in a nested
    function or lambda)."""
    stack: list[ast.AST] = list(node.body)
    while stack:
        sub = stack.pop()
        if isinstance(sub, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(sub))
    return False


def _generator_as_list(node: ast.FunctionDef, namer: Namer) -> ast.FunctionDef:
    """The generator function ``node`` as a function returning the list of what it yields:
    ``yield v`` appends ``v``, ``return`` (with a value or not: it ends the iteration) returns
    the list, and so does falling off the end."""
    out = namer.fresh("_yielded")

    def result() -> ast.Return:
        return ast.Return(ast.Name(out, ast.Load()))

    class Yields(ast.NodeTransformer):
        def visit_FunctionDef(self, sub: ast.FunctionDef) -> ast.AST:
            return sub  # (a nested function's yields and returns are its own)

        visit_Lambda = visit_FunctionDef

        def visit_Expr(self, stmt: ast.Expr) -> ast.AST:
            if isinstance(stmt.value, ast.Yield):
                item = stmt.value.value if stmt.value.value is not None else ast.Constant(None)
                append = ast.Attribute(ast.Name(out, ast.Load()), "append", ast.Load())
                return _located(ast.Expr(ast.Call(append, [item], [])), stmt)
            return stmt

        def visit_Return(self, stmt: ast.Return) -> ast.AST:
            return _located(result(), stmt)

    body = [Yields().visit(stmt) for stmt in node.body]
    start = _located(ast.Assign([ast.Name(out, ast.Store())], ast.List([], ast.Load())), node.body[0])
    end = _located(result(), node.body[-1])
    new = ast.FunctionDef(node.name, node.args, [start, *body, end], node.decorator_list, node.returns,
                          getattr(node, "type_comment", None), **({"type_params": node.type_params}
                                                                   if hasattr(node, "type_params") else {}))
    return ast.copy_location(new, node)


# ---------------------------------------------------------------------- 1. index loops


def index_loops(tree: ast.AST, resolve: Resolve, namer: Namer, in_place: bool = False) -> ast.AST:
    """Loops over ``enumerate``, ``zip`` and ``reversed`` as loops over an index::

        for i, v in enumerate(f(x)):        _seq = f(x)
            body                     ->     for _k in range(len(_seq)):
                                                i, v = (_k, _seq[_k])
                                                body

        for a, b in zip(s, t): body  ->     for _k in range(min(len(s), len(t))):
                                                a, b = (s[_k], t[_k])
                                                body

        for v in reversed(s): body   ->     for _k in range(len(s) - 1, -1, -1):
                                                v = s[_k]
                                                body

    An item of ``range(n)`` (one argument) among them is the index itself: ``for t, x in
    zip(range(n), xs)`` binds ``t = _k``, an int, where ``range(n)[_k]`` would be a value of
    unknown type.

    Each iterable that is not a plain name (or is a name the loop rebinds) is evaluated once,
    in order, into a temporary before the loop (:func:`temporaries` names them), as Python
    evaluates it once. ``len``, ``range`` and ``min`` are the builtins themselves (constants),
    whatever the function's names are. Only calls of the builtins are rewritten: a name
    ``zip`` the function binds (``namer.bound``), or that is not the builtin, is left alone."""
    bound = namer.bound

    def kind(expr: ast.expr) -> str | None:
        """Which of the three views ``expr`` is, or None."""
        if not isinstance(expr, ast.Call) or expr.keywords or any(isinstance(a, ast.Starred) for a in expr.args):
            return None
        if isinstance(expr.func, ast.Constant):  # (a builtin a rewrite wrote: map's zip)
            fn = expr.func.value
        elif isinstance(expr.func, ast.Name) and expr.func.id not in bound:
            fn = resolve(expr.func.id)
        else:
            return None
        n = len(expr.args)
        return "enumerate" if fn is enumerate and n == 1 else "zip" if fn is zip and n >= 1 else \
            "reversed" if fn is reversed and n == 1 else \
            "range" if fn is range and n == 1 else None

    def rewrite(stmts: Block) -> Block:
        out: Block = []
        for stmt in stmts:
            if isinstance(stmt, ast.For) and not stmt.orelse and kind(stmt.iter) not in (None, "range"):
                out.extend(_index_loop(stmt, kind, namer))
            else:
                out.append(stmt)
        return out

    return _each_block(tree, rewrite, in_place)


def temporaries(loop: ast.For) -> tuple[str, ...]:
    """The temporaries :func:`index_loops` assigned before ``loop``: dead once it ends."""
    return getattr(loop, _TEMPORARIES, ())


def _index_loop(loop: ast.For, kind: Callable[[ast.expr], str | None], namer: Namer) -> Block:
    """``loop`` (over a view that ``kind`` recognises) as temporaries and a loop over an index."""
    rebound = set(assigned_names(loop))
    prelude: Block = []

    def sequence(expr: ast.expr) -> ast.expr:
        """An expression for the sequence ``expr``, read once: a name, or a new temporary."""
        if isinstance(expr, ast.Name) and expr.id not in rebound:
            return expr
        name = namer.fresh("_seq")
        prelude.append(_located(ast.Assign([ast.Name(name, ast.Store())], expr), loop))
        return ast.Name(name, ast.Load())

    def view(expr: ast.expr) -> tuple[ast.expr, Callable[[ast.expr], ast.expr]]:
        """``(length, item)``: an expression for the length of ``expr`` and a function from an
        index expression to its item's."""
        which = kind(expr)
        if which in (None, "range"):
            seq = sequence(expr)
            if which == "range":  # range(n)[k] is k itself: the item is the index, an int
                return _call(len, seq), lambda k: k
            return _call(len, seq), lambda k: ast.Subscript(copy.deepcopy(seq), k, ast.Load())
        views = [view(a) for a in expr.args]
        if which == "enumerate":
            (length, item), = views
            return length, lambda k: ast.Tuple([k, item(copy.deepcopy(k))], ast.Load())
        if which == "zip":
            length = views[0][0] if len(views) == 1 else _call(min, *(v[0] for v in views))
            return length, lambda k: ast.Tuple([item(copy.deepcopy(k)) for _, item in views], ast.Load())
        (length, item), = views
        last = ast.BinOp(copy.deepcopy(length), ast.Sub(), ast.Constant(1))
        return length, lambda k: item(ast.BinOp(copy.deepcopy(last), ast.Sub(), k))

    index = namer.fresh("_k")
    if kind(loop.iter) == "reversed":  # range(len(s) - 1, -1, -1)
        length, item = view(loop.iter.args[0])
        start = ast.BinOp(length, ast.Sub(), ast.Constant(1))
        indices = _call(range, start, ast.Constant(-1), ast.Constant(-1))
    else:
        length, item = view(loop.iter)
        indices = _call(range, length)
    body = [ast.Assign([loop.target], item(ast.Name(index, ast.Load())))] + loop.body
    new = _located(ast.For(ast.Name(index, ast.Store()), indices, body, []), loop)
    setattr(new, _TEMPORARIES, tuple(t.targets[0].id for t in prelude))
    return prelude + [new]


# ---------------------------------------------------------------------- 2. jumps


def normalize_jumps(tree: ast.AST, in_place: bool = False) -> ast.AST:
    """In every statement list: the statements after an ``if`` one of whose arms always
    jumps (``return``, ``break``, ``continue``) move into its other arm::

        if c:                           if c:
            return a                        return a
        s = s + 1              ->       else:
        return s                            s = s + 1
                                            return s

    so that the common early exits need no flag variable (the lowering keeps flags for the
    rest). The arm that receives them is normalised again. ``in_place``: ``tree`` is a copy
    already (another desugaring's output), rewritten itself rather than copied again."""
    return _each_block(tree, _normalize_block, in_place)


def _normalize_block(stmts: Block) -> Block:
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, ast.If) and i + 1 < len(stmts):
            rest = stmts[i + 1:]
            if always_jumps(stmt.body):
                new = ast.If(test=stmt.test, body=stmt.body, orelse=_normalize_block(stmt.orelse + rest))
            elif stmt.orelse and always_jumps(stmt.orelse):
                new = ast.If(test=stmt.test, body=_normalize_block(stmt.body + rest), orelse=stmt.orelse)
            else:
                continue
            return stmts[:i] + [ast.copy_location(new, stmt)]
    return stmts


def always_jumps(stmts: Block) -> bool:
    """Whether running ``stmts`` surely ends in a ``return``, ``break`` or ``continue``."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, (ast.Return, ast.Break, ast.Continue)):
        return True
    return isinstance(last, ast.If) and always_jumps(last.body) and always_jumps(last.orelse)


# ---------------------------------------------------------------------- comprehensions


def comprehension_loop(node: ast.ListComp | ast.GeneratorExp, out: str) -> Block:
    """A comprehension as statements that build its list in ``out``, one loop per ``for``
    clause, the first outermost::

        [e for x in s if c for y in t]    ->      out = []
                                                  for x in s:
                                                      if c:
                                                          for y in t:
                                                              out.append(e)

    A generator expression gives the same list (symdiff has no lazy iterators). The loop
    variables ``x``, ``y`` stay local to the comprehension: that is the lowering's to keep."""
    append = ast.Call(ast.Attribute(ast.Name(out, ast.Load()), "append", ast.Load()), [node.elt], [])
    body: ast.stmt = _located(ast.Expr(append), node)
    for gen in reversed(node.generators):
        for cond in reversed(gen.ifs):
            body = _located(ast.If(cond, [body], []), node)
        body = _located(ast.For(gen.target, gen.iter, [body], []), node)
    start = ast.Assign([ast.Name(out, ast.Store())], ast.List([], ast.Load()))
    return [_located(start, node), body]


# ---------------------------------------------------------------------- helpers


def _each_block(tree: ast.AST, rewrite: Callable[[Block], Block], in_place: bool = False) -> ast.AST:
    """A copy of ``tree`` (``tree`` itself if ``in_place``: a copy already) with every statement
    list (a body or an ``else``) replaced by ``rewrite`` of it, innermost lists first."""
    def visit(node: ast.AST) -> None:
        for field in ("body", "orelse"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list):
                for stmt in stmts:
                    visit(stmt)
                setattr(node, field, rewrite(stmts))

    tree = tree if in_place else copy_tree(tree)
    visit(tree)
    return tree


_ATOMS = frozenset({type(None), int, float, bool, complex, str, bytes, type(Ellipsis)})


def copy_tree(tree: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy(tree)`` of a syntax tree, several times faster: nodes, lists and the
    constants of source code are copied here; anything else goes to ``copy.deepcopy`` (with
    the same memo, so that an object reached twice is copied once, as ``deepcopy`` does)."""
    if memo is None:
        memo = {}
    kind = type(tree)
    if kind in _ATOMS:
        return tree
    done = memo.get(id(tree))
    if done is not None:
        return done
    if isinstance(tree, ast.AST):
        new = kind.__new__(kind)  # (fields from the copied __dict__: kind() warns of missing ones on 3.13)
        memo[id(tree)] = new
        new.__dict__.update({k: copy_tree(v, memo) for k, v in tree.__dict__.items()})
        _keep_alive(tree, memo)
        return new
    if kind is list:
        new = []
        memo[id(tree)] = new
        new.extend(copy_tree(v, memo) for v in tree)
        _keep_alive(tree, memo)
        return new
    return copy.deepcopy(tree, memo)


def _keep_alive(obj: Any, memo: dict[int, Any]) -> None:
    """What ``copy.deepcopy`` does with each object it copied: keep it alive while the memo is
    (so that its id is not reused by another object while copying)."""
    memo.setdefault(id(memo), []).append(obj)


def _located(new: ast.AST, old: ast.AST) -> ast.AST:
    """Give each node of ``new`` that has no position yet (those a rewrite made) the source
    span of ``old``, the node it stands for; the user's own nodes keep theirs."""
    for node in ast.walk(new):
        if "lineno" in node._attributes and getattr(node, "lineno", None) is None:
            ast.copy_location(node, old)
    return new


def _call(fn: Callable, *args: ast.expr) -> ast.Call:
    """A call of the builtin ``fn`` itself, as a constant callee: no local name can shadow it."""
    return ast.Call(ast.Constant(fn), list(args), [])


def _identifiers(tree: ast.AST) -> set[str]:
    """Every identifier in ``tree``: names, parameters, functions' names."""
    names = set()
    for node in nodes(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
    return names


def _bound_names(tree: ast.AST) -> set[str]:
    """Names ``tree`` binds anywhere: assigned, parameters, nested functions."""
    names = set(assigned_names(tree))
    for node in nodes(tree):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef) and node is not tree:
            names.add(node.name)
    return names


def assigned_names(node: ast.AST) -> list[str]:
    """Names a statement (re)binds: assignment targets, and ``a`` in ``a[i] = v``."""
    names = []
    for sub in nodes(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.append(sub.id)
        elif isinstance(sub, ast.Subscript) and isinstance(sub.ctx, ast.Store) and isinstance(sub.value, ast.Name):
            names.append(sub.value.id)
    return list(dict.fromkeys(names))
