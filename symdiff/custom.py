"""What users write in their own code to steer differentiation: :func:`stop_gradient`,
custom derivative rules (:class:`custom_vjp`, :class:`custom_jvp`) and checkpointing
(:class:`checkpoint`, :func:`checkpoint_loop`). See docs/transformations.md.

Each of them is a primitive with a record (:mod:`symdiff.primitives`) registered when it is
made, so the passes need nothing of their own for it: a call of a decorated function is not
inlined (a callee with VJP rules stays a call), and the backward sweep applies the record's
rules. Those rules emit a call of a small run-time function (named after the user's function
in the generated code) that does the work when the gradient runs:

* ``stop_gradient`` returns its argument itself and has zero derivative (``nondiff``);
* ``custom_vjp``: ``vjp_f(*args, g)`` reruns ``fwd`` for the residuals, then calls ``bwd``;
* ``custom_jvp``: ``jvp_f(i, t, *args)`` applies the user's JVP rule with tangent ``t`` for
  argument ``i`` (and zeros for the others); without ``defvjp``, the VJP of argument ``i`` is
  read off the JVP rule, one JVP per element of that argument;
* ``checkpoint``: the generated VJP of the function (the one recursive calls use,
  :func:`symdiff.api.recursive_vjp`), which reruns it forwards and then backwards, so that the
  gradient's tape holds its arguments but none of its intermediate values.
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
from typing import Any, Callable, TypeVar

import numpy as np

from . import api, shapes
from .errors import NoRuleError, SymdiffError
from .primitives import ITSELF, KEEPS, OPAQUE, define
from .tracing import Sym, apply

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# ----------------------------------------------------------------------------- stop_gradient


def stop_gradient(x: T) -> T:
    """``x`` itself (an array, a number, a container). Inside a function symdiff
    differentiates, no derivative flows through it: it is treated as a constant.

    Parameters:
        x: any value.

    Example::

        loss = np.sum((y - stop_gradient(target(y))) ** 2)   # target gets no gradient
        x + stop_gradient(np.round(x) - x)                    # straight-through rounding
    """
    return x


def _argument_kind(fn: Any, kinds: list) -> Any:
    """The kind of the call's first argument (it returns that argument)."""
    return kinds[0] if kinds else None


define(stop_gradient, nondiff=True, alias=ITSELF, nature=KEEPS, shape=shapes.first, dtype=shapes.passed_through,
       rank=_argument_kind, pure=True, on_numbers=True, total=True, fold_self=True)


# ----------------------------------------------------------------------------- shared helpers


def _name(fun: Callable) -> str:
    """``qualname (file:line)`` of a user function, for messages."""
    code = getattr(fun, "__code__", None)
    name = getattr(fun, "__qualname__", None) or getattr(fun, "__name__", None) or repr(fun)
    return f"{name} ({code.co_filename}:{code.co_firstlineno})" if code is not None else name


def _identifier(fun: Callable) -> str:
    name = getattr(fun, "__name__", "f")
    return name if name.isidentifier() else "f"


def _runner(fn: Callable, name: str, label: str) -> Callable:
    """``fn``, named ``name`` in generated code, registered as a pure primitive (two calls with the
    same operands compute one result: the VJP of each argument of a call is one call of it) whose
    own derivatives (second derivatives through ``label``) are refused."""
    def runner(*operands: Any) -> Any:
        return fn(*operands)

    runner.__name__ = runner.__qualname__ = name
    runner.__doc__ = fn.__doc__
    _opaque(runner, label)
    return runner


_MOST_OPERANDS = 64  # more operands than any call of a run-time function of this module has


def _opaque(fn: Callable, label: str) -> None:
    """Register ``fn``, a run-time function the derivative code of ``label`` calls, as pure and
    without derivatives of its own: differentiating it again is refused, saying why."""
    def refuse(*_: Any, **__: Any) -> Any:
        raise NoRuleError(f"derivatives of second order through {label} are not supported: its derivative "
                          "rules run as code symdiff does not look into; differentiate once, or call the "
                          "plain function")
    rules = (refuse,) * _MOST_OPERANDS
    define(fn, vjps=rules, jvps=rules, pure=True, alias=OPAQUE, shape=shapes.dynamic, dtype=shapes.unknown_dtype,
           user=True)


