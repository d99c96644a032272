"""Whole-function passes on the IR (see :func:`optimize` for the order): copy propagation and
common-subexpression elimination, on the primal before AD and on the gradient after it; then,
on the gradient only, sums of ``np.where``-masked cotangents in one ``np.where``, deferred
sums of outer products, handing over gradients without a copy, in-place accumulation and
loop-invariant code motion. (The peepholes that run while ops are
built, activity analysis and dead-code elimination live in ``passes``.)

The IR is SSA, so a pure op computes the same value wherever its operands are the same
values -- except where the backward sweep updates its own arrays in place (``add_into``,
``add_at_index``) or a list grows. Values touched by such updates, and every value that
may share memory with them, are left alone.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from . import passes, primitives, runtime, shapes
from .ir import (
    BUILD_LIST,
    SCALAR,
    SEQUENCE,
    Abstract,
    Build,
    BuildDict,
    Builder,
    Function,
    GetAttr,
    Method,
    Op,
    OpKind,
    Region,
    Value,
    definitions,
    temp_name,
    walk,
)
from .patterns import calls, is_const, match


def optimize(fn: Function, final: bool = False) -> None:
    """Run the enabled whole-function passes on ``fn`` in place; ``final`` for the gradient
    function itself (loop-invariant code motion runs only there: it adds carried values
    that reverse mode should not see)."""
    if passes.enabled("copies"):
        propagate_copies(fn)
    if passes.enabled("cse"):
        eliminate_common_subexpressions(fn)
    if passes.enabled("dce"):
        passes.eliminate_dead_code(fn)
    if final and passes.enabled("masks"):
        merge_masked_sums(fn)
        if passes.enabled("dce"):
            passes.eliminate_dead_code(fn)
    if final and passes.enabled("defer"):
        defer_outer_products(fn)
        defer_element_sums(fn)
    if final and passes.enabled("handover"):
        hand_over_fresh_gradients(fn)
    if final and passes.enabled("inplace"):
        accumulate_in_place(fn)
        store_in_place(fn)
    if final and passes.enabled("licm"):
        hoist_loop_invariants(fn)
        if passes.enabled("dce"):
            passes.eliminate_dead_code(fn)


def use_counts(fn: Function) -> dict[Value, int]:
    """How many times each value is read: by op arguments and region yields."""
    uses: dict[Value, int] = {}
    args: list[Value] = []
    yields: list[Value] = []
    for op, _ in walk(fn.body):  # (one walk; the counts are made in the same order as ever)
        args.extend(op.args)
        for sub in op.regions:
            yields.extend(sub.yields)
    for v in args + fn.body.yields + yields:
        uses[v] = uses.get(v, 0) + 1
    return uses


# ----------------------------------------------------------------------------- substitution


def _final(v: Value, replace: dict[Value, Value]) -> Value:
    """What ``v`` is replaced by, following chains of replacements."""
    while v in replace:
        v = replace[v]
    return v


def substitute(fn: Function, replace: dict[Value, Value]) -> None:
    """Rewrite every use of a key of ``replace`` (op arguments, region yields) to its value.
    Adjoint arithmetic that now reads a constant is simplified again (a cotangent carried
    unchanged through a loop is the constant it started as: ``1.0 * i`` becomes ``i``)."""
    if not replace:
        return
    builder = passes.adjoint_builder(fn.body)
    builder.producer = definitions(fn.body)

    def visit(region: Region) -> None:
        ops, region.ops = region.ops, []
        builder.push(region)
        for op in ops:
            changed = not replace.keys().isdisjoint(op.args)  # (a replaced value is never its own replacement)
            op.args = [_final(a, replace) for a in op.args] if changed else list(op.args)
            for sub in op.regions:
                visit(sub)
            if changed and op.kind is OpKind.CALL and op.adjoint and not op.effect and builder.simplify:
                builder.line, builder.file = op.line, op.file
                simpler = builder.simplify(builder, op.fn, op.positional, op.keywords)
                if simpler is not None and simpler is not op.result:
                    replace[op.result] = simpler
            region.ops.append(op)
        region.yields = [_final(y, replace) for y in region.yields]
        builder.pop()

    visit(fn.body)


# ----------------------------------------------------------------------------- copy propagation


def propagate_copies(fn: Function) -> None:
    """Results that are copies of another value, read through that value instead: an ``if``
    result both of whose arms yield the same outer value, and a loop-carried value that the
    body yields back unchanged (it keeps its initial value)."""
    replace: dict[Value, Value] = {}

    visible: set[Value] = set()  # one set for all regions: each takes out what it added when it ends

    def visit(region: Region) -> None:
        added = [p for p in region.params if p not in visible]
        visible.update(added)
        for op in region.ops:
            for sub in op.regions:
                visit(sub)
            if op.kind is OpKind.IF:
                for i, r in enumerate(op.results):
                    then, orelse = op.then.yields[i], op.orelse.yields[i]
                    if then is orelse and then in visible:
                        replace[r] = then
            elif op.is_loop:
                body, inits = op.body, op.inits
                carried = {sub: op.carried(sub) for sub in op.regions}
                for i, r in enumerate(op.results):
                    param, init = carried[body][i], inits[i]
                    if body.yields[i] is param:
                        replace[r] = init
                        for sub in op.regions:
                            replace[carried[sub][i]] = init
            new = [r for r in op.results if r not in visible]
            visible.update(new)
            added.extend(new)
        visible.difference_update(added)

    visit(fn.body)
    substitute(fn, replace)


# ----------------------------------------------------------------------------- CSE


def eliminate_common_subexpressions(fn: Function) -> None:
    """Compute each pure expression once: a pure call with the same callee and operands as an
    earlier one in the same or an enclosing region reuses its result."""
    touched = _touched_by_updates(fn)
    replace: dict[Value, Value] = {}

    seen: dict[tuple, Value] = {}  # one table for all regions: each takes out what it added when it ends

    def visit(region: Region) -> None:
        added = []  # what a nested region computes is not available after it
        for op in region.ops:
            for sub in op.regions:
                visit(sub)
            if not _reusable(op, touched):
                continue
            key = _key(op, replace)
            earlier = seen.get(key)
            if earlier is None:
                seen[key] = op.result
                added.append(key)
                continue
            replace[op.result] = earlier
            if _weak(earlier.hint) and not _weak(op.result.hint):
                earlier.hint = op.result.hint  # keep the user's name for the one computation
        for key in added:
            del seen[key]

    visit(fn.body)
    substitute(fn, replace)


def _weak(hint: str | None) -> bool:
    return hint is None or hint.startswith("_")


def _reusable(op: Op, touched: set[Value]) -> bool:
    if op.kind is not OpKind.CALL or op.effect or op.fn in (BUILD_LIST,) or isinstance(op.fn, BuildDict):
        return False
    if op.result.kind == SEQUENCE or any(a.kind == SEQUENCE for a in op.args):
        return False
    if op.result in touched or not touched.isdisjoint(op.args) or passes.stateful(op.fn):
        return False  # (an iterator shared by two loops would run only the first)
    try:
        return passes.is_pure(op.fn)
    except TypeError:  # an unhashable callee
        return False


def _key(op: Op, replace: dict[Value, Value]) -> tuple:
    parts: list[Any] = []
    for a in (_final(v, replace) for v in op.args):
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
            if op.kind is OpKind.CALL:
                if op.fn is runtime.as_grad or op.fn is runtime.grad_like:
                    touched.add(op.args[0])  # the gradients returned to the caller must stay distinct arrays
                record = primitives.lookup(op.fn)
                if op.effect and record.updates:
                    touched.add(op.args[0])
                elif op.effect and not record.reads_only:
                    touched.update(op.args)
                if record.alias in (primitives.VIEW, primitives.ITSELF) and len(op.args) > record.viewed:
                    link(op.result, op.args[record.viewed])
            elif op.kind is OpKind.IF:
                for i, r in enumerate(op.results):
                    for sub in op.regions:
                        link(r, sub.yields[i])
            elif op.is_loop:
                body, inits = op.body, op.inits
                carried = [op.carried(sub) for sub in op.regions]
                for i, r in enumerate(op.results):
                    group = [r, inits[i], body.yields[i]]
                    group += [params[i] for params in carried]
                    for other in group[1:]:
                        link(r, other)

    visit(fn.body)
    stack = list(touched)
    while stack:
        v = stack.pop()
        for other in links.get(v, ()):
            if other not in touched:
                touched.add(other)
                stack.append(other)
    return touched


# ----------------------------------------------------------------------------- loop invariants

def hoist_loop_invariants(fn: Function) -> None:
    """Compute what a loop recomputes with the same operands once.

    Scalar arithmetic that cannot raise moves before the loop. Anything else (``math.sin``,
    NumPy calls: they may raise, or cost much) is computed the first time the loop gets
    to it and kept in a carried value, so the code raises where and when the original
    did -- ``if sin is None: sin = math.sin(x)``."""
    touched = _touched_by_updates(fn)
    memos: dict[Value, tuple[Op, Value]] = {}
    _hoist_in(fn.body, touched, memos)
    _unstack_memos(fn, memos)


def _hoist_in(region: Region, touched: set[Value], memos: dict) -> None:
    i = 0
    while i < len(region.ops):
        op = region.ops[i]
        for sub in op.regions:  # inner loops first: their invariants may be the outer's too
            _hoist_in(sub, touched, memos)
        if op.is_loop:
            moved = _hoist_out_of(op, touched, memos)
            region.ops[i:i] = moved
            i += len(moved)
        i += 1


def _hoist_out_of(loop: Op, touched: set[Value], memos: dict) -> list[Op]:
    inside = {v for sub in loop.regions for v in sub.params} | {
        v for sub in loop.regions for o, _ in walk(sub) if o.kind is not OpKind.CONST for v in o.results}
    moved: list[Op] = []
    groups: list[tuple[list[Op], Region, list[tuple[Op, Region]]]] = []

    def scan(region: Region, path: list[tuple[Op, Region]]) -> None:
        group: list[Op] = []  # invariant ops computed together on first use
        grouped: set[Value] = set()
        for op in list(region.ops):
            if op.kind is OpKind.CONST:
                continue
            if op.kind is OpKind.IF:
                for sub in op.regions:
                    scan(sub, path + [(op, sub)])
                continue
            if op.kind is not OpKind.CALL or op.effect:  # a side effect (or a loop) between: a new group
                group, grouped = [], set()
                continue
            if not _reusable(op, touched) or isinstance(op.fn, (GetAttr, Build)) or op.fn is len or any(
                    a in inside and a not in grouped for a in op.args if not a.is_const):
                continue
            if primitives.lookup(op.fn).total and all(a.kind == SCALAR for a in op.args + op.results) \
                    and not any(a in grouped for a in op.args):
                region.ops.remove(op)
                moved.append(op)
                inside.difference_update(op.results)
                continue
            if not group:
                groups.append((group, region, path))
            group.append(op)
            grouped.update(op.results)

    scan(loop.body, [])
    for group, region, path in groups:
        _memoize(loop, group, region, path, memos)
    return moved


def _memoize(loop: Op, group: list[Op], region: Region, path: list[tuple[Op, Region]], memos: dict) -> None:
    """Replace the ops of ``group`` in ``region`` of ``loop``'s body by ``if memo is None:``
    followed by them, each result carried by the loop (and out of the ``if`` arms on
    ``path``) and None at first."""
    body = loop.body
    fill_then, fill_else = Region(), Region()
    fill = Op(OpKind.IF, [], [], regions=[fill_then, fill_else], line=group[0].line, file=group[0].file)
    index = region.ops.index(group[0])
    for op in group:
        region.ops.remove(op)
        fill_then.ops.append(op)
    outs = [op.result for op in group]
    for result in outs:
        hint = result.hint or temp_name(next(op for op in group if op.result is result))
        carried = Value(hint)
        if loop.kind is OpKind.WHILE:  # a while loop's condition takes the carried values too
            loop.cond.params.append(Value(hint))
        loop.args.append(Value(hint, const=None))
        body.params.append(carried)
        loop.results.append(Value(hint))
        memo = _like(result, hint)
        fill_then.yields.append(result)
        fill_else.yields.append(carried)
        fill.results.append(memo)
        if result is outs[0]:
            test = Op(OpKind.CALL, [carried, Value(None, const=None)], [Value("_unset")], fn=operator.is_,
                      line=group[0].line, file=group[0].file, adjoint=group[0].adjoint)
            fill.args = [test.result]
        current = memo
        memos[memo] = (loop, loop.results[-1])  # the memo's value once set: the loop's final one
        for branch, arm in reversed(path):  # pass the memo out of each enclosing if arm
            for sub in branch.regions:
                sub.yields.append(current if sub is arm else carried)
            current = _like(result, hint)
            branch.results.append(current)
        body.yields.append(current)
    region.ops[index:index] = [test, fill]
    for result, memo in zip(outs, fill.results):
        _rename_after(region, index + 2, result, memo)


def _like(v: Value, hint: str) -> Value:
    return Value(hint, aval=Abstract(v.kind, v.shape, integer=v.integer))


_APPEND, _POP = Method("append"), Method("pop")


def _unstack_memos(fn: Function, memos: dict[Value, tuple[Op, Value]]) -> None:
    """A memo pushed on a stack each iteration is one value: where the stack is only popped
    after the loop (by the backward sweep), read the loop's final memo instead of recording."""
    pushes: dict[Value, list[Op]] = {}
    pops: dict[Value, list[tuple[Op, Region]]] = {}
    other: set[Value] = set()
    for op, region in walk(fn.body):
        if not op.args:
            continue
        if calls(op, _APPEND, 2) and op.args[1] in memos:
            pushes.setdefault(op.args[0], []).append(op)
        elif calls(op, _POP, 1):
            pops.setdefault(op.args[0], []).append((op, region))
        else:
            other.add(op.args[0])
        other.update(op.args[1:])
    place = {op: (region, i) for region in _all_regions(fn.body) for i, op in enumerate(region.ops)}
    holder = {sub: op for op in place for sub in op.regions}  # the op each region belongs to
    replace: dict[Value, Value] = {}
    removed: set[Op] = set()
    for stack, appends in pushes.items():
        loops = {memos[op.args[1]] for op in appends}
        if stack in other or len(loops) != 1:
            continue
        loop, final = loops.pop()
        if loop not in place or not all(_after(region, loop, place, holder) for _, region in pops.get(stack, [])):
            continue
        for op, _ in pops.get(stack, []):
            replace[op.result] = final
            removed.add(op)
        removed.update(appends)
    for region in {place[op][0] for op in removed}:
        region.ops[:] = [op for op in region.ops if op not in removed]
    substitute(fn, replace)


