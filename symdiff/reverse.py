"""Reverse mode on structured SSA: turn a primal function into one that runs the forward
sweep and then the backward sweep, returning gradients.

* Straight-line code: ops are walked in reverse and each active op's VJP rule is inlined; the
  first contribution to an adjoint is used as is, later ones are added.
* ``if`` outside loops: the adjoint is an ``if`` on the same condition (still in scope).
* Loops: the backward sweep is a loop running the iterations in reverse. Values that the
  backward body reads and that the forward body defines are pushed on a per-value stack
  (a Python list) right where they are defined and popped at the start of the matching
  backward region -- only what the backward sweep reads is recorded. ``while`` loops also
  count their iterations. ``if`` inside loops is handled by the same mechanism: its
  condition is a value defined in the loop body, so it is recorded when the backward reads it.
"""

from __future__ import annotations

import linecache
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import advice, optimize, passes, rules, runtime, shapes, tracing
from .errors import NoRuleError, SymdiffError, located
from .ir import (
    BUILD_LIST,
    BUILD_SLICE,
    BUILD_TUPLE,
    SCALAR,
    SEQUENCE,
    UNDEFINED,
    Abstract,
    BuildDict,
    Builder,
    Function,
    Method,
    Op,
    OpKind,
    Region,
    Struct,
    Value,
    definitions,
    temp_name,
)
from .patterns import match
from .tracing import Sym, as_value, run, shape_of


@dataclass
class Backward:
    """The backward region that mirrors a forward region, and the values popped into it."""

    region: Region
    popped: dict[Value, Value] = field(default_factory=dict)


VjpOf = Callable[[Callable], Callable]  # a function -> its generated VJP, ``vjp_f(*args, cotangent)``