def _register(obj: Any, vjps: tuple, **facts: Any) -> None:
    """The record of a decorated function: its rules, and nothing known of its result. It is
    taken to be pure (as JAX takes it): no effects, its arguments unchanged."""
    define(obj, vjps=vjps, nondiff=False, pure=True, alias=OPAQUE, shape=shapes.dynamic, dtype=shapes.unknown_dtype,
           user=True, **facts)


def _positional_only(what: str, kwargs: dict) -> None:
    if kwargs:
        raise NoRuleError(f"{what} is differentiated only when called with positional arguments "
                          f"(got {', '.join(kwargs)}=); pass them by position")


_last_call: list = []  # (runner, region, operands, the call emitted) of the latest _picked call


def _picked(runner: Callable, i: int, *operands: Any) -> Any:
    """Item ``i`` of ``runner(*operands)``, emitted into the code being generated. The rules of the
    arguments of one call run one after the other with the same operands: they share one call."""
    region = next(o for o in operands if isinstance(o, Sym))._b.region
    last = _last_call[0] if _last_call else None
    if last is None or last[0] is not runner or last[1] is not region or not _same_operands(last[2], operands):
        _last_call[:] = [(runner, region, operands, apply(runner, *operands))]
    return apply(operator.getitem, _last_call[0][3], i)


def _same_operands(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(
        x is y or isinstance(x, Sym) and isinstance(y, Sym) and x.value is y.value for x, y in zip(a, b))


def _bind(fun: Callable, args: tuple, label: str) -> tuple:
    """``args`` with ``fun``'s defaults filled in for the parameters not passed."""
    try:
        bound = inspect.signature(fun).bind(*args)
    except TypeError as exc:
        raise SymdiffError(f"{label}: {exc}") from None
    bound.apply_defaults()
    return bound.args


def _array_like(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic, float, int)) and not isinstance(x, bool)


def _zeros_like(x: Any) -> Any:
    """A zero tangent or cotangent for ``x``: 0.0, float zeros, containers of them; None for
    what is not differentiable (strings, functions, None)."""
    if isinstance(x, (bool, int, float, np.generic)):
        return 0.0
    if isinstance(x, np.ndarray):
        return np.zeros(x.shape)
    if isinstance(x, (tuple, list)):
        return type(x)(_zeros_like(v) for v in x)
    if isinstance(x, dict):
        return {k: _zeros_like(v) for k, v in x.items()}
    return None


def _as_output(g: Any, out: Any) -> Any:
    """The cotangent ``g`` of ``out`` as a value of ``out``'s structure: the backward sweep hands a
    tuple or list output a ``{position: cotangent}`` dict holding the items that got one."""
    if isinstance(out, (tuple, list)) and isinstance(g, dict):
        return type(out)(_as_output(g[k], v) if k in g else _zeros_like(v) for k, v in enumerate(out))
    return g


def _checked_cotangents(cts: Any, args: tuple, label: str, rule: str) -> tuple:
    """``cts``, what a user's rule returned as the cotangents of ``args``: a tuple of one per
    argument, each None (zero) or of its argument's shape."""
    if not isinstance(cts, (tuple, list)) or len(cts) != len(args):
        got = f"a {type(cts).__name__} of {len(cts)}" if isinstance(cts, (tuple, list)) else type(cts).__name__
        raise SymdiffError(f"{label}: {rule} must return a tuple of {len(args)} cotangent(s), one per argument "
                           f"of the function, got {got}")
    checked = []
    for k, (ct, arg) in enumerate(zip(cts, args)):
        if ct is None:
            checked.append(_zeros_like(arg))
            continue
        if _array_like(arg) and np.shape(ct) != np.shape(arg):
            raise SymdiffError(f"{label}: {rule} returned a cotangent of shape {np.shape(ct)} for argument "
                               f"{k + 1}, which has shape {np.shape(arg)}")
        checked.append(ct)
    return tuple(checked)


# ----------------------------------------------------------------------------- custom rules