def _all_regions(body: Region) -> list[Region]:
    return [body] + [sub for op, _ in walk(body) for sub in op.regions]


def _after(region: Region, loop: Op, place: dict[Op, tuple[Region, int]], holder: dict[Region, Op]) -> bool:
    """Whether ``region`` is the region holding ``loop`` or nested in an op after it there
    (``place``: each op's region and index; ``holder``: each region's op): a climb through the
    regions around ``region``, as deep as the nesting of the source."""
    home, index = place[loop]
    while region is not home:
        op = holder.get(region)
        if op is None:
            return False
        region, at = place[op]
        if region is home:
            return at > index
    return True


def _rename_after(region: Region, start: int, old: Value, new: Value) -> None:
    """Read ``new`` instead of ``old`` in ``region`` from op ``start`` on (nested regions too)."""
    def fix(values: list[Value]) -> list[Value]:
        return [new if v is old else v for v in values]

    def visit(ops: list[Op]) -> None:
        for o in ops:
            o.args = fix(o.args)
            for sub in o.regions:
                visit(sub.ops)
                sub.yields = fix(sub.yields)

    visit(region.ops[start:])
    region.yields = fix(region.yields)


# ----------------------------------------------------------------------------- masked sums

# A cotangent masked by a condition: ``(c, if_true, if_false)``, each arm None (zero) or a
# function building the arm's value with a builder (``np.where(c, p, 0.0) * x``: ``p * x``).
Masked = tuple


