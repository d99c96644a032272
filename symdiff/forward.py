"""Forward mode on structured SSA: each value ``v`` that depends on the inputs gets a tangent
``dv`` (its directional derivative along the input tangents), computed right after ``v``.

No tape and no second sweep: a loop carries its tangents as more loop values, an ``if`` yields
them from both arms, which is what a person writes by hand. The result is a function of the
primals and their tangents returning ``(out, tangent_out)`` -- a Jacobian-vector product -- or,
for a gradient with respect to one Python number, its derivative.

A call's tangent comes from its primitive's record (:mod:`symdiff.primitives`), in this order:

1. its own JVP rules (``jvps``: the forward-mode rows of the table, and ``symdiff.defjvp``);
2. linearity: a call linear in each argument (``EACH``: matmul, sum, reshape, indexing) has the
   call itself, with one argument replaced by its tangent, as that argument's tangent; a call
   linear in all of them together (``JOINTLY``: displays, np.where's branches) is the call on
   the tangents;
3. the VJP rules, where the Jacobian is diagonal -- element-by-element primitives, and any
   primitive on Python numbers: a VJP ``unbroadcast(g * df/dx, x)`` run on a tangent, with
   ``unbroadcast`` suspended, is the JVP ``t * df/dx`` (:func:`tracing.tangent_mode`).

Anything else is refused with the place of the call. Reverse mode can run on the result again
(a Hessian-vector product is the gradient of a JVP).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from . import advice, optimize, passes, primitives, rules, runtime, shapes, tracing
from .errors import NoRuleError
from .ir import (
    BUILD_TUPLE,
    NOT_CONST,
    SCALAR,
    SEQUENCE,
    Abstract,
    Function,
    Op,
    OpKind,
    Region,
    Value,
    definitions,
    walk,
)
from .reverse import loss_of, no_rule_error
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


def tangent_like(v: Value, hint: str | None = None) -> Value:
    """A new value for the tangent of ``v``: its kind and static shape, a float."""
    name = hint or (f"d{v.hint}" if v.hint and not v.hint.startswith("_") else None)
    return Value(name, aval=Abstract(v.kind, v.shape, dims=None, dtype=None))


class Forward:
    """Emits tangent code right after each primal op whose result depends on the inputs."""

    def __init__(self, fn: Function, tangents: dict[Value, Value], recursive_jvp: Any = None, ints: bool = False):
        self.fn = fn
        self.b = passes.adjoint_builder(fn.body)  # tangent arithmetic is on floats, like cotangent arithmetic
        self.varied = passes.varied_values(fn, list(tangents), rules.differentiable)
        self.tangent: dict[Value, Value] = dict(tangents)
        self.zeros: set[Value] = set()  # values that depend on the inputs only through ints: tangent 0
        self.ints = ints  # ints carry tangents too (a gradient asked for with respect to an int argument)
        self.recursive_jvp = recursive_jvp

    # ------------------------------------------------------------------ zeros

    def zero(self, like: Value) -> Value:
        """A zero tangent for primal value ``like`` (emitted where the builder is)."""
        if like.kind == SCALAR or like.is_const and type(like.const) in (int, float, bool):
            return self.b.const(0.0)
        if type(like.kind) is int:
            return self.b.call(np.zeros_like, [like], {"dtype": self.b.const(float)}, hint=tangent_like(like).hint)
        # (an effect: a list's zeros must be read where they are made, before the list grows)
        return self.b.call(runtime.zeros_of, [like], kind=like.kind, hint=tangent_like(like).hint, effect=True)

    # ------------------------------------------------------------------ regions

    def region(self, region: Region) -> None:
        """Rebuild ``region`` with tangent code after each op."""
        ops, region.ops = region.ops, []
        self.b.push(region)
        for op in ops:
            self.b.line, self.b.file = op.line, op.file
            if op.kind is OpKind.FOR and op.iterable in self.varied:
                self.index_loop(op)
            before = self.zeros_before_update(op) if op.kind is OpKind.CALL else {}
            region.ops.append(op)
            if op.kind is OpKind.CALL:
                self.call(op, before)
            elif op.kind is OpKind.IF:
                self.branch(op)
            elif op.is_loop:
                self.loop(op)
        self.b.pop()

    def zeros_before_update(self, op: Op) -> dict:
        """For a call that updates its first argument in place (``list_append``), the zero tangents
        of its arguments without one, made before the call changes them."""
        record = primitives.lookup(op.fn)
        if not record.updates or record.linear != primitives.JOINTLY or \
                not any(a in self.tangent for a in op.positional):
            return {}
        return {i: self.zero(a) for i, a in enumerate(op.positional)
                if a not in self.tangent and not integral(a) and not _fixed_position(record, i)}

    def call(self, op: Op, before: dict | None = None) -> None:
        record = primitives.lookup(op.fn)
        operands = [(i, a) for i, a in enumerate(op.positional) if a in self.varied]
        operands += [(name, a) for name, a in op.keywords.items() if a in self.varied]
        if not operands or not rules.differentiable(op.fn):
            return
        # ints, bools and what is built of them only carry no tangent (an index, an axis, a shape:
        # JAX's float0), nor do the arguments a rule says are not differentiated (a subscripts string)
        operands = [(i, a) for i, a in operands if a not in self.zeros and (self.ints or not integral(a))
                    and not _fixed_position(record, i)]
        if not operands or not self.ints and integral(op.result):
            self.zeros.update(op.results)
            return
        missing = [a for _, a in operands if a not in self.tangent]
        if missing:  # a value that depends on the inputs through something forward mode cannot follow
            raise no_rule_error(self.fn, op, message=f"forward mode cannot follow {missing[0].hint or 'a value'} "
                                                     f"into {_callee(op.fn)}")
        if op.note and op.note.startswith("recursive") and self.recursive_jvp is not None:
            self.tangent[op.result] = self.recursive(op, operands)
            return
        args = [tracing.constant(self.b, a) if a.is_const else Sym(self.b, a) for a in op.positional]
        kwargs = {k: tracing.constant(self.b, v) if v.is_const else Sym(self.b, v) for k, v in op.keywords.items()}
        tangents = {i: Sym(self.b, self.tangent[a]) for i, a in operands}
        for i, zero in (before or {}).items():
            tangents.setdefault(i, Sym(self.b, zero))
        try:
            with tracing.tangent_mode():
                total = tracing.run(self.b, call_tangent, op.fn, Sym(self.b, op.result), args, kwargs, tangents,
                                    self.fn.body.params)
        except NoRuleError as exc:
            raise no_rule_error(self.fn, op, message=str(exc)) from None
        total = tracing.as_value(self.b, total)
        if not total.is_const and total.kind in (None, op.result.kind):
            # a tangent has its primal's kind (a list's is a list) and shape: what the rules above ensure
            total.aval = total.aval._replace(kind=op.result.kind, shape=total.shape if total.shape is not None
                                             else op.result.shape)
        if op.result.hint and not total.is_const and (total.hint is None or total.hint.startswith("_")):
            total.hint = f"d{op.result.hint}"
        self.tangent[op.result] = total

    def recursive(self, op: Op, operands: list) -> Value:
        """The tangent of a recursive call of ``f``: ``tangent_f(*args, *tangents)``."""
        if op.kwnames:
            raise no_rule_error(self.fn, op, "a recursive call with keyword arguments")
        tangent_of = self.recursive_jvp(op.fn)
        tangents = [self.tangent[a] if a in self.tangent else self.zero(a) for a in op.positional]
        return self.b.call(tangent_of, [*op.positional, *tangents], kind=op.result.kind)

    def branch(self, op: Op) -> None:
        for sub in op.regions:
            self.region(sub)
        for i, r in enumerate(list(op.results)):
            if r not in self.varied:
                continue
            for sub in op.regions:
                sub.yields.append(self._tangent_in(sub, sub.yields[i]))
            self.tangent[r] = tangent_like(r)
            op.results.append(self.tangent[r])

    def index_loop(self, op: Op) -> None:
        """``for row in x`` with ``x`` depending on the inputs becomes ``for k in range(len(x)):
        row = x[k]``, so that ``drow = dx[k]`` walks the tangent in step."""
        sequence = op.iterable
        count = self.b.call(len, [sequence], kind=SCALAR)
        op.args[0] = self.b.call(range, [count])  # (the iterable is the loop's first operand)
        index = Value("k", aval=Abstract(SCALAR, (), integer=True))
        target = op.target
        op.body.params[0] = index
        op.body.ops.insert(0, Op(OpKind.CALL, [sequence, index], [target], fn=operator.getitem, line=op.line,
                                 file=op.file))

    def loop(self, op: Op) -> None:
        body = op.body
        slots = [i for i, p in enumerate(op.carried(body)) if p in self.varied]
        for sub in op.regions:  # a tangent slot per carried value that depends on the inputs
            carried = op.carried(sub)
            for i in slots:
                self.tangent[carried[i]] = tangent_like(carried[i])
            sub.params.extend(self.tangent[carried[i]] for i in slots)
        for sub in op.regions:
            self.region(sub)
        inits = op.inits
        for i in slots:
            init = inits[i]
            op.args.append(self.tangent[init] if init in self.tangent else self._zero_before(op, init))
            body.yields.append(self._tangent_in(body, body.yields[i]))
            r = op.results[i]
            self.tangent[r] = tangent_like(r)
        op.results.extend(self.tangent[op.results[i]] for i in slots)

    def _tangent_in(self, region: Region, y: Value) -> Value:
        """The tangent of ``y`` for ``region`` to yield: its own, or a zero made at the end of
        ``region`` (not kept: ``y`` may be defined outside, where that zero does not exist)."""
        if y in self.tangent:
            return self.tangent[y]
        self.b.push(region)
        zero = self.zero(y)
        self.b.pop()
        return zero

    def _zero_before(self, op: Op, init: Value) -> Value:
        """A zero tangent for a loop's initial value, emitted just before the loop."""
        region = self.b.stack[-1]
        at = region.ops.index(op)
        ops, region.ops = region.ops[at:], region.ops[:at]
        zero = self.zero(init)
        region.ops.extend(ops)
        return zero