class Reverse:
    def __init__(self, fn: Function, wrt: list[Value], recursive_vjp: VjpOf | None = None):
        self.fn = fn
        self.recursive_vjp = recursive_vjp  # for recursive calls, which get no inlined rule
        self.wrt = set(wrt)
        self.active = passes.activity(fn, wrt, rules.differentiable)
        self.b = passes.adjoint_builder(fn.body)
        self.def_region: dict[Value, Region] = {}
        self.parent: dict[Region, tuple[Op, Region]] = {}
        self.in_loop: set[Region] = set()
        self.backward: dict[Region, Backward] = {}
        self.defs = definitions(fn.body)
        self.exported: dict[Value, Value] = {}
        self.owned: dict[Value, Value] = {}  # fresh adjoint arrays -> the one value they are the adjoint of
        self.accumulators: set[Value] = set()  # loop-carried adjoint arrays only this sweep holds
        # loop-carried adjoint arrays of fresh zeros that each iteration writes once, at its own
        # index (the loop's int target): the index it writes at, where an assignment does
        self.written_once_at: dict[Value, Value] = {}
        self.handed_over: set[Value] = set()  # arrays returned to the caller as a gradient
        self.floats: dict[Value, bool] = {}  # passes.surely_float's answers (on the adjoint code)
        self.primal_floats: dict[Value, bool] = {}  # and on the primal
        self.contexts: list[Value | None] = []  # the errstates the backward sweep is in, innermost last
        self._index(fn.body, None, False)

    def _index(self, region: Region, owner: tuple[Op, Region] | None, in_loop: bool) -> None:
        if owner is not None:
            self.parent[region] = owner
        if in_loop:
            self.in_loop.add(region)
        for p in region.params:
            self.def_region[p] = region
        for op in region.ops:
            for r in op.results:
                self.def_region[r] = region
            for sub in op.regions:
                self._index(sub, (op, region), in_loop or op.is_loop)

    # ------------------------------------------------------------------ reading primal values

    def primal(self, v: Value) -> Value:
        """The value to read ``v`` through in the backward sweep: popped from a stack in loops,
        exported from ``if`` arms outside loops."""
        region = self.def_region.get(v)
        if v.is_const or region is None or region is self.fn.body:
            return v
        if region not in self.in_loop:
            return self.primal(self._export(v, region))
        info = self.backward[region]
        if v not in info.popped and self._recomputable(v, region):
            info.popped[v] = self._recompute(v, info)
        if v not in info.popped:
            stack = self._new_stack(v, region)
            self._insert_after_definition(v, region, Op(OpKind.CALL, [stack, v], [Value()],
                                                        fn=Method("append"), effect=True))
            popped = _like(v)
            info.region.ops.insert(0, Op(OpKind.CALL, [stack], [popped], fn=Method("pop"), effect=True,
                                         adjoint=True))
            info.popped[v] = popped
        return info.popped[v]

    def _recomputable(self, v: Value, region: Region, depth: int = 0) -> bool:
        """Whether ``v``, defined in loop region ``region``, is int arithmetic (``i - 1``,
        ``2 * i + 1``), an index built of ints, an element of an argument (``x[i - 1]``),
        arithmetic on numbers and such elements (``x[0] * i``), or a comparison or builtin
        ``max``/``min`` of two of them (``x[i] > 0``), of values the backward sweep reads without
        a stack: constants, values from outside ``region``, the loop index, or such values
        themselves."""
        op = self.defs.get(v)
        if op is None or op.kind is not OpKind.CALL or op.kwnames or depth > 8:
            return False
        element = op.fn is operator.getitem and op.args[0] in self.fn.body.params and v.pytype is np.float64
        display = op.fn in (BUILD_TUPLE, BUILD_SLICE) and self._basic_index(v)  # (i, j - 1), i:i + 2
        arithmetic = op.fn in _INT_ARITHMETIC and self._cheap_number(v)  # x[0] * i, 0.5 * i
        # x[i] > 0, max(x[i], 0.1): a comparison or the larger of two such numbers (a branch's
        # condition, a kink's mask) costs less than pushing and popping it
        selection = op.fn in _SCALAR_SELECTIONS and len(op.args) == 2 and all(map(self._cheap_number, op.args))
        if not (element or display or arithmetic or selection):
            return False  # (an element of an argument, x[i]: arguments are never written into)
        if not all(a.integer or (element or display) and self._basic_index(a)
                   or arithmetic and not v.integer and self._cheap_number(a)
                   or selection for a in op.args[element:]):
            return False
        loop = self.parent.get(region)
        index = loop[0].target if loop is not None and loop[0].kind is OpKind.FOR else None
        return all(a.is_const or a is index or self.def_region.get(a) is not region
                   or self._recomputable(a, region, depth + 1) for a in op.args)

    def _cheap_number(self, v: Value) -> bool:
        """Whether ``v`` is surely a Python int or float or a NumPy float64 scalar (an element of a
        float64 array): arithmetic on two of them, comparing them or taking the larger is one
        cheap scalar step, cheaper than pushing and popping its result."""
        return v.integer or v.pytype is np.float64 or v.is_const and type(v.const) in (int, float) \
            or v.kind == SCALAR and passes.surely_float(v, self.defs, self.primal_floats)

    def _recompute(self, v: Value, info: Backward) -> Value:
        """``v`` computed again in the backward region ``info`` from what it reads (see
        :meth:`_recomputable`), after the values it reads are there."""
        op = self.defs[v]
        args = [self.primal(a) for a in op.args]
        ops = info.region.ops
        after = max((i + 1 for i, o in enumerate(ops) if any(r in args for r in o.results)), default=0)
        again = _like(v)
        ops.insert(after, Op(OpKind.CALL, args, [again], fn=op.fn, adjoint=True, line=op.line, file=op.file))
        return again

    def _export(self, v: Value, arm: Region) -> Value:
        """Make ``v``, defined in an ``if`` arm, a result of that ``if`` (the other arm yields
        UNDEFINED): the backward ``if`` on the same condition reads it only where it exists."""
        if v not in self.exported:
            op, outer = self.parent[arm]
            result = _like(v)
            op.results.append(result)
            for sub in op.regions:
                sub.yields.append(v if sub is arm else Value(None, None, UNDEFINED))
            self.def_region[result] = outer
            self.defs[result] = op
            self.exported[v] = result
        return self.exported[v]

    def _new_stack(self, v: Value, region: Region) -> Value:
        """An empty list created just before the outermost loop enclosing ``region``."""
        outer = None
        while region in self.parent and region is not self.fn.body:
            outer, region = self.parent[region]
        op = self.defs.get(v)
        stack = Value(f"{v.hint or (temp_name(op) if op else 't')}_stack")
        region.ops.insert(region.ops.index(outer), Op(OpKind.CALL, [], [stack], fn=BUILD_LIST))
        return stack

    def _insert_after_definition(self, v: Value, region: Region, push: Op) -> None:
        if v in region.params:
            region.ops.insert(0, push)
            return
        index = next(i for i, op in enumerate(region.ops) if v in op.results)
        region.ops.insert(index + 1, push)

    # ------------------------------------------------------------------ adjoint bookkeeping

    def accumulate(self, adj: dict[Value, Value], v: Value, g: Value) -> None:
        if g not in self.b.producer:
            pass  # a primal value (x[1:] is the cotangent of x[:-1] in x[1:] * x[:-1]): keeps its name
        elif v.hint and (g.hint is None or g.hint.startswith("_")):
            g.hint = _adjoint_name(v.hint)
        elif g.hint is None and v in self.defs:  # a weak name ("_"): may still be inlined
            g.hint = "_" + _adjoint_name(temp_name(self.defs[v]))
        if v in adj and adj[v] in self.accumulators and adj[v].kind != SCALAR:
            adj[v] = self.b.call(runtime.add_into, [adj[v], g], hint=adj[v].hint, effect=True)
            self.accumulators.add(adj[v])
            return
        if v in adj and v.kind != SEQUENCE and self._owned_index_cotangent(v, adj[v]) and self._index_cotangent(g):
            # x[i] and x[j] both used: add the second into the first's fresh zeros, in place
            part, _, index = self.b.producer[g].args
            update = runtime.store if self._still_zero_at(adj[v], index) else runtime.add_at_index
            adj[v] = self.b.call(update, [adj[v], index, part], hint=adj[v].hint, effect=True)
            self.owned[adj[v]] = v
            return
        if v in adj:
            adj[v] = self.add_cotangents(v, adj[v], g, hint=_adjoint_name(v.hint) if v.hint else None)
        else:
            adj[v] = g
            if self._index_cotangent(g) or self._written_copy(g):  # another value's adjoint too (x = y * 1):
                self.owned[g] = v if g not in self.owned else None  # nobody's to update

    def add_cotangents(self, v: Value, a: Value, b: Value, hint: str | None = None) -> Value:
        """``a + b`` for two cotangents of ``v`` (for a list or tuple: their dicts merged)."""
        if v.kind == SEQUENCE:
            return self.b.call(runtime.add_cotangents, [a, b], kind=SEQUENCE, hint=hint)
        return self.b.call(operator.add, [a, b], kind=_scalar_kind(a, b), hint=hint)

    def _index_cotangent(self, g: Value) -> bool:
        """``g`` is ``getitem_vjp(...)`` (fresh zeros with a part filled in) built in this region."""
        op = match(self.b.producer, g, runtime.getitem_vjp, kwargs=True)
        return op is not None and op in self.b.region.ops

    def _written_copy(self, g: Value) -> bool:
        """``g`` is ``setitem(...)`` of an ndarray built in this region (a new array)."""
        op = match(self.b.producer, g, runtime.setitem, 3)
        return op is not None and op in self.b.region.ops and type(g.kind) is int

    def _owned_index_cotangent(self, v: Value, g: Value) -> bool:
        """``g`` is such an array, and only ``v``'s adjoint: it may be added into in place."""
        return self.owned.get(g) is v and g in self.b.producer and self.b.producer[g] in self.b.region.ops

    def _still_zero_at(self, acc: Value, index: Value) -> bool:
        """Whether fresh zeros ``acc``, filled in at constant int positions so far (``dq[1] = g``,
        ``dq[0] = h``: the elements of ``q = x[0], x[1]`` of a vector), are surely still zero at
        constant int ``index``, which then needs an assignment, not an addition. Positions of
        one sign only (``x[-1]`` and ``x[1]`` are one element of a vector of two)."""
        if not (index.is_const and type(index.const) is int):
            return False
        while True:
            op = self.b.producer.get(acc)
            if op is None or op.fn not in (runtime.getitem_vjp, runtime.store, runtime.add_at_index):
                return False
            written = op.args[2] if op.fn is runtime.getitem_vjp else op.args[1]
            if not (written.is_const and type(written.const) is int and written.const != index.const
                    and (written.const < 0) == (index.const < 0)):
                return False
            if op.fn is runtime.getitem_vjp:
                return True
            acc = op.args[0]

    def zero(self, like: Value) -> Value:
        """A zero cotangent shaped like primal value ``like``."""
        if like.kind == SCALAR:
            return self.b.const(0.0)
        if like.kind == SEQUENCE:
            return self.b.call(BuildDict(()), [], kind=SEQUENCE, hint=_adjoint_name(like.hint or "t"))
        shape = shape_of(Sym(self.b, resolve=lambda: self.primal(like), kind=like.kind, shape=like.shape))
        if like.shape is not None and shape.value.dims is not None:
            return self.b.call(np.zeros, [shape.value], hint=_adjoint_name(like.hint or "t"))
        if like.kind is None:  # a number, an array or a list (a recursive call's result): known when it runs
            return self.b.call(runtime.zero_cotangent, [self.primal(like)], hint=_adjoint_name(like.hint or "t"))
        return self.b.call(np.zeros_like, [self.primal(like)], hint=_adjoint_name(like.hint or "t"),
                           kwargs={"dtype": self.b.const(float)})

    # ------------------------------------------------------------------ the sweep

    def run(self, argnums: list[int], with_value: bool, scalar_checked: bool, as_tuple: bool,
            value: Value | None = None, seed: Value | None = None, aux: Value | None = None) -> Function:
        """Append the backward sweep; ``value`` is what ``with_value`` returns (default: the
        output); ``seed`` is the output's cotangent (default: 1, for a scalar output); ``aux``,
        if given, is returned after the gradient, ``(gradient, aux)``."""
        body = self.fn.body
        out = body.yields[0]
        value = out if value is None else value
        self.backward[body] = Backward(Region())
        adj: dict[Value, Value] = {}
        if seed is not None:
            if out in self.active:
                adj[out] = seed
        elif out in self.active:
            if out.kind == SCALAR or out.shape == ():
                seed = self.b.const(1.0)
            else:
                seed = self.b.call(runtime.scalar_seed, [out, self.b.const(self.fn.name)], effect=True)
            adj[out] = seed
            seed.hint = _adjoint_name(out.hint or "out")
        elif scalar_checked and out.kind != SCALAR and out.shape != ():
            self.b.call(runtime.scalar_seed, [out, self.b.const(self.fn.name)], effect=True)
        self.backprop(body, adj)
        grads = [self.gradient_of_argument(i, adj) for i in argnums]
        result = self.b.call(BUILD_TUPLE, grads) if as_tuple else grads[0]
        if with_value:
            result = self.b.call(BUILD_TUPLE, [value, result])
        elif aux is not None:
            result = self.b.call(BUILD_TUPLE, [result, aux])
        body.yields = [result]
        return self.fn

    def gradient_of_argument(self, index: int, adj: dict[Value, Value]) -> Value:
        """The gradient of parameter ``index``; for a container, a container of gradients."""
        param = self.fn.body.params[index]
        if index not in self.fn.structs:
            return self.final_gradient(param, adj.get(param))
        spec, leaves = self.fn.structs[index]
        grads = iter([self.final_gradient(leaf, adj[leaf]) if leaf in adj else self.zero_gradient(param, path, leaf)
                      for leaf, (path, _) in zip(leaves, spec.leaves())])

        def rebuild(spec: Struct) -> Value:
            items = [rebuild(item) if isinstance(item, Struct) else next(grads) for item in spec.items]
            if spec.type is dict:
                return self.b.call(BuildDict(spec.keys), items, hint=_adjoint_name(param.hint))
            return self.b.call(BUILD_LIST if spec.type is list else BUILD_TUPLE, items)

        return rebuild(spec)

    def zero_gradient(self, param: Value, path: tuple, leaf: Value) -> Value:
        """The gradient of a container argument's item the output does not depend on: zero of
        the item's type, read afresh from the argument if the primal no longer reads the item."""
        if leaf.kind == SCALAR:
            return self.b.const(0.0)
        if leaf not in self.defs:  # removed as dead code: read it again
            leaf = param
            for key in path:
                leaf = self.b.call(operator.getitem, [leaf, self.b.const(key)])
        return self.b.call(runtime.zero_grad, [leaf])

    def final_gradient(self, param: Value, g: Value | None) -> Value:
        if g is None:
            return self.b.call(runtime.zero_grad, [param])
        if g.is_const and param.kind == SCALAR:
            return self.b.const(float(g.const))
        if param.kind == SCALAR and g.kind == SCALAR:
            return g if self._float(g) else self.b.call(float, [g], kind=SCALAR)
        # as_grad hands the array over without a copy: only once, so two gradients never share one
        root = g
        while (spread := match(self.b.producer, root, runtime.unbroadcast, kwargs=True)) is not None:
            root = spread.args[0]  # unbroadcast may return its argument itself
        fresh = self._fresh(g) and root not in self.handed_over
        self.handed_over.add(root)
        return self.b.call(runtime.as_grad if fresh else runtime.grad_like, [g, param])

    def _float(self, g: Value) -> bool:
        """Whether the scalar ``g`` is surely a Python float (a primal value such as the int
        argument ``n`` of ``x * n`` may be the whole cotangent of ``x``, and must be converted)."""
        return passes.surely_float(g, self.b.producer, self.floats)

    def _fresh(self, v: Value) -> bool:
        """Whether ``v`` is an array the gradient code created (not a view, argument or constant)."""
        return passes.fresh_array(v, self.b.producer)

    def backprop(self, region: Region, adj: dict[Value, Value]) -> None:
        for op in reversed(list(region.ops)):
            if op.kind is OpKind.CALL and op.fn in (runtime.enter_context, runtime.exit_context):
                self.context_around_adjoints(op)
                continue
            if not any(r in adj for r in op.results) or any(r in self.wrt for r in op.results):
                continue  # no cotangent reached it, or it is an input (a container argument's item)
            self.b.line, self.b.file = op.line, op.file
            if op.kind is OpKind.CALL:
                self.backprop_call(op, adj)
            elif op.kind is OpKind.IF:
                self.backprop_if(op, adj)
            elif op.is_loop:
                self.backprop_loop(op, adj)

    def context_around_adjoints(self, op: Op) -> None:
        """The backward sweep of a ``with np.errstate(...)`` block's body runs in an errstate of
        the same (constant) arguments: the end of the block (met first, walking backwards)
        enters a new one, its start leaves it. Other managers (``warnings.catch_warnings``,
        whose filters the body sets) and errstates of run-time arguments stay forward only."""
        if op.fn is runtime.exit_context:
            made = self.defs.get(op.args[0])
            manager = None
            if made is not None and made.kind is OpKind.CALL and made.fn is np.errstate \
                    and all(a.is_const for a in made.args):
                self.b.line, self.b.file = op.line, op.file
                manager = self.b.call(np.errstate, [self.b.const(a.const) for a in made.positional],
                                      {k: self.b.const(v.const) for k, v in made.keywords.items()},
                                      hint="manager", effect=True)
                self.b.call(runtime.enter_context, [manager], effect=True)
            self.contexts.append(manager)
        else:
            manager = self.contexts.pop() if self.contexts else None
            if manager is not None:
                self.b.line, self.b.file = op.line, op.file
                self.b.call(runtime.exit_context, [manager], effect=True)

    def backprop_call(self, op: Op, adj: dict[Value, Value]) -> None:
        g = adj.pop(op.result)
        if self._scatter_into_own(op, adj, g):
            return
        vjps = rules.lookup(op.fn)
        if vjps is None and op.note and op.note.startswith("recursive") and not op.kwnames:
            vjps = self.recursive_rules(op)
        if vjps is None:
            raise self.no_rule(op)
        args = [self.symbol(a) for a in op.positional]
        kwargs = {k: self.symbol(v) for k, v in op.keywords.items()}
        operands = list(enumerate(op.positional))
        if op.fn is runtime.setitem:  # the written value's part (g[i]) is read before the rest (g with 0 at i)
            operands.reverse()
        for name, v in op.keywords.items():
            if v in self.active:
                if rules.keyword_position(op.fn, name) is None:
                    raise self.no_rule(op, f"differentiating the keyword argument '{name}'")
                operands.append((rules.keyword_position(op.fn, name), v))
        ans = self.symbol(op.result)
        contributions: dict[Value, Value] = {}  # an operand used twice (x * x) gets one sum
        for i, a in operands:
            if a not in self.active:
                continue
            if op.fn is operator.getitem and i == 1 and self._integral_index(a):
                continue  # x[i] for an int i (an array, a slice of ints): nothing flows into the index
            vjp = vjps[i] if i < len(vjps) else None
            if vjp is None:
                raise self.no_rule(op, f"differentiating argument {i + 1}")
            part = run_rule(self.fn, op, vjp, self.b, g, ans, args, kwargs)
            contributions[a] = self.add_cotangents(a, contributions[a], part) if a in contributions else part
        for a, part in contributions.items():
            self.accumulate(adj, a, part)

    def _scatter_into_own(self, op: Op, adj: dict[Value, Value], g: Value) -> bool:
        """``x[i]`` (a basic index) of an array ``x`` whose adjoint is an array only this sweep
        holds (a loop's accumulator, or fresh zeros of ours): ``dx[i] += g`` in place, instead
        of fresh zeros with ``g`` at ``i`` added to it. True if done."""
        if op.fn is not operator.getitem or op.kwnames or len(op.args) != 2:
            return False
        x, index = op.args
        acc = adj.get(x)
        if acc is None or type(x.kind) is not int or acc.kind != x.kind or index in self.active or not (
                acc in self.accumulators or self._owned_index_cotangent(x, acc)):
            return False
        if not self._basic_index(index):
            return False
        index = self.primal(index)
        zero_there = self.written_once_at.get(acc) is index if acc in self.accumulators \
            else self._still_zero_at(acc, index)
        updated = self.b.call(runtime.store if zero_there else runtime.add_at_index, [acc, index, g],
                              hint=acc.hint, effect=True)
        if acc in self.accumulators:
            self.accumulators.add(updated)
        else:
            self.owned[updated] = x
        adj[x] = updated
        return True

    def _basic_index(self, index: Value, depth: int = 0) -> bool:
        """Whether the primal ``index`` picks each element at most once: an int, a constant
        basic index, a slice of ints (``i:i + 2``) or a tuple of those (``i, :``)."""
        if index.integer or (index.is_const and runtime.is_basic_index(index.const)):
            return True
        op = match(self.defs, index, kwargs=True)
        if op is None or depth > 4 or op.fn not in (BUILD_SLICE, BUILD_TUPLE):
            return False
        if op.fn is BUILD_SLICE:
            return all(a.integer or (a.is_const and (a.const is None or type(a.const) is int)) for a in op.args)
        return all(self._basic_index(a, depth + 1) for a in op.args)

    def _integral_index(self, index: Value, depth: int = 0) -> bool:
        """Whether ``index`` is known to be made of ints only: an int, an array of ints or bools, or
        a slice or tuple of those (``start:start + 2`` with an int ``start``, an argument of a
        recursive function's own VJP, which differentiates every argument)."""
        if index.is_const or _integral(index):
            return True
        op = match(self.defs, index, kwargs=True)
        if op is None or depth > 4 or op.fn not in (BUILD_SLICE, BUILD_TUPLE):
            return False
        return all(self._integral_index(a, depth + 1) for a in op.args)

    def recursive_rules(self, op: Op) -> tuple:
        """Rules for a recursive call of ``f``: call f's own generated VJP (``vjp_f``), which
        reruns ``f`` forwards and backwards from the call's cotangent."""
        if self.recursive_vjp is None:
            raise self.no_rule(op, message=f"{_describe_callee(op)} calls itself, and this reverse "
                                           "transform was given no recursive_vjp to build its VJP with")
        vjp = self.recursive_vjp(op.fn)
        shared: list = []  # the one call of vjp_f whose items the rules of all arguments read

        def cotangents(g: Any, args: tuple) -> Any:
            if not shared:
                shared.append(tracing.apply(vjp, *args, g))
            return shared[0]

        def rule(i: int) -> rules.Rule:
            def vjp(g: Any, ans: Any, *args: Any) -> Any:
                part = tracing.apply(operator.getitem, cotangents(g, args), i)
                if isinstance(args[i], Sym) and args[i].kind in (None, SEQUENCE):
                    # vjp_f returns a list argument's gradient as a list: here it is a sequence's cotangent
                    part = tracing.apply(runtime.sequence_cotangent, part)
                return part
            return vjp
        return tuple(rule(i) for i in range(len(op.positional)))

    def symbol(self, v: Value) -> Any:
        """What a rule sees for operand ``v``: its Python value if constant, else a symbol."""
        if v.is_const:
            return tracing.constant(self.b, v)
        sym = Sym(self.b, resolve=lambda: self.primal(v), kind=v.kind, shape=v.shape)
        source = self._same_shape_source(v) if v.shape is None else v
        if source is not v:  # np.shape(x ** 2) is np.shape(x): read x, not x ** 2
            sym.shape_like = self.symbol(source)
        return sym

    def _same_shape_source(self, v: Value) -> Value:
        """The operand an elementwise op with scalars (``x ** 2``, ``2.0 * x``) gets its shape from."""
        while True:
            op = match(self.defs, v)
            if op is None or not shapes.is_elementwise(op.fn):
                return v
            arrays = [a for a in op.args if not (a.kind == SCALAR or a.is_const and type(a.const) in (int, float))]
            if len(arrays) != 1:
                return v
            v = arrays[0]

    def no_rule(self, op: Op, what: str | None = None, message: str | None = None) -> NoRuleError:
        return no_rule_error(self.fn, op, what, message)

    def backprop_if(self, op: Op, adj: dict[Value, Value]) -> None:
        gs = {i: adj.pop(r) for i, r in enumerate(op.results) if r in adj}
        cond = self.primal(op.test)
        arms = []
        for sub in op.regions:
            region = Region()
            self.backward[sub] = Backward(region)
            self.b.push(region)
            env = dict(adj)
            for i, g in gs.items():
                if sub.yields[i] in self.active:
                    self.accumulate(env, sub.yields[i], g)
            self.backprop(sub, env)
            self.b.pop()
            arms.append((sub, region, env))
        keys = []
        for k in dict.fromkeys([*arms[0][2], *arms[1][2]]):
            if self.def_region.get(k) in (arms[0][0], arms[1][0]):
                continue  # an adjoint of a value local to one arm
            then_g, else_g = arms[0][2].get(k), arms[1][2].get(k)
            if then_g is else_g:
                if then_g is not adj.get(k):
                    adj[k] = then_g  # both arms pass on the same cotangent, computed before the if
            else:
                keys.append(k)
        results = []
        for k in keys:
            for _, region, env in arms:
                if k not in env:
                    self.b.push(region)
                    env[k] = self.zero(k)
                    self.b.pop()
                region.yields.append(env[k])
            result = Value(_adjoint_name(k.hint or "t"), _scalar_kind(arms[0][2][k], arms[1][2][k]))
            results.append(result)
            adj[k] = result
        self.b.emit(Op(OpKind.IF, [cond], results, regions=[a[1] for a in arms], line=op.line, file=op.file))

    def backprop_loop(self, op: Op, adj: dict[Value, Value]) -> None:
        body = op.body
        carried = op.carried(body)
        slots = [i for i, (r, p) in enumerate(zip(op.results, carried))
                 if r in self.active or p in self.active]
        free = self.free_active(body)
        inits = []
        for i in slots:
            r = op.results[i]
            inits.append(adj.pop(r) if r in adj else self.zero(r))
        # an array's cotangent from after the loop, not this sweep's own: the loop adds into
        # fresh zeros of its own (in place), and that is added to it once after the loop
        before = {u: adj.pop(u) for u in free if u in adj and type(u.kind) is int
                  and adj[u] not in self.accumulators and u.shape is not None}
        inits += [adj[u] if u in adj else self.zero(u) for u in free]
        walks_active_sequence = op.kind is OpKind.FOR and op.target in self.active
        if walks_active_sequence:  # for row in x: rows get cotangents, summed into dx by index
            sequence = self.primal(op.iterable)
            index = Value("k", SCALAR, integer=True, shape=())
            iterable = self.b.call(reversed, [self.b.call(range, [self.b.call(len, [sequence])])])
            info = Backward(Region(params=[index]))
            seq_hint = _adjoint_name(op.iterable.hint or "seq")
            inits.append(self.zero(op.iterable) if op.iterable.kind == SEQUENCE else
                         self.b.call(np.zeros_like, [sequence], {"dtype": self.b.const(float)}, hint=seq_hint)
                         if type(op.iterable.kind) is int else  # (of unknown kind: {} for a list, at run time)
                         self.b.call(runtime.zero_cotangent, [sequence], hint=seq_hint))
        elif op.kind is OpKind.FOR:
            iterable = self.b.call(reversed, [self.primal(op.iterable)])
            target = _like(op.target)
            info = Backward(Region(params=[target]), {op.target: target})
        else:
            count = self._count_iterations(op)
            iterable = self.b.call(range, [self.primal(count)])
            info = Backward(Region(params=[Value("_")]))
        self.backward[body] = info
        state = [_like(carried[i], _adjoint_name(carried[i].hint or "t"), v.kind) for i, v in zip(slots, inits)]
        state += [_like(u, _adjoint_name(u.hint or "t")) for u in free]
        if walks_active_sequence:
            state.append(_like(op.iterable, inits[-1].hint))
        info.region.params += state
        self.b.push(info.region)
        if walks_active_sequence:
            info.popped[op.target] = self.b.call(operator.getitem, [sequence, index], hint=op.target.hint)
        env = dict(zip(free, state[len(slots):]))
        if op.kind is OpKind.FOR and not walks_active_sequence and _one_sign_range(self.defs.get(op.iterable)):
            for u, param in env.items():  # x[i] the only read of x: dx[i] = ..., each i once
                if u not in adj and type(u.kind) is int and _read_once_at(body, u, op.target):
                    self.written_once_at[param] = target
        for u, param in zip(free, state[len(slots):]):
            if u not in adj and u.kind != SCALAR and u.kind != SEQUENCE or adj.get(u) in self.accumulators:
                self.accumulators.add(param)  # a fresh np.zeros of ours (or our own array): added into in place
        for i, g in zip(slots, state):
            if body.yields[i] in self.active:
                self.accumulate(env, body.yields[i], g)
        self.backprop(body, env)
        yields = []
        for i in slots:
            p = carried[i]
            yields.append(env[p] if p in env else self.zero(p))
        yields += [env[u] for u in free]
        if walks_active_sequence:
            d_target = env.get(op.target)
            add_at = runtime.add_at_key if op.iterable.kind == SEQUENCE else runtime.add_at
            yields.append(state[-1] if d_target is None else self.b.call(
                add_at, [state[-1], index, d_target], hint=state[-1].hint, effect=True))
        info.region.yields = yields
        self.b.pop()
        results = [_like(s, kind=s.kind if y.kind == s.kind else None) for s, y in zip(state, yields)]
        self.b.line = op.line
        self.b.emit(Op(OpKind.FOR, [iterable] + inits, results, regions=[info.region]))
        for u, r in zip(free, results[len(slots):]):
            adj[u] = r
            if u in before:
                adj[u] = self.add_cotangents(u, before[u], r, hint=r.hint)
        primal_inits = op.inits
        for i, r in zip(slots, results):
            init = primal_inits[i]
            if init in self.active:
                self.accumulate(adj, init, r)
        if walks_active_sequence:
            self.accumulate(adj, op.iterable, results[-1])

    def free_active(self, body: Region) -> list[Value]:
        """Active values defined outside ``body`` that its backward sweep accumulates into."""
        inside = {body} | {sub for sub in self._regions_under(body)}
        free: dict[Value, None] = {}
        for op, _ in _walk(body):
            if op.kind is OpKind.CALL and op.result in self.active:
                for a in op.args:
                    if a in self.active and self.def_region.get(a) not in inside:
                        free[a] = None
            elif op.kind is OpKind.IF and any(r in self.active for r in op.results):
                for sub in op.regions:
                    for y in sub.yields:
                        if y in self.active and self.def_region.get(y) not in inside:
                            free[y] = None
            elif op.is_loop:
                # a nested loop's inits, the sequence it walks, and values from out here that its
                # body yields as they are
                walked = [op.iterable] if op.kind is OpKind.FOR and op.target in self.active else []
                for a in [*op.inits, *walked, *op.body.yields]:
                    if a in self.active and self.def_region.get(a) not in inside:
                        free[a] = None
        for y in body.yields:
            if y in self.active and self.def_region.get(y) not in inside:
                free[y] = None
        return list(free)

    def _regions_under(self, region: Region) -> list[Region]:
        out = []
        for op in region.ops:
            for sub in op.regions:
                out.append(sub)
                out.extend(self._regions_under(sub))
        return out

    def _count_iterations(self, op: Op) -> Value:
        """Add an iteration counter to a forward ``while`` op; return its final value."""
        cond, body = op.cond, op.body
        zero = Value("n_iter", SCALAR, 0)
        outer = self.def_region[op.results[0]] if op.results else self._region_of(op)
        outer.ops.insert(outer.ops.index(op), Op(OpKind.CONST, [], [zero], fn=0))
        p_cond, p_body, result = Value("n_iter", SCALAR), Value("n_iter", SCALAR), Value("n_iter", SCALAR)
        one = Value(None, SCALAR, 1)
        nxt = Value("n_iter", SCALAR)
        body.ops.insert(0, Op(OpKind.CONST, [], [one], fn=1))
        body.ops.insert(1, Op(OpKind.CALL, [p_body, one], [nxt], fn=operator.add))
        op.args.append(zero)
        cond.params.append(p_cond)
        body.params.append(p_body)
        body.yields.append(nxt)
        op.results.append(result)
        for v, r in ((zero, outer), (p_cond, cond), (p_body, body), (nxt, body), (one, body), (result, outer)):
            self.def_region[v] = r
        return result

    def _region_of(self, target: Op) -> Region:
        for op, region in _walk(self.fn.body):
            if op is target:
                return region
        raise AssertionError("op not in function")  # pragma: no cover