def merge_masked_sums(fn: Function) -> None:
    """Cotangents masked by one condition are summed inside one ``np.where`` (which costs as
    much as several products): ``np.where(gt, 0.0, 0.5) + np.where(gt, 2.0, 0.0) * x`` (the
    derivative of ``np.where(x > 0, x * x, 0.5 * x)``) becomes ``np.where(gt, 2.0 * x, 0.5)``.

    Each element gets the same terms summed in the same order, less the zeros of the branch
    not taken -- so a branch's derivative that is inf or NaN where that branch is not taken
    no longer makes the element NaN. ``(a + where(c, p, 0)) + where(c, 0, q)`` (or
    ``(where(c, p, 0) + a) + ...``) becomes ``a + where(c, p, q)``: exact too, since at each
    element one of the two is a zero."""
    uses = use_counts(fn)
    touched = _touched_by_updates(fn)
    builder = passes.adjoint_builder(fn.body)
    builder.producer = definitions(fn.body)
    replace: dict[Value, Value] = {}

    def visit(region: Region) -> None:
        ops, region.ops = region.ops, []
        builder.push(region)
        for op in ops:
            for sub in op.regions:
                visit(sub)
            region.ops.append(op)
            if calls(op, arity=2) and primitives.lookup(op.fn).accumulates and op.adjoint:
                merged = _merge_sum(builder, op, uses, touched, replace)
                if merged is not None:
                    replace[op.result] = merged
        builder.pop()

    visit(fn.body)
    substitute(fn, replace)