# ---------------------------------------------------------------------- a call's tangent


def _callee(fn: Any) -> str:
    return primitives.spelling(fn)


def _replaced(args: list, kwargs: dict, position: Any, t: Any) -> tuple[list, dict]:
    """``args``/``kwargs`` with the argument at ``position`` (an index or a keyword) set to ``t``."""
    if isinstance(position, str):
        return list(args), {**kwargs, position: t}
    return [t if j == position else a for j, a in enumerate(args)], dict(kwargs)


def _zero_of(x: Any) -> Any:
    """A zero tangent for a rule operand ``x`` (a constant operand's is a constant)."""
    if isinstance(x, slice):  # (an item of np.r_[...] / np.c_[...]: the zeros of the range it stands for)
        return np.zeros(len(np.r_[x]))
    if not isinstance(x, Sym):
        return 0.0 if np.ndim(x) == 0 and not isinstance(x, (tuple, list, dict)) else tracing.apply(runtime.zeros_of, x)
    if tracing.is_scalar(x):
        return 0.0
    if type(x.kind) is int:
        return np.zeros_like(x, dtype=float)
    return tracing.apply(runtime.zeros_of, x)


def _rule_position(record: primitives.Primitive, position: Any) -> int:
    return record.keywords[position] if isinstance(position, str) else position