def run_rule(fn: Function, op: Op, rule: rules.Rule, b: Builder, g: Value, ans: Any, args: list,
             kwargs: dict) -> Value:
    """Emit ``rule(g, ans, *args, **kwargs)`` (a VJP, or for scalars a JVP) into ``b``; an error
    inside the rule is located at the call ``op`` of function ``fn``. A rule registered with
    ``symdiff.defvjp`` that cannot run on symbols is called as it is when the gradient runs
    (:func:`symdiff.rules.applied`)."""
    try:
        return as_value(b, run(b, rules.applied, rule, _describe_callee(op), Sym(b, g), ans, *args, **kwargs))
    except NoRuleError as exc:  # a rule that does not cover these arguments: say where
        refusal = rules.refusal_of(op.fn)  # (a user's rule called as it is: not differentiable again)
        raise no_rule_error(fn, op, message=refusal or f"{exc} (in the derivative rule of {_describe_callee(op)})") \
            from None


def no_rule_error(fn: Function, op: Op, what: str | None = None, message: str | None = None) -> NoRuleError:
    """The error for an active call that cannot be differentiated, located at the call."""
    name = _describe_callee(op)
    if message is None and what:
        message = f"{what} of {name} is not supported"
    elif message is None and op.note:
        message = f"cannot differentiate through {name}: {op.note}; {advice.rule_advice(op.fn, _receiver(op))}"
    elif message is None:
        message = f"no derivative rule for {name}; {advice.rule_advice(op.fn, _receiver(op), made_by=_maker(fn, op))}"
    filename = op.file or fn.filename
    source = linecache.getline(filename, op.line) if op.line else None
    return NoRuleError(located(message, filename, op.line, None, source or None))