def _merge_sum(b: Builder, add: Op, uses: dict[Value, int], touched: set[Value],
               replace: dict[Value, Value]) -> Value | None:
    """The merged value of ``add`` (``x + y`` or ``add_into(x, y)``), built after it, or None."""
    if add.result.dtype is not shapes.F64 or add.result.kind == SCALAR:
        return None
    x, y = (_final(a, replace) for a in add.args)
    right = _masked(b, y, uses, touched)
    if right is None:
        return None
    left = _masked(b, x, uses, touched)
    if left is not None and left[0] is right[0]:  # where(c, p, q) + where(c, r, s)
        return _emit_merged(b, add, left, right, None, None, uses)
    split = _complementary_split(b, add, x, right, uses, touched, replace)
    return None if split is None else _emit_merged(b, add, split[2], right, *split[:2], uses)


def _complementary_split(b: Builder, add: Op, x: Value, right: Masked, uses: dict[Value, int],
                         touched: set[Value], replace: dict[Value, Value]) -> tuple | None:
    """``(inner, rest, left)`` if ``x`` is ``inner``: ``rest + left`` (either order) or
    ``add_into(rest, left)``, computed for ``add`` alone, with ``left`` masked by the same
    condition as ``right`` and zero wherever ``right`` is not."""
    inner = match(b.producer, x, add.fn, 2)
    if inner is None or uses.get(x) != 1 or inner not in b.region.ops:
        return None
    first, second = (_final(v, replace) for v in inner.args)
    orders = [(first, second)] + ([(second, first)] if add.fn is operator.add else [])  # add_into(acc, g)
    for rest, part in orders:
        left = _masked(b, part, uses, touched)
        if left is None or left[0] is not right[0] or not _complementary(left, right):
            continue
        if add.fn is runtime.add_into and uses.get(rest) != 1:  # nothing else sees rest's updates
            return None
        return inner, rest, left
    return None


def _emit_merged(b: Builder, add: Op, left: Masked, right: Masked, inner: Op | None, rest: Value | None,
                 uses: dict[Value, int]) -> Value | None:
    """Build ``where(c, ...)`` of the two masked terms (plus ``rest``) after ``add``; drop the
    in-place updates it replaces. None, building nothing, if it would not be float64."""
    start = len(b.region.ops)
    b.line, b.file = add.line, add.file
    merged = _where_of_sum(b, left, right, add.result.kind)
    if merged.dtype is not shapes.F64:
        del b.region.ops[start:]
        return None
    if rest is None and b.producer.get(merged) in b.region.ops[start:] and merged.hint is None:
        merged.hint = add.result.hint
    for update in (add, inner):
        if update is not None and update.effect:  # add_into: the merged sum replaces its update
            b.region.ops.remove(update)
    if rest is not None:
        uses[merged] = 1
        merged = b.call(add.fn, [rest, merged], hint=add.result.hint, kind=add.result.kind, effect=add.effect)
    uses[merged] = uses.get(add.result, 0)
    return merged


def _masked(b: Builder, v: Value, uses: dict[Value, int], touched: set[Value]) -> Masked | None:
    """``v`` as a masked cotangent, if it is ``np.where(c, p, q)`` -- or such a where times,
    divided by or negated -- computed next to the sum for nothing else."""
    op = match(b.producer, v)
    if op is None or uses.get(v) != 1 or v in touched or op not in b.region.ops or touched.intersection(op.args):
        return None
    if calls(op, np.where, 3):
        c, p, q = op.args
        arms = tuple(None if is_const(a, 0) else _value_of(a) for a in (p, q))
        return None if arms == (None, None) else (c, *arms)
    scaled = (0, 1) if op.fn is operator.mul else (0,) if op.fn in (operator.truediv, operator.neg) else ()
    for i in scaled:
        inner = _masked(b, op.args[i], uses, touched)
        if inner is not None:
            return inner[0], _lifted(op, i, inner[1]), _lifted(op, i, inner[2])
    return None


def _value_of(v: Value) -> Any:
    return lambda b: v


def _lifted(op: Op, i: int, arm: Any) -> Any:
    """``op`` applied with ``arm`` in place of its operand ``i`` (a zero arm stays zero)."""
    if arm is None:
        return None
    return lambda b: passes._call(b, op.fn, *(arm(b) if j == i else a for j, a in enumerate(op.args)))


def _complementary(left: Masked, right: Masked) -> bool:
    """At every element one of the two masked terms is zero."""
    return (left[1] is None and right[2] is None) or (left[2] is None and right[1] is None)


def _where_of_sum(b: Builder, left: Masked, right: Masked, kind: Any) -> Value:
    arms = []
    for k in (1, 2):
        parts = [t[k](b) for t in (left, right) if t[k] is not None]
        total = parts[0] if parts else b.const(0.0)
        for p in parts[1:]:
            total = passes._call(b, operator.add, total, p)
        arms.append(total)
    return b.call(np.where, [left[0], *arms], kind=kind)


# ----------------------------------------------------------------------------- deferred sums


def defer_outer_products(fn: Function) -> None:
    """A loop that adds an outer product into a carried accumulator each iteration
    (``dW = dW + np.outer(u, v)``: the backward sweep of ``W @ h`` in a loop) instead
    collects the vectors and forms the sum after the loop, as one matrix product
    (``sum_of_outer(us, vs)``: the stacked ``us`` transposed times the stacked ``vs``)."""
    uses = use_counts(fn)
    producers = definitions(fn.body)
    replace: dict[Value, Value] = {}
    for region in [fn.body] + [sub for op, _ in walk(fn.body) for sub in op.regions]:
        for loop in [op for op in region.ops if op.is_loop]:
            _defer_in(loop, region, uses, producers, replace)
    substitute(fn, replace)


