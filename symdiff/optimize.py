"""Whole-function passes on the IR, run on the primal before reverse mode and on the gradient
after it: common-subexpression elimination and copy propagation through structured control
flow. (The peepholes that run while ops are built, activity analysis and dead-code
elimination live in ``passes``.)

The IR is SSA, so a pure op computes the same value wherever its operands are the same
values -- except where the backward sweep updates its own arrays in place (``add_into``,
``add_at_index``) or a list grows. Values touched by such updates, and every value that
may share memory with them, are left alone.
"""

from __future__ import annotations

import operator
from typing import Any

from . import passes, runtime, shapes
from .ir import (
    BUILD_LIST,
    SEQUENCE,
    BuildDict,
    Builder,
    Function,
    GetAttr,
    Method,
    Op,
    Region,
    Value,
    definitions,
    walk,
)

# Effectful calls that update their first argument in place (and return it).
UPDATES_FIRST = {runtime.add_into, runtime.add_at_index, runtime.add_at, runtime.add_at_key,
                 runtime.list_append, Method("append"), Method("pop")}
# Effectful calls that only read their arguments (effectful to keep their place in order).
READS_ONLY = {runtime.scalar_seed, tuple, runtime.reverse_sequence, operator.getitem, len,
              runtime.list_index}
# Calls whose result may be a view of (share memory with) their first argument.
VIEWS = {operator.getitem, GetAttr("T"), Method("reshape"), Method("ravel"), Method("transpose"),
         Method("swapaxes"), Method("squeeze"), Method("diagonal"), runtime.unbroadcast,
         runtime.as_grad, runtime.add_into, runtime.add_at_index, runtime.add_at}
# Helpers of the runtime that compute a fresh value from their arguments and change nothing.
PURE_HELPERS = {runtime.winner_mask, runtime.sign, runtime.log_or_zero, runtime.matmul_vjp,
                runtime.dot_vjp, runtime.getitem_vjp, runtime.setitem_value_vjp, runtime.unbroadcast,
                runtime.fmax_share, runtime.fmin_share, runtime.sinc_grad}


def optimize(fn: Function) -> None:
    """Run the enabled whole-function passes on ``fn`` in place."""
    if passes.enabled("copies"):
        propagate_copies(fn)
    if passes.enabled("cse"):
        eliminate_common_subexpressions(fn)
    if passes.enabled("dce"):
        passes.eliminate_dead_code(fn)


# ----------------------------------------------------------------------------- substitution


def substitute(fn: Function, replace: dict[Value, Value]) -> None:
    """Rewrite every use of a key of ``replace`` (op arguments, region yields) to its value.
    Adjoint arithmetic that now reads a constant is simplified again (a cotangent carried
    unchanged through a loop is the constant it started as: ``1.0 * i`` becomes ``i``)."""
    if not replace:
        return
    builder = Builder(fn.body, simplify=passes.simplify_adjoint if passes.enabled("peephole") else None,
                      annotate=shapes.annotate)
    builder.producer = definitions(fn.body)
    builder.adjoint = True

    def final(v: Value) -> Value:
        while v in replace:
            v = replace[v]
        return v

    def visit(region: Region) -> None:
        ops, region.ops = region.ops, []
        builder.push(region)
        for op in ops:
            args = [final(a) for a in op.args]
            changed = any(a is not b for a, b in zip(args, op.args))
            op.args = args
            for sub in op.regions:
                visit(sub)
            if changed and op.kind == "call" and op.adjoint and not op.effect and builder.simplify:
                builder.line, builder.file = op.line, op.file
                simpler = builder.simplify(builder, op.fn, op.positional, op.keywords)
                if simpler is not None and simpler is not op.result:
                    replace[op.result] = simpler
            region.ops.append(op)
        region.yields = [final(y) for y in region.yields]
        builder.pop()

    visit(fn.body)


# ----------------------------------------------------------------------------- copy propagation


def propagate_copies(fn: Function) -> None:
    """Results that are copies of another value, read through that value instead: an ``if``
    result both of whose arms yield the same outer value, and a loop-carried value that the
    body yields back unchanged (it keeps its initial value)."""
    replace: dict[Value, Value] = {}

    def visit(region: Region, visible: set[Value]) -> None:
        visible = visible | set(region.params)
        for op in region.ops:
            for sub in op.regions:
                visit(sub, visible)
            if op.kind == "if":
                for i, r in enumerate(op.results):
                    then, orelse = (sub.yields[i] for sub in op.regions)
                    if then is orelse and then in visible:
                        replace[r] = then
            elif op.kind in ("for", "while"):
                offset = 1 if op.kind == "for" else 0
                body = op.regions[-1]
                for i, r in enumerate(op.results):
                    param, init = body.params[i + offset], op.args[i + offset]
                    if body.yields[i] is param:
                        replace[r] = init
                        for sub in op.regions:
                            replace[sub.params[i + (offset if sub is body else 0)]] = init
            visible |= set(op.results)

    visit(fn.body, set())
    substitute(fn, replace)