def tangent_rule(record: primitives.Primitive) -> str | None:
    """How forward mode gets the tangent of a call of ``record``'s primitive on arrays: "rule"
    (its JVP rules), "linear", "element by element" (its VJP rules run on tangents), or None
    (refused), or "numbers only" (a function of Python numbers: there its VJP rules serve, as
    for every primitive when all its operands are numbers)."""
    if record.jvps is not None:
        return "rule"
    if record.linear is not None:
        return "linear"
    if record.vjps is not None and (record.elementwise or record.nature in (primitives.ELEMENTWISE,
                                                                              primitives.NUMBER)):
        return "element by element"
    if record.vjps is not None and record.on_numbers:
        return "numbers only"
    return None


def call_tangent(fn: Any, ans: Any, args: list, kwargs: dict, tangents: dict, params: list) -> Any:
    """The tangent of ``ans = fn(*args, **kwargs)`` given the ``tangents`` of some of its
    arguments (by position, or by keyword), run on symbols (see the module docstring)."""
    record = primitives.lookup(fn)
    name = _callee(fn)
    if record.jvps is not None:
        parts = []
        for position, t in tangents.items():
            i = _rule_position(record, position) if not isinstance(position, str) or position in record.keywords \
                else None
            rule = record.jvps[i] if i is not None and i < len(record.jvps) else None
            if rule is None:
                raise NoRuleError(f"no forward-mode rule for argument {position!r} of {name}")
            parts.append(rules.applied(rule, name, t, ans, *args, **kwargs))
        return _total(parts, ans)
    if record.linear == primitives.EACH:
        return _total([tracing.apply(fn, *a, **k) for a, k in (_replaced(args, kwargs, p, t)
                                                             for p, t in tangents.items())], ans)
    if record.linear == primitives.JOINTLY:
        linear_args = [tangents.get(i, _zero_of(a)) if _differentiable_position(record, i) else a
                       for i, a in enumerate(args)]
        linear_kwargs = {k: tangents.get(k, _zero_of(v)) if k in record.keywords else v for k, v in kwargs.items()}
        return tracing.apply(fn, *linear_args, **linear_kwargs)
    vjps = rules.lookup(fn)
    diagonal = tangent_rule(record) == "element by element" or (
        tracing.is_scalar(ans) and all(tracing.is_scalar(a) for a in args))
    if vjps is None or not diagonal:
        receiver = (args[0].value if isinstance(args[0], Sym) else args[0]) if args else None
        name = advice.callee_name(fn, receiver)
        kind = "jvp" if vjps is not None else "vjp"
        raise NoRuleError(f"no {'forward-mode (JVP) ' if vjps is not None else 'derivative '}rule for {name}; "
                          f"{advice.rule_advice(fn, receiver, kind)}")
    diagonal_arrays = not (tracing.is_scalar(ans) and all(tracing.is_scalar(a) for a in args))
    parts = []
    for position, t in tangents.items():
        i = record.keywords.get(position) if isinstance(position, str) else position
        rule = vjps[i] if i is not None and i < len(vjps) else None
        if rule is None:
            raise NoRuleError(f"differentiating argument {position!r} of {name} is not supported")
        # a diagonal Jacobian is its own transpose; a user's rule that cannot run on symbols runs on
        # values only on numbers (on arrays, it would not know to leave the tangent unsummed)
        parts.append(rules.applied(rule, name if not diagonal_arrays else None, t, ans, *args, **kwargs))
    total = _total(parts, ans)
    others = [a for i, a in enumerate(args) if i not in tangents] + [v for k, v in kwargs.items() if k not in tangents]
    return _broadcast_like(total, ans, [tangents[p] for p in tangents], others)