def _outer_factors(c: Value, body: Region, producers: dict[Value, Op], uses: dict[Value, int]) -> tuple | None:
    """``(u, v)`` if ``c`` is ``np.outer(u, v)`` of vectors, or ``u.T @ v`` of matrices, computed
    in ``body`` for nothing else."""
    op = match(producers, c, arity=2)
    if op is None or op not in body.ops or uses.get(c) != 1:
        return None
    u, v = op.args
    if op.fn is np.outer and u.kind == 1 and v.kind == 1:
        return u, v
    column = match(producers, u, operator.getitem, kwargs=True)
    if op.fn is operator.mul and column is not None and v.kind == 1 and column.args[0].kind == 1 \
            and column.args[1].is_const and _is_column_index(column.args[1].const):
        return column.args[0], v  # u[:, None] * v
    transposed = match(producers, u, GetAttr("T"), kwargs=True)
    if op.fn in (operator.matmul, np.matmul) and transposed is not None and transposed.args[0].kind == 2 \
            and v.kind == 2:
        return transposed.args[0], v
    return None


def _is_column_index(index: Any) -> bool:
    return type(index) is tuple and len(index) == 2 and index[0] == slice(None) and index[1] is None


def _defer_in(loop: Op, region: Region, uses: dict[Value, int], producers: dict[Value, Op],
              replace: dict[Value, Value]) -> None:
    body = loop.body
    lists: dict[Value, Value] = {}  # a value collected once, whatever sums use it
    sums: list[Op] = []
    for k in reversed(range(len(loop.results))):
        param, y = loop.carried(body)[k], body.yields[k]
        add = match(producers, y, (runtime.add_into, operator.add), 2)
        if add is None or add not in body.ops or uses.get(param) != 1 or uses.get(y) != 1 or param not in add.args:
            continue
        if loop.kind is OpKind.WHILE and uses.get(loop.carried(loop.cond)[k], 0):
            continue
        factors = _outer_factors(add.args[1] if add.args[0] is param else add.args[0], body, producers, uses)
        if factors is None:
            continue
        index = body.ops.index(add)
        body.ops.remove(add)
        for v in reversed(factors):
            if v not in lists:
                lists[v] = Value(f"{v.hint or (temp_name(producers[v]) if v in producers else 'row')}_rows")
                region.ops.insert(region.ops.index(loop), Op(OpKind.CALL, [], [lists[v]], fn=BUILD_LIST))
                body.ops.insert(index, Op(OpKind.CALL, [lists[v], v], [Value()], fn=Method("append"), effect=True))
        init, result = loop.inits[k], loop.results[k]
        zeros = match(producers, init, np.zeros, 1)
        total = Value(result.hint, result.kind)
        total.shape = result.shape
        floats = all(v.dtype is shapes.F64 for v in factors)
        if zeros is not None and uses.get(init) == 1:
            total.dtype = shapes.F64 if floats else None
            summed = [Op(OpKind.CALL, [lists[factors[0]], lists[factors[1]], zeros.args[0]], [total],
                         fn=runtime.sum_of_outer, line=add.line, file=add.file, adjoint=add.adjoint)]
        else:
            part = Value(None, result.kind)
            summed = [Op(OpKind.CALL, [lists[factors[0]], lists[factors[1]]], [part], fn=runtime.sum_of_outer,
                         line=add.line, file=add.file, adjoint=add.adjoint),
                      Op(OpKind.CALL, [init, part], [total], fn=operator.add, line=add.line, file=add.file,
                         adjoint=add.adjoint)]
            total.dtype = shapes.F64 if floats and init.dtype is shapes.F64 else None
        sums.append(summed[0])
        after = region.ops.index(loop) + 1
        region.ops[after:after] = summed
        replace[result] = total
        loop.keep_results([i for i in range(len(loop.results)) if i != k])
    _stack_shared_rows(region, loop, sums)


def defer_element_sums(fn: Function) -> None:
    """A ``for`` loop that adds numbers into one element of a carried array each iteration
    (``dx[0] += g``: the backward sweep of ``x[0]`` read in a loop) instead carries their sum as
    a number, added into the element once after the loop: an element of an array is read and
    written through NumPy's item protocol each time, a carried number is one float addition."""
    uses = use_counts(fn)
    producers = definitions(fn.body)
    replace: dict[Value, Value] = {}
    for region in _all_regions(fn.body):
        for loop in [op for op in region.ops if op.kind is OpKind.FOR]:
            for k in range(len(loop.results)):
                _sum_element_in(loop, k, region, uses, producers, replace)
    substitute(fn, replace)


def _element_updates(loop: Op, k: int, uses: dict[Value, int], producers: dict[Value, Op]) -> list[Op] | None:
    """The chain ``add_at_index(... add_at_index(p, i, g1) ..., i, gn)`` of ops of the loop's
    body from its ``k``-th carried array ``p`` to what the body yields for it, when that is all
    the body does with ``p``: the same index ``i``, an int fixed for the whole loop, numbers
    ``g``, each link used only by the next."""
    body = loop.body
    param, v = loop.carried(body)[k], body.yields[k]
    chain: list[Op] = []
    while v is not param:
        op = match(producers, v, runtime.add_at_index, 3)
        if op is None or op not in body.ops or uses.get(v) != 1 or op.args[2].kind != SCALAR:
            return None
        chain.append(op)
        v = op.args[0]
    if not chain or uses.get(param) != 1 or type(param.kind) is not int:
        return None
    index = chain[0].args[1]
    fixed = index.is_const and type(index.const) is int or index.integer and producers.get(index) not in body.ops
    if not fixed or any(op.args[1] is not index for op in chain) or index in body.params:
        return None
    return chain[::-1]