def loss_of(fn: Function, has_aux: bool) -> Value:
    """The value being differentiated: the output, or with ``has_aux`` the first item of the
    ``(loss, aux)`` pair the function returns."""
    value = fn.body.yields[0]
    if not has_aux:
        return value
    producers = definitions(fn.body)
    pair = match(producers, value, BUILD_TUPLE, 2)
    if pair is not None:
        return pair.args[0]
    if value in producers and producers[value].kind in (OpKind.CONST, OpKind.CALL):
        raise SymdiffError(f"{fn.name}: has_aux=True needs the function to return a pair, `return loss, aux`")
    b = Builder(fn.body, annotate=shapes.annotate)  # several returns: the pair is only known at run time
    b.call(runtime.check_pair, [value, b.const(fn.name)], effect=True)
    return b.call(operator.getitem, [value, b.const(0)], hint="loss")


def aux_of(fn: Function, pair: Value) -> Value:
    """The second item of the ``(loss, aux)`` pair the function returns (after :func:`loss_of`,
    which checks that it is a pair)."""
    found = match(definitions(fn.body), pair, BUILD_TUPLE, 2)
    if found is not None:
        return found.args[1]
    b = Builder(fn.body, annotate=shapes.annotate)
    return b.call(operator.getitem, [pair, b.const(1)], hint="aux")