# ----------------------------------------------------------------------------- CSE


def eliminate_common_subexpressions(fn: Function) -> None:
    """Compute each pure expression once: a pure call with the same callee and operands as an
    earlier one in the same or an enclosing region reuses its result."""
    touched = _touched_by_updates(fn)
    replace: dict[Value, Value] = {}

    def visit(region: Region, seen: dict[tuple, Value]) -> None:
        seen = dict(seen)  # what a nested region computes is not available after it
        for op in region.ops:
            for sub in op.regions:
                visit(sub, seen)
            if not _reusable(op, touched):
                continue
            key = _key(op, replace)
            earlier = seen.get(key)
            if earlier is None:
                seen[key] = op.result
                continue
            replace[op.result] = earlier
            if _weak(earlier.hint) and not _weak(op.result.hint):
                earlier.hint = op.result.hint  # keep the user's name for the one computation

    visit(fn.body, {})
    substitute(fn, replace)


def _weak(hint: str | None) -> bool:
    return hint is None or hint.startswith("_")


def _reusable(op: Op, touched: set[Value]) -> bool:
    if op.kind != "call" or op.effect or op.fn in (BUILD_LIST,) or isinstance(op.fn, BuildDict):
        return False
    if op.result.kind == SEQUENCE or any(a.kind == SEQUENCE for a in op.args):
        return False
    if op.result in touched or any(a in touched for a in op.args):
        return False
    try:
        return passes.is_pure(op.fn) or op.fn in PURE_HELPERS
    except TypeError:  # an unhashable callee
        return False


def _key(op: Op, replace: dict[Value, Value]) -> tuple:
    parts: list[Any] = []
    for a in op.args:
        while a in replace:
            a = replace[a]
        parts.append(a if not a.is_const else _const_key(a.const))
    try:
        hash(op.fn)
        callee: Any = op.fn
    except TypeError:
        callee = id(op.fn)
    return (callee, op.kwnames, tuple(parts))


SIMPLE = (int, float, bool, str, type(None), type(Ellipsis))


def _const_key(c: Any) -> tuple:
    """Equal keys for equal constants of the same type (1, 1.0 and True differ); other
    objects by identity."""
    if type(c) in SIMPLE:
        return ("const", type(c), repr(c))
    if type(c) is slice:
        return ("slice",) + tuple(_const_key(p) for p in (c.start, c.stop, c.step))
    if type(c) is tuple:
        return ("tuple",) + tuple(_const_key(p) for p in c)
    return ("object", id(c))


def _touched_by_updates(fn: Function) -> set[Value]:
    """Values an in-place update may change (or that may share memory with one), closed over
    the names structured control flow gives one object: loop inits, params, yields, results
    and ``if`` results."""
    touched: set[Value] = set()
    links: dict[Value, set[Value]] = {}  # may be the same object (or share memory)

    def link(a: Value, b: Value) -> None:
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)

    def visit(region: Region) -> None:
        for op in region.ops:
            for sub in op.regions:
                visit(sub)
            if op.kind == "call":
                if op.effect and op.fn in UPDATES_FIRST:
                    touched.add(op.args[0])
                elif op.effect and op.fn not in READS_ONLY:
                    touched.update(op.args)
                if op.fn in VIEWS and op.args:
                    link(op.result, op.args[0])
            elif op.kind == "if":
                for i, r in enumerate(op.results):
                    for sub in op.regions:
                        link(r, sub.yields[i])
            elif op.kind in ("for", "while"):
                offset = 1 if op.kind == "for" else 0
                body = op.regions[-1]
                for i, r in enumerate(op.results):
                    group = [r, op.args[i + offset], body.yields[i]]
                    group += [sub.params[i + (offset if sub is body else 0)] for sub in op.regions]
                    for other in group[1:]:
                        link(r, other)

    visit(fn.body)
    # the gradients returned to the caller must stay distinct arrays
    for op, _ in walk(fn.body):
        if op.kind == "call" and op.fn in (runtime.as_grad, runtime.grad_like):
            touched.add(op.args[0])
    stack = list(touched)
    while stack:
        v = stack.pop()
        for other in links.get(v, ()):
            if other not in touched:
                touched.add(other)
                stack.append(other)
    return touched


