"""Forward mode on structured SSA, for gradients with respect to one Python number.

A function of one scalar input has a 1x1 Jacobian at every step, so its derivative can be
carried *alongside* the computation: each value ``v`` gets a tangent ``dv`` (``dv/dx``),
computed right after ``v``. No tape, no second sweep: loops carry their tangents like any
other value, which is what a person writes by hand for a scalar loop.

It reuses the VJP table: when every value involved is a scalar, a rule's VJP applied to a
tangent is that primitive's JVP (``vjp_i(t) = df/dx_i * t``), so the tangent of
``f(a, b)`` is ``vjp_a(da) + vjp_b(db)``.

Used when :func:`applies`: one differentiated argument, a Python number, and every value
that depends on it a Python number too (otherwise reverse mode runs).
"""

from __future__ import annotations

import operator
from typing import Any

from . import optimize, passes, rules
from .ir import BUILD_TUPLE, NOT_CONST, SCALAR, Function, Op, OpKind, Region, Value, definitions, walk
from .reverse import loss_of, no_rule_error, run_rule
from .tracing import Sym


def applies(fn: Function, argnums: list[int], seeded: bool) -> bool:
    """Whether forward mode computes this gradient: one Python-number argument, and only
    Python numbers depend on it (through calls with rules, none of them recursive)."""
    if not passes.enabled("forward") or seeded or len(argnums) != 1 or argnums[0] in fn.structs:
        return False
    x = fn.body.params[argnums[0]]
    if x.kind != SCALAR:
        return False
    varied = passes.varied_values(fn, [x], rules.differentiable)
    if any(v.kind != SCALAR for v in varied):
        return False
    return not any(op.kind is OpKind.CALL and op.note and op.note.startswith("recursive") and
                   any(a in varied for a in op.args) for op, _ in walk(fn.body))


def _scalar(hint: str | None = None, const: Any = NOT_CONST) -> Value:
    v = Value(hint, SCALAR, const)
    v.shape = ()
    return v


class Forward:
    """Emits tangent code right after each primal op whose result depends on the input."""

    def __init__(self, fn: Function, x: Value):
        self.fn = fn
        self.b = passes.adjoint_builder(fn.body)  # tangent arithmetic is on floats, like cotangent arithmetic
        self.varied = passes.varied_values(fn, [x], rules.differentiable)
        self.tangent: dict[Value, Value] = {x: _scalar(f"d{x.hint}", 1.0)}

    def region(self, region: Region) -> None:
        """Rebuild ``region`` with tangent code after each op."""
        ops, region.ops = region.ops, []
        self.b.push(region)
        for op in ops:
            region.ops.append(op)
            self.b.line, self.b.file = op.line, op.file
            if op.kind is OpKind.CALL:
                self.call(op)
            elif op.kind is OpKind.IF:
                self.branch(op)
            elif op.is_loop:
                self.loop(op)
        self.b.pop()

    def call(self, op: Op) -> None:
        varied = [(i, a) for i, a in enumerate(op.positional) if a in self.tangent]
        keywords = [(name, v) for name, v in op.keywords.items() if v in self.tangent]
        if not (varied or keywords) or not rules.differentiable(op.fn):
            return
        vjps = rules.lookup(op.fn)
        if vjps is None:
            raise no_rule_error(self.fn, op)
        for name, v in keywords:
            if rules.keyword_position(op.fn, name) is None:
                raise no_rule_error(self.fn, op, f"differentiating the keyword argument '{name}'")
            varied.append((rules.keyword_position(op.fn, name), v))
        args = [a.const if a.is_const else Sym(self.b, a) for a in op.positional]
        kwargs = {k: v.const if v.is_const else Sym(self.b, v) for k, v in op.keywords.items()}
        total = None
        for i, a in varied:
            rule = vjps[i] if i < len(vjps) else None
            if rule is None:
                raise no_rule_error(self.fn, op, f"differentiating argument {i + 1}")
            # for scalars, the VJP of a tangent is the JVP
            part = run_rule(self.fn, op, rule, self.b, self.tangent[a], Sym(self.b, op.result), args, kwargs)
            total = part if total is None else self.b.call(operator.add, [total, part], kind=SCALAR)
        if op.result.hint and not total.is_const and (total.hint is None or total.hint.startswith("_")):
            total.hint = f"d{op.result.hint}"
        self.tangent[op.result] = total

    def branch(self, op: Op) -> None:
        for sub in op.regions:
            self.region(sub)
        for r, *yields in list(zip(op.results, *(sub.yields for sub in op.regions))):
            if r not in self.varied:
                continue
            for sub, y in zip(op.regions, yields):
                sub.yields.append(self.tangent.get(y) or _scalar(const=0.0))
            self.tangent[r] = _scalar(f"d{r.hint}" if r.hint else None)
            op.results.append(self.tangent[r])

    def loop(self, op: Op) -> None:
        body = op.body
        slots = [i for i, p in enumerate(op.carried(body)) if p in self.varied]
        for sub in op.regions:  # a tangent slot per carried value that depends on the input
            carried = op.carried(sub)
            for i in slots:
                p = carried[i]
                self.tangent[p] = _scalar(f"d{p.hint}" if p.hint else None)
            sub.params.extend(self.tangent[carried[i]] for i in slots)
        for sub in op.regions:
            self.region(sub)
        inits = op.inits
        for i in slots:
            op.args.append(self.tangent.get(inits[i]) or _scalar(const=0.0))
            body.yields.append(self.tangent.get(body.yields[i]) or _scalar(const=0.0))
            r = op.results[i]
            self.tangent[r] = _scalar(f"d{r.hint}" if r.hint else None)
        op.results.extend(self.tangent[op.results[i]] for i in slots)


def forward(fn: Function, argnum: int, with_value: bool = False, as_tuple: bool = False,
            has_aux: bool = False) -> Function:
    """The gradient function of ``fn`` with respect to its Python-number parameter ``argnum``,
    in forward mode (see :func:`applies`); the same calling convention as ``reverse.reverse``."""
    value = fn.body.yields[0]
    out = loss_of(fn, has_aux)
    fw = Forward(fn, fn.body.params[argnum])
    fw.region(fn.body)
    b = fw.b
    b.line = None
    t = fw.tangent.get(out)
    if t is None:
        grad = b.const(0.0)
    elif passes.surely_float(t, definitions(fn.body)):
        grad = t
    else:  # an int argument may be the whole derivative (x * n)
        grad = b.call(float, [t], kind=SCALAR)
    if as_tuple:
        grad = b.call(BUILD_TUPLE, [grad])
    fn.body.yields = [b.call(BUILD_TUPLE, [value, grad]) if with_value else grad]
    fn.mode = "forward"
    optimize.optimize(fn, final=True)
    return fn