_INT_ARITHMETIC = (operator.add, operator.sub, operator.mul, operator.floordiv, operator.mod, operator.neg)
_SCALAR_SELECTIONS = (operator.gt, operator.ge, operator.lt, operator.le, max, min)



def _integral(v: Value) -> bool:
    """Whether ``v`` is known to be an int or a bool, or an array of them (an index)."""
    if v.integer or v.pytype in (int, bool):
        return True
    return isinstance(v.dtype, np.dtype) and not np.issubdtype(v.dtype, np.inexact)


def _like(v: Value, hint: str | None = None, kind: Any = "same") -> Value:
    """A new value with ``v``'s static shape (and kind, unless given)."""
    return Value(hint or v.hint, aval=Abstract(v.kind if kind == "same" else kind, v.shape, integer=v.integer,
                                                 dtype=v.dtype, pytype=v.pytype if kind == "same" else None))


def _one_sign_range(op: Op | None) -> bool:
    """Whether ``op`` is a call ``range(...)`` whose ints are surely all >= 0: each picks its own
    element (``range(-3, 3)`` would pick ``x[-3]`` and ``x[0]``, one element of three). Its
    start, if any, a constant >= 0 and its step positive; or a negative step down to a stop >= -1."""
    if op is None or op.kind is not OpKind.CALL or op.fn is not range or op.kwnames:
        return False

    def const(v: Value) -> int | None:
        return v.const if v.is_const and type(v.const) is int else None

    args = op.args
    if len(args) == 1:
        return True
    step = const(args[2]) if len(args) == 3 else 1
    if step is None:
        return False
    if step > 0:
        start = const(args[0])
        return start is not None and start >= 0
    stop = const(args[1])
    return stop is not None and stop >= -1