class _CustomRule:
    """A user function with derivative rules of the user's own (the base of :class:`custom_vjp`
    and :class:`custom_jvp`). Calling it runs the function."""

    kind = "custom"

    def __init__(self, fun: Callable):
        if not callable(fun):
            raise SymdiffError(f"symdiff.{self.kind} needs a function, got {type(fun).__name__}")
        self.fun = fun
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(fun, attribute):
                setattr(self, attribute, getattr(fun, attribute))
        self.nargs = len(inspect.signature(fun).parameters)
        self.label = f"{self.kind} function {_name(fun)}"
        self._backward = _runner(self._run_backward, f"vjp_{_identifier(fun)}", self.label)
        _register(self, tuple(self._vjp(i) for i in range(self.nargs)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fun(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<symdiff.{self.kind} of {_name(self.fun)}>"

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        """The VJP of the function, as in JAX: ``fwd(*args) -> (out, residuals)`` and
        ``bwd(residuals, g) -> (cotangent of each argument)`` (None for a zero one). ``fwd`` runs
        again in the backward sweep to make the residuals (the forward sweep runs the function)."""
        if not callable(fwd) or not callable(bwd):
            raise SymdiffError(f"{self.label}: defvjp(fwd, bwd) needs two functions")
        self.fwd, self.bwd = fwd, bwd

    def _vjp(self, i: int) -> Callable:
        def rule(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
            _positional_only(self.label, kwargs)
            if self.bwd is None:
                return self._missing_vjp(i, g, args)
            return _picked(self._backward, i, *args, g)
        return rule

    def _missing_vjp(self, i: int, g: Any, args: tuple) -> Any:
        raise NoRuleError(f"{self.label} has no VJP yet: call {self.__name__}.defvjp(fwd, bwd) before "
                          "differentiating a function that calls it")

    def _run_backward(self, *operands: Any) -> tuple:
        """The cotangents of the arguments (``operands[:-1]``) for the output's cotangent
        ``operands[-1]``: ``fwd`` gives the residuals, ``bwd`` the cotangents."""
        args = _bind(self.fun, operands[:-1], self.label)
        pair = self.fwd(*args)
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise SymdiffError(f"{self.label}: fwd must return a pair (output, residuals), got "
                               f"{type(pair).__name__}")
        out, residuals = pair
        cts = self.bwd(residuals, _as_output(operands[-1], out))
        return _checked_cotangents(cts, args, self.label, "bwd")


class custom_vjp(_CustomRule):
    """A function whose VJP the user gives, as in JAX (``fun``: the function, usually decorated)::

        @symdiff.custom_vjp
        def log1pexp(x):
            return np.log1p(np.exp(x))

        def log1pexp_fwd(x):
            return log1pexp(x), x                    # (output, residuals)

        def log1pexp_bwd(x, g):
            return (g / (1 + np.exp(-x)),)           # one cotangent per argument

        log1pexp.defvjp(log1pexp_fwd, log1pexp_bwd)

    Calling it runs the function. Differentiated (``grad``, ``value_and_grad``, ``vjp``,
    ``jacrev``), a call of it is not looked into: the backward sweep reruns ``fwd`` on the call's
    arguments for the residuals and hands ``bwd`` the call's cotangent. Arguments are positional.
    """

    kind = "custom_vjp"

    def __init__(self, fun: Callable):
        super().__init__(fun)
        define(self, jvps=tuple(self._no_jvp for _ in range(self.nargs)))

    def _no_jvp(self, t: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
        raise NoRuleError(f"{self.label} has a VJP only: forward mode (jvp, jacfwd, hvp, hessian) needs its JVP; "
                          "make it a symdiff.custom_jvp, or give it one with symdiff.defjvp")


class custom_jvp(_CustomRule):
    """A function whose JVP the user gives, as in JAX (``fun``: the function, usually decorated)::

        @symdiff.custom_jvp
        def f(x, y):
            return np.sin(x) * y

        @f.defjvp
        def f_jvp(primals, tangents):
            (x, y), (dx, dy) = primals, tangents
            return f(x, y), np.cos(x) * dx * y + np.sin(x) * dy

    Forward mode applies the rule with the tangent of one argument at a time (zeros for the
    others; the contributions add up), so the rule must be linear in the tangents, as a JVP is.
    Reverse mode reads the VJP off the same rule, one JVP per element of the argument being
    differentiated (``n`` rule calls for an argument of ``n`` elements): exact, but costly for
    big arguments -- give a VJP as well with ``defvjp(fwd, bwd)`` and reverse mode uses that.
    """

    kind = "custom_jvp"

    def __init__(self, fun: Callable):
        self.jvp_rule: Callable | None = None
        super().__init__(fun)
        name = _identifier(fun)
        self._tangent = _runner(self._run_tangent, f"jvp_{name}", self.label)
        self._derived = _runner(self._run_derived_vjp, f"vjp_{name}_from_jvp", self.label)
        define(self, jvps=tuple(self._jvp(i) for i in range(self.nargs)))

    def defjvp(self, jvp_rule: F) -> F:
        """The JVP of the function, as in JAX: ``jvp_rule(primals, tangents) -> (out, tangent of
        out)``, ``primals`` and ``tangents`` tuples of one item per argument. Returns ``jvp_rule``
        (usable as a decorator)."""
        if not callable(jvp_rule):
            raise SymdiffError(f"{self.label}: defjvp needs a function")
        self.jvp_rule = jvp_rule
        return jvp_rule

    def _jvp(self, i: int) -> Callable:
        def rule(t: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
            _positional_only(self.label, kwargs)
            self._require_jvp()
            return apply(self._tangent, i, t, *args)
        return rule

    def _missing_vjp(self, i: int, g: Any, args: tuple) -> Any:
        self._require_jvp()
        return apply(self._derived, i, g, *args)

    def _require_jvp(self) -> None:
        if self.jvp_rule is None:
            raise NoRuleError(f"{self.label} has no JVP yet: call {self.__name__}.defjvp(rule) before "
                              "differentiating a function that calls it")

    def _push(self, args: tuple, i: int, t: Any) -> Any:
        """The tangent of the output for tangent ``t`` of argument ``i`` (zeros for the others)."""
        tangents = [_zeros_like(a) for a in args]
        tangents[i] = t
        pair = self.jvp_rule(tuple(args), tuple(tangents))
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise SymdiffError(f"{self.label}: the JVP rule must return a pair (output, tangent of the "
                               f"output), got {type(pair).__name__}")
        return pair[1]

    def _run_tangent(self, i: int, t: Any, *operands: Any) -> Any:
        """The tangent of the output for the tangent ``t`` of argument ``i``."""
        return self._push(_bind(self.fun, operands, self.label), i, t)

    def _run_derived_vjp(self, i: int, g: Any, *operands: Any) -> Any:
        """The cotangent of argument ``i`` for the output's cotangent ``g``: entry ``k`` is
        ``<g, JVP(e_k)>`` for the basis tangent ``e_k``, one JVP per element of the argument."""
        args = _bind(self.fun, operands, self.label)
        x = args[i]
        if not _array_like(x):
            raise SymdiffError(f"{self.label}: reverse mode reads the VJP off the JVP rule only for array and "
                               f"number arguments (argument {i + 1} is a {type(x).__name__}); give a VJP with "
                               f"{self.__name__}.defvjp(fwd, bwd)")
        shape = np.shape(x)
        ct = np.zeros(shape)
        for index in np.ndindex(*shape):
            basis = np.zeros(shape)
            basis[index] = 1.0
            tangent = self._push(args, i, basis if shape else 1.0)
            ct[index] = _inner(g, tangent)
        return float(ct) if not shape else ct


def _inner(g: Any, t: Any) -> float:
    """``<g, t>`` for a cotangent and a tangent of one output (arrays, numbers, tuples of them;
    a ``{position: cotangent}`` dict for a tuple output)."""
    if isinstance(g, dict):
        return sum(_inner(v, t[k]) for k, v in g.items())
    if isinstance(g, (tuple, list)):
        return sum(_inner(a, b) for a, b in zip(g, t))
    return float(np.sum(np.multiply(g, t)))


# ----------------------------------------------------------------------------- checkpointing


class checkpoint:
    """``fn``, differentiated without keeping its intermediate values: usable as
    ``checkpoint(fn)`` or ``@checkpoint``. Calling it runs ``fn``. In a function symdiff
    differentiates, a call of it is not inlined: the tape keeps its arguments only, and the
    backward sweep runs ``fn``'s generated VJP, which computes ``fn`` again forwards and then
    backwards. Memory for compute: one more forward run of ``fn`` per call. Arguments are
    positional.

    Parameters:
        fn: a Python function symdiff can differentiate.

    Example::

        @symdiff.checkpoint
        def block(h, W):
            return np.tanh(W @ h)
    """

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise SymdiffError(f"symdiff.checkpoint needs a function, got {type(fn).__name__}")
        self.fun = fn
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(fn, attribute):
                setattr(self, attribute, getattr(fn, attribute))
        self.label = f"the checkpointed function {_name(fn)}"
        self.signature = inspect.signature(fn)
        nargs = len(self.signature.parameters)
        self._tangent = _runner(self._run_tangent, f"jvp_{_identifier(fn)}", self.label)
        _register(self, tuple(self._vjp(i) for i in range(nargs)), jvps=tuple(self._jvp(i) for i in range(nargs)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fun(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<symdiff.checkpoint of {_name(self.fun)}>"

    def _vjp(self, i: int) -> Callable:
        def rule(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
            _positional_only(self.label, kwargs)
            return _picked(_generated_vjp(self.fun), i, *args, *self._defaults(len(args)), g)
        return rule

    def _jvp(self, i: int) -> Callable:
        def rule(t: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
            _positional_only(self.label, kwargs)
            return apply(self._tangent, i, t, *args, *self._defaults(len(args)))
        return rule

    def _run_tangent(self, i: int, t: Any, *args: Any) -> Any:
        """The tangent of the output for the tangent ``t`` of argument ``i``: forward mode keeps no
        tape, so this is ``fn``'s generated JVP (with zero tangents for the other arguments)."""
        tangents = [_zeros_like(a) for a in args]
        tangents[i] = t
        return api.jvp(self.fun, args, tangents)[1]

    def _defaults(self, given: int) -> list:
        """The default values of the parameters after the first ``given`` (passed to the VJP)."""
        rest = list(self.signature.parameters.values())[given:]
        if any(p.default is p.empty for p in rest):
            raise NoRuleError(f"{self.label} is called with {given} argument(s), fewer than it takes")
        return [p.default for p in rest]


@functools.cache
def _generated_vjp(fn: Callable) -> Callable:
    """``vjp_fn(*args, cotangent)``, the generated VJP of ``fn`` (reruns it forwards and
    backwards), registered as pure: the calls for each argument's cotangent are one call."""
    vjp = api.recursive_vjp(fn)
    _opaque(vjp, f"the checkpointed function {_name(fn)}")
    return vjp


def checkpoint_loop(step: Callable, carry: Any, xs: Any, *params: Any, segment: int | None = None) -> Any:
    """The carry after ``for t in range(len(xs)): carry = step(carry, xs[t], *params)``, with a
    gradient in memory ``O(sqrt(T))`` instead of ``O(T)``.

    ``step`` is a Python function symdiff can differentiate; ``carry`` an array or number (the
    loop's state); ``xs`` an array or list of the per-step inputs; ``params`` what every step
    reads (weights). Called in a function symdiff differentiates, the forward sweep only runs the
    loop; the backward sweep runs it again keeping every ``segment``-th carry (``ceil(sqrt(T))``
    by default), then for each segment from the last computes its carries again and runs
    ``step``'s generated VJP over them backwards (each call of which reruns one step). The
    backward sweep holds about ``2 * segment`` carries and one step's intermediate values.

    Parameters:
        step: ``step(carry, x, *params) -> carry``.
        carry: the initial state.
        xs: the per-step inputs (``len(xs)`` steps).
        params: passed to every step.
        segment: how many steps a saved carry covers (``ceil(sqrt(T))`` by default).

    Example::

        h = symdiff.checkpoint_loop(lambda h, x, W: np.tanh(W @ h + x), h0, xs, W)
    """
    for t in range(len(xs)):
        carry = step(carry, xs[t], *params)
    return carry


def _segment_length(steps: int, segment: int | None) -> int:
    if segment is None:
        return max(1, math.isqrt(max(steps - 1, 0)) + 1)
    if type(segment) is not int or segment < 1:
        raise SymdiffError(f"checkpoint_loop: segment must be a positive int, got {segment!r}")
    return segment


def checkpoint_loop_vjp(step: Callable, carry: Any, xs: Any, *rest: Any) -> tuple:
    """The cotangents of ``(step, carry, xs, *params)`` in ``checkpoint_loop(step, carry, xs,
    *params, segment=...)`` for the cotangent ``rest[-1]`` of its result (``rest[-2]`` is the
    segment length); see :func:`checkpoint_loop`."""
    *params, segment, g = rest
    steps = len(xs)
    length = _segment_length(steps, segment)
    vjp = api.recursive_vjp(step)
    starts = []  # the carry at the start of each segment
    for t in range(steps):
        if t % length == 0:
            starts.append(carry)
        carry = step(carry, xs[t], *params)
    d_xs: Any = np.zeros(np.shape(xs)) if isinstance(xs, np.ndarray) else [None] * steps
    d_params = [_zeros_like(p) for p in params]
    for first in reversed(range(0, steps, length)):
        carries = [starts[first // length]]
        for t in range(first, min(first + length, steps) - 1):
            carries.append(step(carries[-1], xs[t], *params))
        for t in reversed(range(first, min(first + length, steps))):
            cts = vjp(carries[t - first], xs[t], *params, g)
            g, d_xs[t] = cts[0], cts[1]
            d_params = [_added(d, c) for d, c in zip(d_params, cts[2:])]
    if not isinstance(xs, np.ndarray):
        d_xs = type(xs)(d if d is not None else _zeros_like(x) for d, x in zip(d_xs, xs))
    return (None, g, d_xs, *d_params)


def _added(a: Any, b: Any) -> Any:
    if isinstance(a, (tuple, list)):
        return type(a)(_added(u, v) for u, v in zip(a, b))
    if isinstance(a, dict):
        return {k: _added(a[k], b[k]) for k in a}
    return a + b if a is not None else None


def _loop_rule(i: int) -> Callable:
    def rule(g: Any, ans: Any, step: Any, carry: Any, xs: Any, *params: Any, segment: Any = None) -> Any:
        if i == 0:
            raise NoRuleError("checkpoint_loop does not differentiate with respect to the step function")
        if not callable(step):
            raise NoRuleError("checkpoint_loop needs its step function known when compiling: pass a function "
                              "defined with def by its name")
        return _picked(checkpoint_loop_vjp, i, step, carry, xs, *params, segment, g)
    return rule


def checkpoint_loop_jvp(i: int, tangent: Any, step: Callable, carry: Any, xs: Any, *rest: Any) -> Any:
    """The tangent of ``checkpoint_loop(step, carry, xs, *params)`` for the tangent of its
    argument ``i`` (``rest`` is ``(*params, segment)``): forward mode keeps no tape, so this is
    the loop of ``step``'s generated JVPs."""
    params = rest[:-1]
    d_carry = tangent if i == 1 else _zeros_like(carry)
    d_params = [tangent if i == 3 + k else _zeros_like(p) for k, p in enumerate(params)]
    for t in range(len(xs)):
        d_x = tangent[t] if i == 2 else _zeros_like(xs[t])
        carry, d_carry = api.jvp(step, (carry, xs[t], *params), (d_carry, d_x, *d_params))
    return d_carry


def _loop_jvp(i: int) -> Callable:
    def rule(t: Any, ans: Any, step: Any, carry: Any, xs: Any, *params: Any, segment: Any = None) -> Any:
        if i == 0:
            raise NoRuleError("checkpoint_loop does not differentiate with respect to the step function")
        return apply(checkpoint_loop_jvp, i, t, step, carry, xs, *params, segment)
    return rule


_MOST_PARAMS = 32  # checkpoint_loop differentiates with respect to this many params at most
define(checkpoint_loop, vjps=tuple(_loop_rule(i) for i in range(3 + _MOST_PARAMS)),
       jvps=tuple(_loop_jvp(i) for i in range(3 + _MOST_PARAMS)), alias=OPAQUE, shape=shapes.dynamic,
       dtype=shapes.unknown_dtype)
_opaque(checkpoint_loop_jvp, "checkpoint_loop")
_opaque(checkpoint_loop_vjp, "checkpoint_loop")