def _differentiable_position(record: primitives.Primitive, i: int) -> bool:
    """Whether a derivative flows through positional argument ``i`` (not ``np.linspace``'s ``num``)."""
    return record.vjps is None or i < len(record.vjps) and record.vjps[i] is not None


def _total(parts: list, ans: Any) -> Any:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _broadcast_like(t: Any, ans: Any, operands: list, others: list) -> Any:
    """The tangent ``t`` of an element-by-element result, spread to the result's shape where
    broadcasting may have made the result bigger than every differentiated operand."""
    if tracing.is_scalar(ans) or not isinstance(ans, Sym) or all(_number(o) for o in others):
        return t  # (with only numbers besides, the differentiated operands have the result's shape)
    if isinstance(t, Sym) and shapes.same(t.static_shape, ans.static_shape):
        return t
    if any(isinstance(o, Sym) and shapes.same(o.static_shape, ans.static_shape) for o in operands):
        return t
    return tracing.apply(runtime.spread_like, t, tracing.shape_of(ans))


def _number(x: Any) -> bool:
    return tracing.is_scalar(x) or not isinstance(x, Sym) and np.ndim(x) == 0 and not isinstance(x, (str, type(None)))


# ---------------------------------------------------------------------- the transformation


def integral(v: Value) -> bool:
    """Whether ``v`` is known to be an int or bool, or an array of them (no tangent but zero)."""
    if v.integer or v.pytype in (int, bool):
        return True
    # (shapes.MASK is any real dtype, float32 included: not known to be integral)
    return isinstance(v.dtype, np.dtype) and not np.issubdtype(v.dtype, np.inexact)