def _read_once_at(body: Region, x: Value, index: Value) -> bool:
    """Whether ``body`` uses ``x`` only once, as ``x[index]``, outside any loop in it (so once per
    iteration of the loop it is the body of)."""
    uses = 0

    def visit(region: Region, in_loop: bool) -> bool:
        nonlocal uses
        if x in region.yields:
            return False
        for o in region.ops:
            if x in o.args:
                if in_loop or o.kind is not OpKind.CALL or o.fn is not operator.getitem or o.kwnames \
                        or o.args != [x, index]:
                    return False
                uses += 1
            if not all(visit(sub, in_loop or o.is_loop) for sub in o.regions):
                return False
        return True

    return visit(body, False) and uses == 1


def _walk(region: Region):
    for op in region.ops:
        yield op, region
        for sub in op.regions:
            yield from _walk(sub)


def _adjoint_name(hint: str | None) -> str:
    return f"d{hint}" if hint else "d_t"


def _scalar_kind(a: Value, b: Value) -> str | None:
    return SCALAR if a.kind == SCALAR and b.kind == SCALAR else None


def _describe_callee(op: Op) -> str:
    """The callee of ``op`` as a user spells it (see :mod:`symdiff.advice`)."""
    return advice.callee_name(op.fn, _receiver(op))