def _sum_element_in(loop: Op, k: int, region: Region, uses: dict[Value, int], producers: dict[Value, Op],
                    replace: dict[Value, Value]) -> None:
    chain = _element_updates(loop, k, uses, producers)
    if chain is None:
        return
    param, init, result = loop.carried(loop.body)[k], loop.inits[k], loop.results[k]
    index = chain[0].args[1]
    number = Abstract(SCALAR, ())
    zero = Value(None, SCALAR, 0.0, aval=number)
    region.ops.insert(region.ops.index(loop), Op(OpKind.CONST, [], [zero], fn=0.0))
    loop.args[1 + k] = zero
    param.aval = number
    for op in chain:  # dx_1 = add_at_index(dx, i, g)  becomes  dx_1 = dx + g, on numbers
        op.fn, op.args, op.effect = operator.add, [op.args[0], op.args[2]], False
        op.result.aval = number
    summed = Value(result.hint and result.hint + "_sum", SCALAR, aval=number)
    loop.results[k] = summed
    total = Value(result.hint, aval=result.aval)
    region.ops.insert(region.ops.index(loop) + 1, Op(
        OpKind.CALL, [init, index, summed], [total],
        fn=runtime.add_at_index, effect=True, line=chain[0].line, file=chain[0].file, adjoint=True))
    replace[result] = total


def _stack_shared_rows(region: Region, loop: Op, sums: list[Op]) -> None:
    """Rows that several sums read are stacked once, right after the loop."""
    readers: dict[Value, list[Op]] = {}
    for op in sums:
        for rows in op.args[:2]:
            readers.setdefault(rows, []).append(op)
    for rows, ops in readers.items():
        if len(ops) < 2:
            continue
        matrix = Value(rows.hint.replace("_rows", "s") if rows.hint else None)
        region.ops.insert(region.ops.index(loop) + 1, Op(OpKind.CALL, [rows], [matrix], fn=runtime.stacked,
                                                         line=ops[0].line, file=ops[0].file, adjoint=True))
        for op in ops:
            op.args = [matrix if a is rows else a for a in op.args]


def hand_over_fresh_gradients(fn: Function) -> None:
    """Gradients this code made are returned without a copy: ``grad_like(dW, W)`` (a copy into
    a new array) becomes ``as_grad(dW, W)`` (the array itself when its shape and dtype fit)
    where nothing else reads ``dW``, and ``as_grad`` goes where the shape and the float64
    dtype are known to fit."""
    producers = definitions(fn.body)
    uses = use_counts(fn)
    readers: dict[Value, list[Op]] = {}
    for op, _ in walk(fn.body):
        for a in op.args:
            readers.setdefault(a, []).append(op)
    replace: dict[Value, Value] = {}
    for op, _ in walk(fn.body):
        if not calls(op, (runtime.grad_like, runtime.as_grad)):
            continue
        g, x = op.args
        if not passes.fresh_array(g, producers):
            continue
        if op.fn is runtime.grad_like:
            v, user = g, op
            while uses.get(v) == 1 and match(producers, v, runtime.unbroadcast, kwargs=True) is not None:
                v, user = producers[v].args[0], producers[v]
            if not _read_only_into_new_arrays(v, user, readers, uses):
                continue
            op.fn = runtime.as_grad
        fits = type(x.kind) is int and x.kind >= 1 and g.kind == x.kind and shapes.same(g.shape, x.shape)
        if fits and g.dtype is shapes.F64 and x.dtype is shapes.F64:
            replace[op.result] = g
    substitute(fn, replace)


def _read_only_into_new_arrays(v: Value, user: Op, readers: dict[Value, list[Op]], uses: dict[Value, int]) -> bool:
    """Whether every read of ``v`` but ``user``'s is a call making a new array of it (``v > 0.1``):
    then ``v`` may be handed over to the caller -- nothing else holds it or a view of it."""
    others = [o for o in readers.get(v, []) if o is not user]
    if uses.get(v, 0) != len(others) + 1:  # (a yield reads it, or user reads it twice)
        return False
    return all(o.kind is OpKind.CALL and not o.effect and primitives.lookup(o.fn).alias == primitives.FRESH
               and not primitives.lookup(o.fn).updates for o in others)


# ----------------------------------------------------------------------------- in place

def accumulate_in_place(fn: Function) -> None:
    """``dx_2 = dx + part`` becomes ``dx += part`` where ``dx`` is a float64 array the backward
    sweep just made in the same region, read by nothing else, and ``part`` fits into it (same shape, a dtype that
    does not widen it): no new array for each contribution."""
    producers = definitions(fn.body)
    uses = use_counts(fn)
    region_of = {op: region for op, region in walk(fn.body)}
    fresh: dict[Value, bool] = {}  # passes.new_array's answers (turning add into iadd keeps them true)
    for op, region in walk(fn.body):
        if not calls(op, operator.add) or not op.adjoint or op.effect:
            continue
        acc, part = op.args
        # (made in this very region: one made before a loop must not grow at each iteration)
        if region_of.get(producers.get(acc)) is not region or not passes.new_array(acc, producers, fresh):
            continue
        fits = (type(acc.kind) is int and acc.kind >= 1 and uses.get(acc) == 1 and acc.dtype is shapes.F64
                and shapes.same(acc.shape, op.result.shape)
                and shapes.fits_float64(part))
        if fits:
            op.fn, op.effect = operator.iadd, True  # codegen: acc += part; the result is acc itself


# ----------------------------------------------------------------------------- stores in place