def _fixed_position(record: primitives.Primitive, position: Any) -> bool:
    """Whether the record says argument ``position`` is not differentiated (a None rule there)."""
    if isinstance(position, str):
        return False
    rules_ = record.jvps if record.jvps is not None else record.vjps
    if rules_ is None or position >= len(rules_) or rules_[position] is not None:
        return False
    other = record.vjps if record.jvps is not None else None
    return other is None or position >= len(other) or other[position] is None


def carries_tangent(param: Value) -> bool:
    """Whether a parameter's tangent can be other than zero: not when it is specialised as a
    Python int or bool or an array of ints or bools (an index, an axis, a count -- as JAX's
    ``float0`` tangents)."""
    if param.pytype in (int, bool):
        return False
    return param.dtype is None or np.issubdtype(param.dtype, np.inexact)


def jvp(fn: Function, wrt: list[int], tangent_params: list[Value], recursive_jvp: Any = None,
        output: str = "pair", add_params: bool = True, has_aux: bool = False) -> Function:
    """``fn`` extended, in place, with the tangents of its parameters ``wrt`` as more parameters
    (``tangent_params``, in that order; with ``add_params=False`` they are constants instead) and
    their tangent code. It returns ``(out, tangent_out)`` (``output="pair"``) or the tangent
    alone (``"tangent"``); with ``has_aux``, ``fn`` returns ``(out, aux)``, and the tangent is
    that of ``out`` (the pair is returned as it is)."""
    value = fn.body.yields[0]
    out = loss_of(fn, has_aux) if has_aux else value
    params = [fn.body.params[i] for i in wrt]
    fw = Forward(fn, {p: t for p, t in zip(params, tangent_params) if carries_tangent(p)}, recursive_jvp)
    if add_params:
        fn.body.params.extend(tangent_params)
    fw.region(fn.body)
    b = fw.b
    b.line = None
    t = fw.tangent.get(out)
    if t is None:
        t = fw.zero(out)
    fn.body.yields = [b.call(BUILD_TUPLE, [value, t]) if output == "pair" else t]
    fn.mode = "forward"
    return fn


def forward(fn: Function, argnum: int, with_value: bool = False, as_tuple: bool = False,
            has_aux: bool = False) -> Function:
    """The gradient function of ``fn`` with respect to its Python-number parameter ``argnum``,
    in forward mode (see :func:`applies`); the same calling convention as ``reverse.reverse``."""
    value = fn.body.yields[0]
    out = loss_of(fn, has_aux)
    x = fn.body.params[argnum]
    seed = Value(f"d{x.hint}", SCALAR, 1.0)
    seed.shape = ()
    fw = Forward(fn, {x: seed}, ints=True)
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


__all__ = ["applies", "forward", "jvp", "call_tangent", "NOT_CONST", "SEQUENCE"]