def _maker(fn: Function, op: Op) -> Any:
    """The callee whose call made the receiver of the method ``op`` calls, or None."""
    receiver = _receiver(op)
    if not isinstance(op.fn, Method) or receiver is None:
        return None
    producer = definitions(fn.body).get(receiver)
    return producer.fn if producer is not None and producer.kind == OpKind.CALL else None


def _receiver(op: Op) -> Value | None:
    """The object a method is called on (its first argument), or None."""
    return op.args[0] if op.args else None


def reverse(fn: Function, argnums: list[int], with_value: bool = False, as_tuple: bool = False,
            has_aux: bool = False, seed: Value | None = None, recursive_vjp: VjpOf | None = None,
            return_aux: bool = False) -> Function:
    """The gradient function of ``fn`` with respect to the parameters at ``argnums``
    (a tuple of gradients when ``as_tuple``), returning ``(value, gradient)`` if ``with_value``;
    with ``has_aux``, ``fn`` returns ``(loss, aux)`` and the value is that pair (without
    ``with_value``, ``return_aux`` returns ``(gradient, aux)``). ``seed``, if
    given, is the output's cotangent, appended as a last parameter (a VJP). A recursive call of
    a function ``f`` calls ``recursive_vjp(f)``, the generated VJP of ``f``."""
    wrt = [leaf for i in argnums for leaf in (fn.structs[i][1] if i in fn.structs else [fn.body.params[i]])]
    value = fn.body.yields[0]
    loss = loss_of(fn, has_aux)  # with has_aux: differentiate the loss, hand back both
    aux = aux_of(fn, value) if has_aux and return_aux and not with_value else None
    fn.body.yields = [loss]
    rev = Reverse(fn, wrt, recursive_vjp)
    if seed is not None:  # a VJP: the cotangent of the output is the last parameter
        fn.body.params.append(seed)
    out = rev.run(argnums, with_value, scalar_checked=seed is None, as_tuple=as_tuple, value=value, seed=seed,
                  aux=aux)
    optimize.optimize(out, final=True)
    return out