def store_in_place(fn: Function) -> None:
    """``y = setitem(y, i, v)`` (a copy of ``y`` with ``v`` at ``i``) becomes ``y[i] = v`` in
    place where the array is this code's own and its old value is dead: made by a call that
    returns a new array (``np.zeros``, ``.copy()``, arithmetic, an earlier ``setitem``), or a
    loop-carried value starting as one and yielded as the stored one, and read before the store
    only by calls whose results share no memory with it (an element, a new array), after it not
    at all -- no view kept, no stack, not returned. A loop whose carried array starts as one
    that is not its own (an argument) copies it once, before the loop."""
    stores = _Stores(fn)
    stores.region(fn.body, frozenset())
    for op in stores.converted:
        op.fn, op.effect = runtime.store, True
    _materialize(fn, stores.materialize)


class _Stores:
    """The decisions of :func:`store_in_place`: which ``setitem`` ops write in place, and which
    loop-carried arrays are copied once before their loop."""

    def __init__(self, fn: Function):
        self.fn = fn
        self.converted: set[Op] = set()
        self.owned_results: set[Value] = set()  # loop results known to be their own array
        self.relied: set[Value] = set()  # loop params a conversion leans on being their own
        self.materialize: set[Op] = set()  # views of a stored-into array read before the store: copied
        self.views: list[Op] = []  # such views met by the last chain
        self.producers = definitions(fn.body)
        self.positions: dict[Region, dict[Value, int]] = {}  # each region's values -> the index of their op
        self.walked: dict[tuple, tuple[Any, list[Op]]] = {}  # chain's answers, step by step

    def forget(self) -> None:
        """Drop what :meth:`chain` remembered (ops were inserted, or decisions taken back)."""
        self.positions.clear()
        self.walked.clear()

    def region(self, region: Region, assumed: frozenset) -> None:
        """Decide for the ops of ``region`` which stores write in place (``assumed``: the params
        taken to be this code's own arrays)."""
        users = _region_uses(region)
        k = 0
        while k < len(region.ops):
            op = region.ops[k]
            if op.is_loop:
                k += self.loop(op, region, k, users, assumed)  # (past the copies it put before the loop)
            elif op.kind is OpKind.IF:
                for sub in op.regions:  # (arrays made in there; what comes from out here stays copied)
                    self.region(sub, frozenset())
            elif calls(op, runtime.setitem, 3) and type(op.args[0].kind) is int:
                root = self.chain(op.args[0], region, k, users, assumed)
                if root is not None:
                    self.converted.add(op)
                    self.materialize.update(self.views)
                    if root is not True:
                        self.relied.add(root)
            k += 1

    def loop(self, loop: Op, region: Region, k: int, users: dict, assumed: frozenset) -> int:
        """Decide for a loop at op ``k`` of ``region``: which carried arrays its body may
        write in place. Returns how many ops it inserted before the loop (copies)."""
        body = loop.body
        params, inits = loop.carried(body), loop.inits
        slots = {j for j, p in enumerate(params) if type(p.kind) is int and _stores_into(body, p)}
        if loop.kind is OpKind.WHILE:  # (the condition runs before the body: it may read the array)
            self.region(loop.cond, assumed)
            cond_users = _region_uses(loop.cond)
            in_cond = loop.carried(loop.cond)
            slots = {j for j in slots if _read_plainly(in_cond[j], loop.cond, cond_users, self.producers)}
        saved = (set(self.converted), set(self.owned_results), set(self.relied), set(self.materialize))
        while True:
            self.converted, self.owned_results, self.relied, self.materialize = (set(s) for s in saved)
            self.forget()
            inner = frozenset(params[j] for j in slots)
            self.region(body, assumed | inner)
            body_users = _region_uses(body)
            kept = set()
            for j in slots:
                if body.yields.count(body.yields[j]) == 1 and \
                        self.chain(body.yields[j], body, len(body.ops), body_users, assumed | inner) is not None:
                    kept.add(j)
                    self.materialize.update(self.views)
            if kept == slots:
                break
            slots = kept
        inserted = 0
        for j in slots:
            p, init = params[j], inits[j]
            root = self.chain(init, region, k, users, assumed) if loop.args.count(init) == 1 else None
            own = root is not None
            if own:
                self.materialize.update(self.views)
            if not own and p in self.relied:
                copy = Value(init.hint, aval=init.aval)
                region.ops.insert(k, Op(OpKind.CALL, [init], [copy], fn=Method("copy"), line=loop.line,
                                        file=loop.file, adjoint=loop.adjoint))
                loop.args[j + (loop.kind is OpKind.FOR)] = copy  # (a for loop's first argument: its iterable)
                users.clear()
                users.update(_region_uses(region))
                self.forget()
                k += 1
                inserted += 1
                own = True
            elif own and root is not True and p in self.relied:
                self.relied.add(root)  # (a loop inside a loop: the outer carried array must be its own too)
            if own:
                self.owned_results.add(loop.results[j])
        return inserted

    def chain(self, v: Value, region: Region, at: int, users: dict, assumed: frozenset) -> Any:
        """Whether the array ``v`` (read at op ``at`` of ``region``, or by its yields when ``at``
        is past its ops) is this code's own, reachable only through ``v`` there: None if not;
        else the assumed param it descends from, or True (a new array). ``self.views`` gets the
        views of it (and of what it descends from) read before ``at``.

        Each step back through an earlier store is remembered, so a chain of N stores is walked
        once, not once per store (the answer from a store back is the one its own store had)."""
        ops = region.ops
        if region not in self.positions:
            self.positions[region] = {r: i for i, op in enumerate(ops) for r in op.results}
        producers = self.positions[region]
        path: list[tuple[tuple, list[Op]]] = []  # the steps walked, each with the views it met
        while True:
            key = (region, v, at, assumed)
            if key in self.walked:
                answer, views = self.walked[key]
                break
            views = _dead_but_at(v, at, users, ops, self.producers)
            step = self._step(v, views, producers, ops, assumed)
            if type(step) is tuple:  # (the array it updates, and where): one more step back
                path.append((key, views))
                v, at = step
                continue
            answer, views = step, views if step is not None else []
            self.walked[key] = (answer, views)
            break
        for key, own in reversed(path):
            views = own + views if answer is not None else []
            self.walked[key] = (answer, views)
        self.views = views
        return answer

    def _step(self, v: Value, views: list[Op] | None, producers: dict[Value, int], ops: list[Op],
              assumed: frozenset) -> Any:
        """One step of :meth:`chain` at ``v``: its answer, or ``(array, index)`` of the store or
        in-place update that made ``v`` from an earlier array, to go on with."""
        if views is None:
            return None
        if v in assumed:
            return v
        i = producers.get(v)
        if i is None:
            return None
        op = ops[i]
        if op.kind is OpKind.FOR:
            return True if v in self.owned_results else None
        if op.kind is not OpKind.CALL or "copy" in op.kwnames:
            return None
        record = primitives.lookup(op.fn)
        if op in self.converted or (record.updates and record.alias == primitives.ITSELF and op.effect):
            return op.args[0], i
        return True if record.alias == primitives.FRESH and not record.updates else None


def _stores_into(region: Region, param: Value) -> bool:
    """Whether ``region`` (or a region in it) has a ``setitem`` and reads ``param``: a slot worth
    deciding for."""
    return any(calls(op, runtime.setitem, 3) for op, _ in walk(region)) and any(param in op.args for op in region.ops)


def _region_uses(region: Region) -> dict[Value, list]:
    """Where each value is read in ``region``: the index of a direct reader, ``("in", k)`` for a
    read inside op ``k``'s regions, ``len(region.ops)`` for the region's yields."""
    users: dict[Value, list] = {}
    for k, op in enumerate(region.ops):
        for a in op.args:
            users.setdefault(a, []).append(k)
        for sub in op.regions:
            for inner, _ in walk(sub):
                for a in inner.args:
                    users.setdefault(a, []).append(("in", k))
            for r in [sub] + [s for inner, _ in walk(sub) for s in inner.regions]:
                for y in r.yields:
                    users.setdefault(y, []).append(("in", k))
    for y in region.yields:
        users.setdefault(y, []).append(len(region.ops))
    return users


def _dead_but_at(v: Value, at: int, users: dict, ops: list[Op], producers: dict[Value, Op]) -> list[Op] | None:
    """Whether ``v`` is read once at ``at`` (an op index, or the yields) and elsewhere only
    before it, by calls whose results share no memory with it -- or by views of it (``dy[1:3]``),
    which are then copied (the ops returned): None if not."""
    seen_at = 0
    views = []
    for use in users.get(v, ()):
        if use == at:
            seen_at += 1
            continue
        if type(use) is not int or use > at:
            return None
        if _plain_read(ops[use], v, producers):
            continue
        if not _view_read(ops[use], v):
            return None
        if not _dead_before(ops[use].result, at, users, ops, producers):
            views.append(ops[use])  # (a view still read after the write: copied when it is made)
    return views if seen_at == 1 else None


def _dead_before(view: Value, at: int, users: dict, ops: list[Op], producers: dict[Value, Op]) -> bool:
    """Whether the view ``view`` is read only before op ``at``, by calls keeping nothing of it."""
    return all(type(use) is int and use < at and _plain_read(ops[use], view, producers)
               for use in users.get(view, ()))


def _read_plainly(v: Value, region: Region, users: dict, producers: dict[Value, Op]) -> bool:
    """Whether every read of ``v`` in ``region`` keeps nothing of its memory (see :func:`_plain_read`)."""
    return all(type(use) is int and use < len(region.ops) and _plain_read(region.ops[use], v, producers)
               for use in users.get(v, ()))


def _view_read(op: Op, v: Value) -> bool:
    """``op`` returns a view of the array ``v`` and changes nothing (``v[1:3]``, ``v[i]`` of a matrix)."""
    if op.kind is not OpKind.CALL or op.effect or len(op.results) != 1:
        return False
    record = primitives.lookup(op.fn)
    return record.alias == primitives.VIEW and record.pure and not record.updates and \
        len(op.args) > record.viewed and op.args[record.viewed] is v and op.args.count(v) == 1


def _materialize(fn: Function, views: set[Op]) -> None:
    """Read each of ``views`` through a copy made right after it (``part = dy[1:3].copy()``), so
    that a later store into the array it views leaves what was read as it was."""
    for op, region in list(walk(fn.body)):
        if op not in views:
            continue
        view = op.result
        copy = Value(view.hint or "part", aval=view.aval)
        # (an effect: made here, before the store, never folded into an expression after it)
        made = Op(OpKind.CALL, [view], [copy], fn=Method("copy"), line=op.line, file=op.file, adjoint=op.adjoint,
                  effect=True)
        region.ops.insert(region.ops.index(op) + 1, made)
        for other, _ in walk(fn.body):
            if other is not made:
                other.args = [copy if a is view else a for a in other.args]
        for sub in [fn.body] + [s for o, _ in walk(fn.body) for s in o.regions]:
            sub.yields = [copy if y is view else y for y in sub.yields]


_METADATA = {"shape", "ndim", "size", "dtype"}


def _plain_read(op: Op, v: Value, producers: dict[Value, Op]) -> bool:
    """``op`` reads ``v`` and keeps nothing of its memory: an element, a new array, a size."""
    if op.kind is not OpKind.CALL:
        return False
    record = primitives.lookup(op.fn)
    if record.updates or (op.effect and not record.reads_only):
        return False
    if op.fn is operator.getitem and op.args[0] is v and op.args[1] is not v:
        return op.result.kind == SCALAR or op.result.integer
    if isinstance(op.fn, GetAttr):
        return op.fn.name in _METADATA
    return record.alias == primitives.FRESH and "copy" not in op.kwnames
