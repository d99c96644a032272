"""The user-facing API: ``grad`` and ``value_and_grad``, and the generated VJPs
(``recursive_vjp``) that the backward sweep calls for recursive functions.

Each returned function compiles the gradient once per *signature* of its arguments on first
use, and caches it: the exact type of Python numbers; for NumPy arrays, their dtype and which
axes have size 1 (for arrays of other libraries NumPy hands over to, dask and CuPy, their type
too: symdiff/arrays.py); for dicts, lists and tuples, their keys and the signatures of their items; a
function passed as an argument, by identity; anything else gets a generic version. Python
numbers get plain arithmetic and ``math`` in the generated code; arrays get NumPy. A
specialisation is compiled again when a global or closure variable it compiled in has been
rebound. ``.source`` holds the generated code of the most recently compiled specialisation
(the generic one right after ``grad``, unless that cannot be compiled yet: a global not
defined yet, in-place updates whose aliasing only the argument types decide, or a call without
a derivative rule -- the arguments may make it one that has a rule, ``p.values()`` of a dict).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import gc
import inspect
import keyword
import linecache
import operator
import os
import re
import sys
import types
import weakref
from typing import Any, Callable, Iterator, Literal, Protocol, Sequence, Union, overload

import numpy as np

from . import arrays, codegen, forward, ir, lower, optimize, primitives, reverse, rules, shapes, tracing
from .display import highlighted_html, markdown
from .errors import (
    REPORT,
    AliasingError,
    InternalError,
    NeedsArgumentsError,
    NoRuleError,
    SymdiffError,
    UnresolvedNameError,
    located,
)
from .frontend import Parsed, check_entry_signature, parse_function
from .runtime import dispatches
from .version import __version__

ArgNums = Union[int, Sequence[int]]


class Compiled(Protocol):
    """What :func:`grad` and the other transformations return: a function, called with the
    arguments of the function it differentiates, whose ``.source`` is the generated Python code
    of its latest specialisation (None while none could be compiled: a global not defined yet)."""

    @property
    def source(self) -> str | None: ...

    def __call__(self, *args: Any) -> Any: ...


class CompiledWithValue(Protocol):
    """What :func:`value_and_grad` returns: like :class:`Compiled`, but a call gives the pair
    ``(value, gradient)`` (``((value, aux), gradient)`` with ``has_aux=True``)."""

    @property
    def source(self) -> str | None: ...

    def __call__(self, *args: Any) -> tuple[Any, Any]: ...


_SCALAR_TYPES = (float, int, bool)
FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType, np.ufunc)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while compiling: the IR of a function is one large web of
    objects that stays alive until the code is generated, and each collection the compiler's
    allocations set off would walk all of it, for nothing -- the time of a compile would grow
    faster than the function. What the compile leaves as garbage is collected afterwards as usual."""
    if not gc.isenabled():  # (a compile within a compile, or the caller turned it off)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Compiler:
    """Compiles and caches the specialisations of one gradient (of ``grad``, of
    ``value_and_grad``, or with ``seeded`` the VJP of a recursive function), and keeps its
    dispatcher -- the plain function handed to the user -- pointing at them.

    The dispatcher is generated code too: per compiled specialisation, one test per argument
    (``type(x) is float``; for arrays their dtype, ndim and size-1 axes) and one per global or
    closure variable it compiled in (still the same object); the newest specialisation runs
    inline in it. Arguments no guard matches (containers, functions, other types, a rebound
    global) go to :meth:`compile_and_call`. An exception the generated code raises is the
    user's where their function raises on the same arguments, else an :class:`InternalError`.
    """

    def __init__(self, fun: Callable, argnums: ArgNums, with_value: bool, has_aux: bool = False,
                 seeded: bool = False, stages: Sequence[Sequence[int]] = (), mode: str | None = None,
                 prefix: str | None = None, units: Sequence[int] = ()):
        self.fun = fun
        self.argnums = argnums
        self.with_value = with_value
        self.has_aux = has_aux
        # "grad": the gradient of argnums; "vjp": the same from the output's cotangent, a last
        # argument; "jvp": the output and its tangent. Before that, each of ``stages`` (positions
        # among the parameters so far) takes the tangents of those parameters as more arguments
        # and makes the function their derivative along them (forward mode), so a "grad" after
        # stages is a Hessian-vector product (reverse over forward), and so on to any order.
        self.mode = mode or ("vjp" if seeded else "grad")
        self.seeded = self.mode == "vjp"
        self.stages = [tuple(stage) for stage in stages]
        self.units = frozenset(units)  # stages along the constant 1.0 (of a number), adding no parameter
        primal = _param_names(fun)
        self.extra = _extra_params(primal, self._stage_params(), self.seeded, single="v" if prefix == "hvp" else None)
        self.params = primal + self.extra
        self.defaults = {} if self.extra else _defaults(fun)  # (the parameters added come after every argument)
        self.cache: dict[tuple, Callable] = {}  # every compiled specialisation, by key
        self._derived: dict[tuple, Any] = {}  # transformations of this one (see derived)
        self.inline: dict[tuple, tuple[str, dict, tuple]] = {}  # their source, globals and parameter names
        self.reads: dict[tuple, list] = {}  # the globals/closure variables each one compiled in
        self._parsed: Parsed | None = None
        # called with the name of each stage of a compile and the IR after it (``python -m symdiff --ir``)
        self.on_stage: Callable[[str, ir.Function], None] | None = None
        prefix = prefix or (self.mode if self.mode != "grad" else "value_and_grad" if with_value else "grad")
        # (a transformation of a transformation is named after that one: grad_grad_f, vjp_grad_f)
        self.name = prefix if prefix.endswith("_" + _identifier(getattr(fun, "__name__", "f"))) else \
            f"{prefix}_{_identifier(getattr(fun, '__name__', 'f'))}"
        self.namespace: dict[str, Any] = {"_compile": self.compile_and_call, "ndarray": np.ndarray,
                                          "_SymdiffError": SymdiffError, "_failed": self.failed}
        self.namespace.update({f"_default_{name}": value for name, value in self.defaults.items()})
        self.where = _where(fun)
        self.dispatch_base = f"<symdiff dispatch {self.name} ({self.where})>"
        self.filename = _fresh_filename(self.dispatch_base)
        self.dispatch_files = [self.filename]  # (the dispatcher's code now, and before its latest rebuild)
        self.dispatcher = self._build_dispatcher()
        _forget_when_gone(self.dispatcher, self.dispatch_files)
        functools.update_wrapper(self.dispatcher, fun, assigned=("__module__",), updated=())
        del self.dispatcher.__wrapped__  # the dispatcher computes a gradient, not fun: never unwrap it to fun
        self.dispatcher.__name__ = self.dispatcher.__qualname__ = self.name
        self.dispatcher.__doc__ = self._docstring()
        self.dispatcher.source = None
        self.dispatcher._symdiff = self
        dispatcher = self.dispatcher  # (in a notebook: the generated code, highlighted)
        self.dispatcher._repr_markdown_ = lambda: markdown(dispatcher.source or "")
        self.dispatcher._repr_html_ = lambda: highlighted_html(dispatcher.source or "")

    def _docstring(self) -> str:
        """The dispatcher's own docstring (what ``help`` shows): what it computes, of what."""
        fun_name = _name(self.fun)
        nums = self.argnums if isinstance(self.argnums, int) else tuple(self.argnums)
        primal = self.params[:len(self.params) - len(self.extra)]

        def named(i: int) -> str:
            return primal[i] if isinstance(i, int) and -len(primal) <= i < len(primal) else repr(i)

        wrt = named(nums) if isinstance(nums, int) else ", ".join(named(i) for i in nums)
        if self.mode == "grad" and not self.stages:
            what = ("Value and gradient" if self.with_value else "Gradient") + f" of {fun_name} with respect to {wrt}"
        else:
            what = f"{self.name}: a derivative of {fun_name} ({self.mode})"
        returns = (f"\n\nReturns ``({fun_name}(...), gradient)``." if self.with_value and not self.stages else
                   f"\n\nReturns ``(gradient, aux)``, ``aux`` the second item {fun_name} returns."
                   if self.has_aux and self.mode == "grad" and not self.stages else "")
        return (f"{what}, generated by symdiff {__version__}.{returns}\n\n"
                f"Takes the arguments ({', '.join(self.params)}). The function differentiated is "
                f"{getattr(self.fun, '__qualname__', fun_name)} at {self.where}; the generated code "
                f"is in ``.source``.")

    @property
    def parsed(self) -> Parsed:
        if self._parsed is None:
            self._parsed = parse_function(self.fun)
        return self._parsed

    def compile_and_call(self, *args: Any) -> Any:
        """The dispatcher's fallback: call the specialisation for these arguments, compiled
        now if there is none yet or a global it compiled in has been rebound."""
        key = tuple(_guard_key(a) for a in args)
        for param, arg in zip(self.params, args):
            _refuse_complex(param, arg, self.parsed)
        compiled = self.cache.get(key)
        if compiled is None or not _unchanged(self.reads[key]):
            compiled = self.compile(key, len(args))
        return compiled(*args)

    def failed(self, error: Exception, args: tuple) -> None:
        """Generated code raised ``error``: re-raise it where the user's function raises on these
        arguments too, or where a rule of the user's that the code calls raised it (the error is
        the user's), otherwise report an internal error."""
        primal_args = args[:len(args) - len(self.extra)]
        note = _note_of(error, self.name)
        if rules.raised_by_rule_at_run_time(error):  # a user's rule, called as it is (it could not be traced)
            if note is not None:
                _add_note(error, note)
            raise error from None
        try:
            self.fun(*copy.deepcopy(primal_args))
        except Exception:  # noqa: BLE001 -- any exception of the user's function makes it theirs
            if note is not None:
                _add_note(error, note)
            raise error from None
        parsed = self.parsed
        where = f"{parsed.filename}:{parsed.node.lineno}"
        raise InternalError(f"{where}: the generated {self.name} raised {type(error).__name__}: {error}, "
                            f"where {parsed.name}() itself runs without error on these arguments"
                            f"{' (' + note + ')' if note else ''}. {REPORT}") from error

    def compile(self, key: tuple, nargs: int) -> Callable:
        """Compile the gradient for argument kinds ``key`` and add it to the dispatcher."""
        parsed = self.parsed
        with _collector_paused():
            try:
                return self._compile(parsed, key, nargs)
            except SymdiffError:
                raise
            except Exception as error:  # noqa: BLE001 -- a compiler bug: never shown raw
                raise _internal_error(error, parsed, self.name) from error

    def _compile(self, parsed: Parsed, key: tuple, nargs: int) -> Callable:
        extra_keys = key[len(key) - len(self.extra):]
        nargs, key = nargs - len(self.extra), key[:len(key) - len(self.extra)]
        if nargs != len(parsed.params):
            raise SymdiffError(f"{parsed.name}() takes {len(parsed.params)} arguments, got {nargs}")
        nums = [self.argnums] if isinstance(self.argnums, int) else list(self.argnums)
        total = nargs + sum(len(stage) for stage in self.stages)
        for i in nums:
            if not -total <= i < total:
                raise SymdiffError(f"argnums {self.argnums!r} is out of range for {parsed.name}() "
                                   f"with {nargs} arguments")
        nums = [i % total for i in nums]
        primal = lower.lower(parsed, list(key))
        self._stage("lowered", primal)
        optimize.optimize(primal)
        ir.verify(primal)
        self._stage("optimized", primal)
        extra = [ir.Value(name) for name in self.extra]
        for value, spec in zip(extra, extra_keys):
            lower.specialise(value, spec)
        self._forward_stages(primal, extra, list(key) + list(extra_keys))
        as_tuple = not isinstance(self.argnums, int)
        if self.mode in ("jvp", "tangent"):
            gradient = primal
            optimize.optimize(gradient, final=True)
        elif self.stages:
            gradient = reverse.reverse(primal, nums, False, as_tuple=as_tuple, recursive_vjp=recursive_vjp,
                                       seed=extra[-1] if self.seeded else None)
        elif forward.applies(primal, nums, self.seeded) and not (self.has_aux and not self.with_value):
            gradient = forward.forward(primal, nums[0], self.with_value, as_tuple, self.has_aux)
        else:
            gradient = reverse.reverse(primal, nums, self.with_value, as_tuple=as_tuple, has_aux=self.has_aux,
                                       seed=extra[-1] if self.seeded else None, recursive_vjp=recursive_vjp,
                                       return_aux=self.mode == "grad")
        ir.verify(gradient)
        self._stage(f"differentiated ({'forward' if gradient.mode == 'forward' else 'reverse'} mode) and optimized",
                    gradient)
        doc = (f"{self.name.split('_')[0]} of {parsed.name} ({os.path.basename(parsed.filename)}:{parsed.node.lineno}) "
               f"{self._describe_transformation(parsed, nums, gradient.mode)}; generated by symdiff")
        doc = doc.replace("value ", "value_and_grad ", 1) if self.with_value else doc
        doc += "\n" + _specialisation_note(parsed.params, key)
        like = next((p for p, k in zip(gradient.body.params, key + tuple(extra_keys))
                     if isinstance(k, ir.ArraySpec) and k.type is not None), None)
        if like is not None:  # the arrays it creates are of that library (symdiff/arrays.py)
            arrays.follow(gradient, like)
        source, namespace = codegen.generate(gradient, self.name, doc)
        filename = _fresh_filename(f"<symdiff {self.name} ({self.where})>")
        compiled = codegen.compile_function(source, self.name, namespace, filename)
        _ORIGINS[filename] = (parsed.filename, source.origins)
        _forget_when_gone(compiled, [filename])
        compiled.source = source
        key = key + tuple(extra_keys)
        self.cache[key] = compiled
        self.reads[key] = [(holder, name, obj, _compiled_facts(obj)) for holder, name, obj in primal.reads]
        code = compiled.__code__
        self.inline[key] = (source, namespace, code.co_varnames[:code.co_argcount])
        self.dispatcher.source = source
        if _guardable(key):  # other keys are found through _compile
            self._rebuild_dispatcher()
        return compiled

    def _stage(self, name: str, fn: ir.Function) -> None:
        if self.on_stage is not None:
            self.on_stage(name, fn)

    def _stage_params(self) -> list[tuple]:
        """The positions each forward stage adds a tangent parameter for (none for a unit stage)."""
        return [() if s in self.units else stage for s, stage in enumerate(self.stages)]

    def _forward_stages(self, fn: ir.Function, extra: list[ir.Value], keys: list) -> None:
        """Apply the forward-mode stages to ``fn`` in place: each takes the next tangent
        parameters of ``extra`` (of their primals' shapes: the callers check it), or the
        constant 1.0 for a unit stage."""
        params = list(fn.body.params)
        taken = 0
        for s, positions in enumerate(self.stages):
            if s in self.units:
                tangents = [ir.Value(f"d{params[i].hint}", ir.SCALAR, 1.0) for i in positions]
            else:
                tangents = extra[taken:taken + len(positions)]
                for value, i, spec in zip(tangents, positions, keys[len(params):]):
                    value.aval = _tangent_aval(params[i], value, spec, keys[i])
                taken += len(positions)
            last = s == len(self.stages) - 1
            forward.jvp(fn, list(positions), tangents, recursive_jvp=recursive_jvp,
                        output="pair" if last and self.mode == "jvp" else "tangent", add_params=s not in self.units,
                        has_aux=self.has_aux and s == 0)
            if s not in self.units:
                params += tangents
            self._stage(f"forward stage {s + 1} (along {', '.join(params[i].hint or '?' for i in positions)})", fn)
            if not last:
                optimize.optimize(fn)

    def _describe_transformation(self, parsed: Parsed, nums: list[int], mode: str) -> str:
        """What the generated code computes, for its header."""
        names = parsed.params + self.extra
        along, taken = [], len(parsed.params)
        for s, positions in enumerate(self.stages):
            if s in self.units:
                along.append(", ".join(names[i] for i in positions))
                continue
            along.append(", ".join(f"{names[i]} along {names[taken + k]}" for k, i in enumerate(positions)))
            taken += len(positions)
        wrt = ", ".join(names[i] for i in nums)
        if self.mode in ("jvp", "tangent"):
            inner = "".join(f" of its derivative for {a}" for a in along[:-1])
            return f"(its value and derivative for {along[-1]}{inner}) in forward mode"
        if self.stages:
            inner = " of ".join(f"its derivative for {a}" for a in reversed(along))
            what = "a Hessian-vector product" if len(self.stages) == 1 and not self.units else \
                f"a derivative of order {len(self.stages) + 1}"
            sweep = "the vector-Jacobian product" if self.seeded else "the gradient"
            return f"({what}): {sweep} with respect to {wrt} (reverse mode) of {inner} (forward mode)"
        return f"with respect to {wrt}{' in forward mode' if mode == 'forward' else ''}"

    # ---------------------------------------------------------- differentiating the result again

    def differentiable_again(self) -> str | None:
        """Why the function this compiles cannot be differentiated again, or None."""
        if self.mode == "tangent" and not self.has_aux:
            return None
        if self.mode != "grad" or self.with_value or self.has_aux or not isinstance(self.argnums, int):
            return (f"{self.name} cannot be differentiated again: only a gradient with respect to one argument "
                    "(symdiff.grad(f) or grad(f, argnums=i)) and a Hessian-vector product (symdiff.hvp(f)) can be")
        return None

    def derived(self, kind: str, positions: tuple = ()) -> Any:
        """A transformation of this function (G, the gradient of ``argnums`` after the forward
        stages) built on the same IR, with one more forward stage -- derivatives of a gradient
        commute: d/dt grad_x f = grad_x (d/dt f).

        * "hvp": G's derivative along its parameters ``positions``, a tangent per position;
        * "jvp": the same with G's value: ``(G(*args), derivative)``;
        * "vjp": G's VJP ``(*args, u) -> cotangents of every parameter`` (the gradient of the
          derivative of f along u on ``argnums``).
        """
        reason = self.differentiable_again()
        if reason is not None:
            raise SymdiffError(reason)
        key = (kind, tuple(positions))
        cached = self._derived.get(key)
        if cached is not None:
            return cached
        everything = tuple(range(len(self.params)))
        if self.mode == "tangent":  # a derivative along tangents: its VJP, or one more stage
            made = _Compiler(self.fun, everything, False, stages=self.stages, mode="vjp", units=self.units,
                             prefix=f"vjp_{self.name}") if kind == "vjp" else \
                _Compiler(self.fun, 0, False, stages=[*self.stages, tuple(positions)], mode="tangent",
                          units=self.units, prefix=f"d{self.name}")
        elif kind == "vjp":
            made = _Compiler(self.fun, tuple(range(len(self.params))), False, stages=[*self.stages, (self.argnums,)],
                             prefix=f"vjp_{self.name}", units=self.units)
        elif kind == "grad":  # of a G of a number: its VJP from the cotangent 1.0, of argument positions[0]
            made = _Compiler(self.fun, positions[0], False, stages=[*self.stages, (self.argnums,)],
                             prefix=f"grad_{self.name}", units=self.units | {len(self.stages)})
        elif kind in ("hvp", "jvp"):
            made = _Compiler(self.fun, self.argnums, False, stages=[*self.stages, tuple(positions)],
                             prefix=f"d{self.name}", units=self.units)
            if kind == "jvp":
                made = _WithValue(self.dispatcher, made)
        else:
            raise ValueError(kind)
        self._derived[key] = made
        return made

    def register_primitive(self, callee: Callable) -> None:
        """Make ``callee`` (the dispatcher, or a wrapper calling it with the same arguments) a
        primitive: its VJP and JVPs are derived transformations (:meth:`derived`), compiled on
        first use, so that code calling it can be differentiated -- to any order."""
        if primitives.registered(callee) is not None and primitives.lookup(callee).vjps is not None:
            return
        reason = self.differentiable_again()
        if reason is not None:
            raise SymdiffError(reason)
        count = len(self.params)

        def vjp(i: int) -> Callable:
            return lambda g, ans, *args: tracing.apply(operator.getitem, tracing.apply(
                self._primitive("vjp"), *args, g), i)

        def jvp(i: int) -> Callable:
            return lambda t, ans, *args: tracing.apply(self._primitive("hvp", (i,)), *args, t)

        position = self.argnums  # (a gradient has the shape of the argument it is taken for)
        known = self.mode == "grad"
        primitives.define(callee, vjps=tuple(vjp(i) for i in range(count)), jvps=tuple(jvp(i) for i in range(count)),
                          pure=True, alias=primitives.FRESH, dtype=shapes.unknown_dtype,
                          shape=lambda fn, args, kwargs, found: found[position] if known and position < len(found)
                          else None,
                          rank=lambda fn, kinds: kinds[position] if known and position < len(kinds) else None)

    def _primitive(self, kind: str, positions: tuple = ()) -> Callable:
        """The dispatcher of :meth:`derived` ``(kind, positions)``, itself a primitive where it can
        be differentiated again (a derivative of a derivative called inside a differentiated
        function: third derivatives, ``grad`` of a function calling ``grad(f)`` twice over)."""
        made = self.derived(kind, positions)
        if made.differentiable_again() is None:
            made.register_primitive(made.dispatcher)
        return made.dispatcher

    @property
    def guarded(self) -> list[tuple[tuple, Callable]]:
        return [(k, f) for k, f in self.cache.items() if _guardable(k)]

    def _build_dispatcher(self) -> Callable:
        code = self._dispatcher_source()
        codegen.register_source(code, self.filename)
        exec(compile(code, self.filename, "exec"), self.namespace)  # noqa: S102
        return self.namespace[self.name]

    def _rebuild_dispatcher(self) -> None:
        guarded = self.guarded
        for i, (_, fn) in enumerate(guarded):
            self.namespace[f"_spec{i}"] = fn
        # The newest specialisation runs inline in the dispatcher (saving a call per gradient),
        # provided its globals agree with those already in the dispatcher's namespace.
        inlined, origins = None, {}
        if guarded:
            source, namespace, params = self.inline[guarded[-1][0]]
            # (codegen renames a parameter that shadows a name the code needs: `sum`, `np`)
            if list(params) == self.params and all(self.namespace.get(k, v) is v for k, v in namespace.items()):
                self.namespace.update(namespace)
                body = _function_body(source, self.name)
                inlined = [line for _, line in body]
                origins = {i: getattr(source, "origins", {}).get(at) for i, (at, _) in enumerate(body)}
        scratch = dict(self.namespace)
        code = self._dispatcher_source(inlined)
        # a new name for the new code (a call of the old one may be under way: its traceback shows
        # its own lines), and the code before the one before forgotten
        self.filename = _fresh_filename(self.dispatch_base)
        self.dispatch_files.append(self.filename)
        if len(self.dispatch_files) > 2:
            _forget([self.dispatch_files.pop(0)])
        if inlined is not None:  # (the inlined lines are the last before the fallback and the handler)
            first = code.splitlines().index("    " + inlined[0]) + 1
            _ORIGINS[self.filename] = (self.parsed.filename,
                                       {first + i: origin for i, origin in origins.items() if origin is not None})
        codegen.register_source(code, self.filename)
        exec(compile(code, self.filename, "exec"), scratch)  # noqa: S102
        self.dispatcher.__code__ = scratch[self.name].__code__

    def _dtype_name(self, key: Any) -> str | None:
        """The dispatcher's global holding an array key's dtype (compared with ``is``: NumPy's
        dtypes of one kind are one object; another object of an equal dtype takes the slow path)."""
        if not isinstance(key, ir.ArraySpec):
            return None
        name = "_dtype_" + re.sub(r"\W", "_", str(key.dtype))
        while self.namespace.setdefault(name, key.dtype) is not key.dtype:
            name += "_"
        return name

    def _type_name(self, key: Any) -> str:
        """The dispatcher's global holding an array key's type: ``ndarray``, or another library's
        array type (compared with ``is``)."""
        if not isinstance(key, ir.ArraySpec) or key.type is None:
            return "ndarray"
        name = "_type_" + re.sub(r"\W", "_", arrays.describe_type(key))
        while self.namespace.setdefault(name, key.type) is not key.type:
            name += "_"
        return name

    def _guard_of(self, expr: str, key: Any) -> str:
        """The dispatcher's test that ``expr`` (a parameter, or an item of one) is of kind ``key``:
        for a container, its type, length, keys in order and each item's kind."""
        if not isinstance(key, ir.Struct):
            return _guard(expr, key, self._dtype_name(key), self._type_name(key))
        tests = [f"type({expr}) is {key.type.__name__}", f"len({expr}) == {len(key.keys)}"]
        if key.type is dict:
            tests.append(f"tuple({expr}) == {tuple(key.keys)!r}")
        tests += [self._guard_of(f"{expr}[{k!r}]", item) for k, item in zip(key.keys, key.items)]
        return "(" + " and ".join(tests) + ")"

    def _dispatcher_source(self, inlined: list[str] | None = None) -> str:
        params = ", ".join(self.params)
        signature = ", ".join(f"{p}=_default_{p}" if p in self.defaults else p for p in self.params)
        lines = [f"def {self.name}({signature}):", "  try:"]
        guarded = self.guarded
        for i, (key, _) in enumerate(guarded):
            tests = [self._guard_of(p, k) for p, k in zip(self.params, key)]
            for j, (holder, name, obj, facts) in enumerate(self.reads[key]):  # a global rebound: recompile
                self.namespace[f"_held{i}_{j}"], self.namespace[f"_was{i}_{j}"] = holder, obj
                tests.append(f"_held{i}_{j}.get({name!r}) is _was{i}_{j}" if isinstance(holder, dict)
                             else f"_held{i}_{j}.cell_contents is _was{i}_{j}")
                if facts is not None:  # an array's shape and dtype, compiled in too: changed in place, recompile
                    self.namespace[f"_wasdtype{i}_{j}"] = facts[1]
                    tests.append(f"_was{i}_{j}.shape == {facts[0]!r} and _was{i}_{j}.dtype is _wasdtype{i}_{j}")
            tests = " and ".join(tests) or "True"
            lines.append(f"    if {tests}:")
            if inlined is not None and i == len(guarded) - 1:
                lines.extend("    " + line for line in inlined)
            else:
                lines.append(f"        return _spec{i}({params})")
        lines.append(f"    return _compile({params})")
        lines += ["  except _SymdiffError:", "    raise",
                  "  except Exception as _error:", f"    _failed(_error, ({params}{',' if params else ''}))"]
        return "\n".join(lines) + "\n"


# the user's line each line of generated code runs or differentiates, by the code's filename
# (and the file of the function differentiated, which the code's `# line N:` comments are in)
_ORIGINS: dict[str, tuple[str, dict[int, tuple[str, int, bool]]]] = {}


def _where(fun: Callable) -> str:
    """``file.py:line`` of the def of ``fun`` (or of the function a method calls)."""
    code = getattr(getattr(fun, "__func__", fun), "__code__", None)
    if code is None:
        return "?"
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


def _forget(filenames: list[str]) -> None:
    """Drop generated code no function runs any more from ``linecache`` (and its line map)."""
    for filename in filenames:
        linecache.cache.pop(filename, None)
        _ORIGINS.pop(filename, None)


def _forget_when_gone(function: Callable, filenames: list[str]) -> None:
    """Forget ``filenames`` (a list that may still change) when ``function`` is garbage collected."""
    weakref.finalize(function, _forget, filenames)


def _fresh_filename(name: str) -> str:
    """``name``, or ``name`` numbered, so that it names no source already in ``linecache``."""
    if name not in linecache.cache:
        return name
    n = 2
    while f"{name[:-1]} #{n}>" in linecache.cache:
        n += 1
    return f"{name[:-1]} #{n}>"


def _origin_at(filename: str, line: int) -> tuple[str, int, bool] | None:
    """The user's line that line ``line`` of generated code ``filename`` runs or differentiates:
    its own, else that of the ``# line N:`` comment above it in its block (in the backward sweep)."""
    known = _ORIGINS.get(filename)
    if known is None:
        return None
    main_file, origins = known
    if line in origins:
        return origins[line]
    lines = linecache.getlines(filename)
    if not 0 < line <= len(lines):
        return None
    indent = _indent(lines[line - 1])
    for text in reversed(lines[:line - 1]):
        if _indent(text) < indent:
            return None  # (out of the block: a comment further up is another statement's)
        match = re.match(r"\s*# (?:line (\d+)|(\S+):(\d+)):", text)
        if match is None:
            continue
        if match.group(1):
            return (main_file, int(match.group(1)), True)
        files = {origin[0] for origin in origins.values() if os.path.basename(origin[0]) == match.group(2)}
        return (files.pop(), int(match.group(3)), True) if len(files) == 1 else None
    return None


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _note_of(error: BaseException, name: str) -> str | None:
    """``while differentiating loss.py:5: h = np.tanh(X @ w)``: the user's line the generated
    code was running (forward sweep) or differentiating (backward sweep) where ``error`` was raised."""
    found = None
    tb = error.__traceback__
    while tb is not None:
        origin = _origin_at(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        found = origin or found
        tb = tb.tb_next
    if found is None:
        return None
    file, line, differentiating = found
    text = " ".join(linecache.getline(file, line).strip().splitlines())
    doing = "while differentiating" if differentiating else "while running"
    return f"{doing} {os.path.basename(file)}:{line}: {text} (in the generated {name})"


def _add_note(error: BaseException, note: str) -> None:
    """Add ``note`` to ``error`` (``add_note``; before Python 3.11, to its message), once."""
    if sys.version_info >= (3, 11):
        if note not in getattr(error, "__notes__", ()):
            error.add_note(note)
    elif error.args and isinstance(error.args[0], str) and note not in error.args[0]:
        error.args = (f"{error.args[0]}\n{note}", *error.args[1:])


def _tangent_aval(param: ir.Value, tangent: ir.Value, spec: Any, primal_spec: Any) -> ir.Abstract:
    """A tangent's abstract value: its primal's kind and shape where both have the same kind of
    specialisation (only then do shapes of one name those of the other), with its own dtype."""
    same = (isinstance(spec, ir.ArraySpec) and isinstance(primal_spec, ir.ArraySpec) and spec.ones == primal_spec.ones
            or spec is float and primal_spec is float)
    return param.aval._replace(dtype=tangent.dtype, integer=False, pytype=tangent.pytype) if same else tangent.aval


class _WithValue:
    """The JVP of a function symdiff made, as a compiler-like object: its ``dispatcher`` (itself)
    returns ``(G(*args), derivative along the tangents)``; ``.source`` is the derivative's code."""

    def __init__(self, value: Callable, derivative: _Compiler):
        self.value, self.derivative = value, derivative
        self.params, self.name = derivative.params, derivative.name
        self.count = len(derivative.params) - len(derivative.stages[-1])
        self.dispatcher = self

    def __call__(self, *args: Any) -> tuple:
        return self.value(*args[:self.count]), self.derivative.dispatcher(*args)

    @property
    def source(self) -> str | None:
        return self.derivative.dispatcher.source


def _extra_params(primal: list[str], stages: list[tuple], seeded: bool, single: str | None = None) -> list[str]:
    """The parameters a transformation adds after the function's own: the tangents of each
    forward stage (``dx`` for ``x``, ``ddx`` for ``dx``; ``single`` names a lone one, ``v`` of a
    Hessian-vector product), then a VJP's output cotangent."""
    names = list(primal)
    for positions in stages:
        for i in positions:
            name = single if single and len(stages) == 1 and len(positions) == 1 else f"d{names[i]}"
            while name in names:
                name = "d" + name
            names.append(name)
    if seeded:
        names.append("cotangent" if "cotangent" not in names else "cotangent_out")
    return names[len(primal):]


def _internal_error(error: Exception, parsed: Parsed, name: str) -> InternalError:
    """``error``, raised while compiling ``name``, as an :class:`InternalError` located at the
    innermost line of the user's code the compiler was working on."""
    line = _line_being_compiled(error.__traceback__) or parsed.node.lineno
    source_line = linecache.getline(parsed.filename, line) or None
    message = f"internal error while compiling {name}: {type(error).__name__}: {error}. {REPORT}"
    return InternalError(located(message, parsed.filename, line, None, source_line))


def _line_being_compiled(tb: types.TracebackType | None) -> int | None:
    """The source line of the innermost AST statement or IR op found in the compiler's frames."""
    line = None
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, ast.stmt) or isinstance(value, ast.expr):
                line = getattr(value, "lineno", None) or line
            elif isinstance(value, ir.Op) and getattr(value, "line", None):
                line = value.line
        tb = tb.tb_next
    return line


def _describe(key: Any) -> str:
    """A specialisation key in words: ``float64 array of shape (1, *)``."""
    if key is None:
        return "any type"
    if isinstance(key, type):
        return f"a Python {key.__name__}"
    if isinstance(key, ir.ArraySpec):
        shape = ", ".join("1" if one else "*" for one in key.ones) + ("," if len(key.ones) == 1 else "")
        return f"{key.dtype} {arrays.describe_type(key)} of shape ({shape})"
    if isinstance(key, ir.Struct):
        items = ", ".join(f"{k!r}: {_describe(v)}" if key.type is dict else _describe(v)
                          for k, v in zip(key.keys, key.items))
        return {dict: "{%s}", list: "[%s]", tuple: "(%s)"}[key.type] % items
    return f"the function {getattr(key, '__qualname__', repr(key))}"


def _specialisation_note(params: list[str], key: tuple) -> str:
    """The header lines of generated source saying which arguments it is valid for."""
    if all(k is None for k in key):
        return "valid for arguments of any type: broadcasting and shapes are decided at run time"
    kinds = "; ".join(f"{p}: {_describe(k)}" for p, k in zip(params, key))
    return (f"specialised for {kinds}\n"
            "(* is any size but 1); valid only for arguments of these kinds -- the gradient object "
            "compiles a version for others")


def _refuse_complex(param: str, arg: Any, parsed: Parsed) -> None:
    """Complex arguments are refused: symdiff differentiates real-valued code only."""
    if type(arg) in (dict, list, tuple):
        for item in (arg.values() if type(arg) is dict else arg):
            _refuse_complex(param, item, parsed)
    elif (isinstance(arg, (complex, np.ndarray, np.generic)) or dispatches(arg)) and np.iscomplexobj(arg):
        raise SymdiffError(f"{parsed.filename}:{parsed.node.lineno}: argument {param!r} of {parsed.name}() "
                           f"is complex ({type(arg).__name__}"
                           f"{' of dtype ' + str(arg.dtype) if hasattr(arg, 'dtype') else ''}): symdiff "
                           "differentiates real-valued functions only; pass the real and imaginary parts "
                           "as separate real arguments")


def _function_body(source: str, name: str) -> list[tuple[int, str]]:
    """The body lines of function ``name`` in generated ``source``, each with its line number."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    return [(i + 1, line) for i, line in enumerate(lines[start + 1:], start + 1) if line.strip()]


def _param_names(fun: Callable) -> list[str]:
    try:
        sig = inspect.signature(fun)
    except (TypeError, ValueError):
        raise SymdiffError(f"{fun!r} is not a Python function with a signature: symdiff needs Python "
                           "source; wrap it in a def, or register a rule with symdiff.defvjp") from None
    if any(p.kind not in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY) for p in sig.parameters.values()):
        check_entry_signature(parse_function(fun))  # raises an error located at the signature
    return [name for name, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)]


def _defaults(fun: Callable) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(fun).parameters.items()
            if p.default is not inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)}


def _identifier(name: str) -> str:
    return name if name.isidentifier() else "lambda"


def _guard_key(arg: Any) -> Any:
    """What a specialisation is keyed on: the exact type of Python numbers; for arrays, which
    axes have size 1 (a tuple of bools, one per axis), since that decides broadcasting, and for
    a dask or CuPy array its type (:func:`arrays.array_key`, which refuses array types NumPy cannot
    hand over to); for dicts, lists and tuples (pytrees), their keys and the keys of their items."""
    if type(arg) in _SCALAR_TYPES:
        return type(arg)
    if type(arg) is np.ndarray:
        return ir.ArraySpec(tuple(n == 1 for n in arg.shape), arg.dtype)
    if isinstance(arg, FUNCTION_TYPES):  # a function argument: specialised on (and inlined)
        return arg
    if type(arg) in (dict, list, tuple):
        keys = tuple(arg) if type(arg) is dict else tuple(range(len(arg)))
        return ir.Struct(type(arg), keys, tuple(_guard_key(arg[k]) for k in keys))
    return arrays.array_key(arg)  # a dask or CuPy array: its type too; other objects: None


def _compiled_facts(obj: Any) -> tuple | None:
    """What a specialisation assumes of a global or closure variable besides its identity: an
    array's shape and dtype (its rank, size-1 axes and dtype decide the code), else None."""
    return (obj.shape, obj.dtype) if type(obj) is np.ndarray else None


def _unchanged(reads: list) -> bool:
    """Whether every global and closure variable a specialisation compiled in is still bound
    to the same object, an array of the same shape and dtype (an array whose values changed in
    place is fine: the code reads the object)."""
    for holder, name, obj, facts in reads:
        try:
            current = holder.get(name) if isinstance(holder, dict) else holder.cell_contents
        except ValueError:
            return False
        if current is not obj or facts is not None and _compiled_facts(obj) != facts:
            return False
    return True


def _guardable(key: tuple) -> bool:
    """Whether the dispatcher can test for ``key`` with inline ``type(x) is ...`` guards (of a
    container's items too, its dict keys strings or ints)."""
    return all(_guardable_item(k) for k in key)


def _guardable_item(key: Any) -> bool:
    if isinstance(key, ir.Struct):
        return (key.type is not dict or all(type(k) in (str, int) for k in key.keys)) \
            and all(_guardable_item(item) for item in key.items)
    return key is not None and not isinstance(key, FUNCTION_TYPES)


def _guard(param: str, key: Any, dtype_name: str | None = None, type_name: str = "ndarray") -> str:
    if key in _SCALAR_TYPES:
        return f"type({param}) is {key.__name__}"
    ones = key.ones
    test = f"type({param}) is {type_name} and {param}.dtype is {dtype_name} and {param}.ndim == {len(ones)}"
    if not any(ones):
        return test + (f" and 1 not in {param}.shape" if ones else "")
    return test + "".join(f" and {param}.shape[{i}] {'==' if one else '!='} 1" for i, one in enumerate(ones))


_VJPS: dict[Callable, Callable] = {}


def recursive_vjp(fun: Callable) -> Callable:
    """``vjp_f(*args, cotangent)``: the gradients of every argument of ``f`` given the
    cotangent of its output -- what the backward sweep calls for a recursive call of ``f``
    (compiled when first called, so a function can use its own VJP)."""
    if fun not in _VJPS:
        nargs = len(_param_names(fun))
        _VJPS[fun] = _Compiler(fun, tuple(range(nargs)), with_value=False, seeded=True).dispatcher
    return _VJPS[fun]


def _compile_generic(compiler: _Compiler) -> None:
    """Compile the version for arguments of any kind now, so that ``.source`` is there before the
    first call and errors show early. A global defined after the function (fine if it exists by
    the first call), aliases of values of unknown type, calls without a derivative rule (on a
    dict argument, ``p.values()`` has one; a forward-mode rule that needs the arguments' ranks)
    wait for the first call's arguments instead."""
    try:
        compiler.compile((None,) * len(compiler.params), len(compiler.params))
    except (UnresolvedNameError, AliasingError, NeedsArgumentsError, NoRuleError):
        pass


def _make(fun: Callable, argnums: ArgNums, with_value: bool, has_aux: bool = False) -> Any:
    if getattr(fun, "_symdiff", None) is not None:
        return _grad_of_made(fun, argnums, with_value, has_aux)
    compiler = _Compiler(fun, argnums, with_value, has_aux)
    _compile_generic(compiler)
    return compiler.dispatcher


def _grad_of_made(made: Callable, argnums: ArgNums, with_value: bool, has_aux: bool) -> Callable:
    """``grad`` of a function symdiff made (a gradient G of a function of numbers, say): from
    G's VJP with the cotangent 1.0, which needs G's output -- the argument it differentiates --
    to be a number."""
    inner = made._symdiff
    if has_aux:
        raise SymdiffError(f"has_aux=True does not apply to {inner.name}, which returns one value")
    nums = _nums(argnums)
    compilers = [inner.derived("grad", (n,)) for n in nums]
    position = inner.argnums

    def gradient(*args: Any) -> Any:
        if np.ndim(args[position]) != 0:
            raise SymdiffError(f"grad of {inner.name} needs a scalar output, but it returns a gradient of shape "
                               f"{np.shape(args[position])}; use symdiff.jacfwd({inner.name}) (a Hessian) or "
                               "symdiff.vjp")
        grads = tuple(c.dispatcher(*args) for c in compilers)
        grads = grads[0] if isinstance(argnums, int) else grads
        return (made(*args), grads) if with_value else grads

    gradient.__name__ = gradient.__qualname__ = f"{'value_and_grad' if with_value else 'grad'}_{inner.name}"
    gradient.__doc__ = f"The gradient of {inner.name} (a higher derivative of {_name(inner.fun)})."
    result = Transformed(gradient, compilers[0].dispatcher)
    if isinstance(argnums, int) and not with_value:
        result._symdiff = compilers[0]  # (same arguments as the compiled code: differentiable again)
    return result


@overload
def grad(fun: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False) -> Compiled: ...
@overload
def grad(fun: None = None, argnums: ArgNums = 0,
         has_aux: bool = False) -> Callable[[Callable[..., Any]], Compiled]: ...


def grad(fun: Callable[..., Any] | None = None, argnums: ArgNums = 0,
         has_aux: bool = False) -> Compiled | Callable[[Callable[..., Any]], Compiled]:
    """The gradient of scalar-valued ``fun`` with respect to its argument(s) ``argnums``.

    Parameters:
        fun: a Python function returning a number (a float or a 0-d array); omitted, ``grad``
            returns a decorator (``@grad(argnums=1)``).
        argnums: which positional argument to differentiate with respect to; a tuple gives a
            tuple of gradients.
        has_aux: ``fun`` returns ``(loss, aux)``; the gradient is of ``loss``, and the result is
            ``(gradient, aux)`` (``aux`` as the function computed it, not differentiated).

    Returns a function taking ``fun``'s arguments and giving the gradient, of the type, shape
    and dtype of its argument (dicts, lists and tuples of them give the same structure). Its
    ``.source`` is the generated code. Usable as ``grad(f)``, ``@grad`` or ``@grad(argnums=1)``.

    Example::

        >>> df = symdiff.grad(lambda x: x ** 3 + 2.0 * x)
        >>> df(1.5)
        8.75
    """
    if fun is None:
        return lambda f: _make(f, argnums, with_value=False, has_aux=has_aux)
    return _make(fun, argnums, with_value=False, has_aux=has_aux)


@overload
def value_and_grad(fun: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False) -> CompiledWithValue: ...
@overload
def value_and_grad(fun: None = None, argnums: ArgNums = 0,
                   has_aux: bool = False) -> Callable[[Callable[..., Any]], CompiledWithValue]: ...


def value_and_grad(fun: Callable[..., Any] | None = None, argnums: ArgNums = 0,
                   has_aux: bool = False) -> CompiledWithValue | Callable[[Callable[..., Any]], CompiledWithValue]:
    """Like :func:`grad`, but the result returns ``(fun(*args), gradient)`` from one sweep.

    Parameters:
        fun: a Python function returning a number; omitted, a decorator is returned.
        argnums: as for :func:`grad`.
        has_aux: ``fun`` returns ``(loss, aux)``; the result is then ``((loss, aux), gradient)``
            with the gradient of ``loss`` (as in JAX).

    Example::

        >>> f = symdiff.value_and_grad(lambda x: x * x)
        >>> f(3.0)
        (9.0, 6.0)
    """
    if fun is None:
        return lambda f: _make(f, argnums, with_value=True, has_aux=has_aux)
    return _make(fun, argnums, with_value=True, has_aux=has_aux)


_VJP_COMPILERS: dict[tuple[Callable, bool], _Compiler] = {}


def _vjp_compiler(fun: Callable, has_aux: bool) -> _Compiler:
    """The compiler of the VJP of ``fun`` with respect to all of its arguments,
    ``vjp_f(*args, cotangent)``: made once per function and kept, with its specialisations."""
    key = (fun, has_aux)
    if getattr(fun, "_symdiff", None) is not None:  # a function symdiff made: its VJP is a derived one
        if has_aux:
            raise SymdiffError(f"has_aux=True does not apply to {fun._symdiff.name}, which returns one value")
        return fun._symdiff.derived("vjp")
    if key not in _VJP_COMPILERS:
        compiler = _Compiler(fun, tuple(range(len(_param_names(fun)))), with_value=False, has_aux=has_aux,
                             seeded=True)
        _compile_generic(compiler)
        _VJP_COMPILERS[key] = compiler
    return _VJP_COMPILERS[key]


def _is_array_like(value: Any) -> bool:
    """An ndarray (or an array NumPy hands over to: dask, CuPy) or a number (not a container of them)."""
    return isinstance(value, (np.ndarray, np.generic, float, int)) or dispatches(value)


class Pullback:
    """``vjp_fn`` of :func:`vjp`: called with a cotangent of the output, gives the cotangent of
    each primal. ``.source`` is the generated code of the latest specialisation."""

    def __init__(self, fun: Callable, compiler: _Compiler, primals: tuple, out: Any):
        self._fun, self._compiler, self._primals, self._out = fun, compiler, primals, out

    def __call__(self, cotangent: Any) -> tuple:
        """The cotangents of the primals (a tuple) for ``cotangent``, of the output's type and shape."""
        if _is_array_like(self._out) and np.shape(cotangent) != np.shape(self._out):
            raise SymdiffError(f"vjp of {getattr(self._fun, '__name__', 'f')}: the cotangent has shape "
                               f"{np.shape(cotangent)}, the output {np.shape(self._out)}")
        return self._compiler.dispatcher(*self._primals, cotangent)

    @property
    def source(self) -> str | None:
        """The generated VJP (forward sweep, then the backward sweep from the cotangent)."""
        return self._compiler.dispatcher.source


@overload
def vjp(fun: Callable[..., Any], *primals: Any, has_aux: Literal[False] = False) -> tuple[Any, Pullback]: ...
@overload
def vjp(fun: Callable[..., Any], *primals: Any, has_aux: Literal[True]) -> tuple[Any, Pullback, Any]: ...


def vjp(fun: Callable[..., Any], *primals: Any,
        has_aux: bool = False) -> tuple[Any, Pullback] | tuple[Any, Pullback, Any]:
    """``(fun(*primals), vjp_fn)``, as in JAX: ``vjp_fn(cotangent)`` gives the cotangent of each of
    ``primals`` (a tuple, one per argument) for ``cotangent``, a value of the type and shape of
    ``fun``'s output -- the vector-Jacobian product, for outputs of any shape.

    Parameters:
        fun: a Python function, of any output.
        primals: the arguments to call ``fun`` with (copied: later changes to the caller's
            arrays do not reach ``vjp_fn``, and ``vjp_fn`` changes none of them).
        has_aux: ``fun`` returns ``(out, aux)`` and the result is ``(out, vjp_fn, aux)``.

    ``vjp_fn.source`` is the generated code, which runs ``fun``'s forward sweep again, then the
    backward sweep from ``cotangent``.

    Example::

        >>> out, vjp_fn = symdiff.vjp(lambda x: 2.0 * x, np.array([1.0, 2.0]))
        >>> vjp_fn(np.array([1.0, -1.0]))
        (array([ 2., -2.]),)
    """
    snapshot = copy.deepcopy(primals)
    result = fun(*copy.deepcopy(primals))
    out, aux = result if has_aux else (result, None)
    pullback = Pullback(fun, _vjp_compiler(fun, has_aux), snapshot, out)
    return (out, pullback, aux) if has_aux else (out, pullback)


def jacrev(fun: Callable[..., Any], argnums: ArgNums = 0) -> Compiled:
    """The Jacobian of ``fun`` with respect to argument(s) ``argnums``, by reverse mode: one
    vector-Jacobian product per element of the output.

    Parameters:
        fun: a Python function whose output is an array or a number.
        argnums: which argument; a tuple gives a tuple of Jacobians.

    The Jacobian with respect to an argument of shape ``S`` of an output of shape ``T`` has
    shape ``T + S`` (as in JAX). ``.source`` is the generated VJP.

    Example::

        >>> symdiff.jacrev(lambda x: x ** 2)(np.array([1.0, 3.0]))
        array([[2., 0.],
               [0., 6.]])
    """
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if getattr(fun, "_jacobian", None) is not None:
        return _second_jacobian(fun, argnums, "jacrev")

    def jacobian_of(*args: Any) -> Any:
        out, pullback = vjp(fun, *args)
        if not _is_array_like(out):
            raise SymdiffError(f"jacrev of {getattr(fun, '__name__', 'f')} needs an array or number output, "
                               f"got {type(out).__name__}; take the Jacobian of each item, or use symdiff.vjp")
        out_shape = np.shape(out)
        rows: list[list] = [[] for _ in nums]
        for index in np.ndindex(*out_shape):
            basis = np.zeros(out_shape)
            basis[index] = 1.0
            cotangents = pullback(basis if out_shape else 1.0)
            for row, n in zip(rows, nums):
                row.append(np.asarray(cotangents[n], dtype=float))
        jacobians = tuple(np.reshape(np.stack(row), out_shape + np.shape(args[n])) for row, n in zip(rows, nums))
        return jacobians[0] if isinstance(argnums, int) else jacobians

    jacobian_of.__name__ = jacobian_of.__qualname__ = f"jacrev_{_identifier(_name(fun))}"
    jacobian_of.__doc__ = f"The Jacobian of {_name(fun)} (reverse mode)."
    return _jacobian_function(jacobian_of, fun, argnums, lambda: _vjp_compiler(fun, False).dispatcher)


def _jacobian_function(jacobian_of: Callable, fun: Callable, argnums: ArgNums, dispatcher: Callable) -> Transformed:
    """``jacobian_of`` with ``.source`` (of the generated code it calls, made on first use) and
    the mark that lets ``jacfwd``/``jacrev`` of it give second derivatives."""
    made = Transformed(jacobian_of, dispatcher)
    made._jacobian = (fun, argnums)
    return made


def _second_jacobian(jacobian_fn: Callable, argnums: ArgNums, how: str) -> Transformed:
    """The Jacobian (``jacfwd``/``jacrev``, the same numbers) of a Jacobian function of ``f``:
    ``d2 f[out] / d x_a d x_b`` of shape ``T + S_a + S_b``, one VJP (along the output's unit
    cotangents) of one derivative of ``f`` (along the unit tangents of ``x_b``) per pair of
    elements -- reverse mode over forward mode, as for Hessians."""
    fun, inner = jacobian_fn._jacobian
    if not isinstance(inner, int):
        raise SymdiffError(f"{how} of {jacobian_fn.__name__}: the inner Jacobian must be taken with respect to one "
                           "argument (an int argnums)")
    nums = _nums(argnums)

    def jacobian_of(*args: Any) -> Any:
        out = fun(*copy.deepcopy(args))
        if not _is_array_like(out):
            raise SymdiffError(f"{how} of {jacobian_fn.__name__} needs an array or number output")
        blocks = []
        for b in nums:
            compiler = _derivative_vjp(fun, inner, b)
            columns = []
            for unit in _basis(np.shape(args[b])):
                rows = [np.asarray(compiler.dispatcher(*args, unit, cotangent), dtype=float)
                        for cotangent in _basis(np.shape(out))]
                columns.append(np.reshape(np.stack(rows), np.shape(out) + np.shape(args[inner])))
            blocks.append(_columns(columns, np.shape(out) + np.shape(args[inner]), np.shape(args[b])))
        return blocks[0] if isinstance(argnums, int) else tuple(blocks)

    jacobian_of.__name__ = jacobian_of.__qualname__ = f"{how}_{jacobian_fn.__name__}"
    jacobian_of.__doc__ = f"The second derivatives of {_name(fun)} ({how} of its Jacobian)."
    return Transformed(jacobian_of, lambda: _derivative_vjp(fun, inner, nums[0]).dispatcher)


_DERIVATIVE_VJPS: dict[tuple, _Compiler] = {}


def _derivative_vjp(fun: Callable, argnum: int, along: int) -> _Compiler:
    """``(*args, t, u) -> u . d/dt (d fun / d args[argnum])``: the VJP (for argument ``argnum``)
    of ``fun``'s derivative along a tangent ``t`` of argument ``along``."""
    key = (fun, argnum, along)
    if key not in _DERIVATIVE_VJPS:
        _DERIVATIVE_VJPS[key] = _Compiler(fun, argnum, False, stages=[(along,)], mode="vjp",
                                          prefix=f"vjp_d{_identifier(_name(fun))}")
    return _DERIVATIVE_VJPS[key]


jacobian = jacrev


# ---------------------------------------------------------------------------- forward mode

_JVPS: dict[Callable, Callable] = {}


def recursive_jvp(fun: Callable) -> Callable:
    """``tangent_f(*args, *tangents) -> tangent_out``: what the tangent code calls for a
    recursive call of ``f`` (compiled when first called); a primitive itself, so that Hessians of
    recursive functions (reverse mode over this code) work."""
    if fun not in _JVPS:
        nargs = len(_param_names(fun))
        compiler = _Compiler(fun, 0, with_value=False, stages=[range(nargs)], mode="tangent")
        _JVPS[fun] = compiler.dispatcher
    dispatcher = _JVPS[fun]
    dispatcher._symdiff.register_primitive(dispatcher)  # (again if its record was dropped: primitives.restored)
    return dispatcher


_TRANSFORMS: dict[tuple, _Compiler] = {}


def _transform(fun: Callable, mode: str, argnums: ArgNums, tangents: Sequence[int]) -> _Compiler:
    """The compiler of one transformation of ``fun`` ("jvp" along ``tangents``, or "hvp": the
    gradient of ``argnums`` of the derivative along ``tangents``), made once and kept."""
    key = (fun, mode, argnums if isinstance(argnums, int) else tuple(argnums), tuple(tangents))
    if key not in _TRANSFORMS:
        inner = getattr(fun, "_symdiff", None)
        if inner is not None:  # differentiating a function symdiff made: one more stage
            if mode == "jvp_aux":
                raise SymdiffError(f"has_aux=True does not apply to {inner.name}, which returns one value")
            if mode != "jvp":
                raise SymdiffError(f"hvp and hessian need a scalar-valued function; {inner.name} returns a gradient: "
                                   f"its Jacobian symdiff.jacfwd({inner.name}) is the Hessian of "
                                   f"{_name(inner.fun)}")
            _TRANSFORMS[key] = inner.derived("jvp", tuple(tangents))
            return _TRANSFORMS[key]
        compiler = _Compiler(fun, argnums, with_value=False, stages=[tuple(tangents)], has_aux=mode == "jvp_aux",
                             mode="grad" if mode == "hvp" else "jvp", prefix=mode[:3])
        _compile_generic(compiler)
        _TRANSFORMS[key] = compiler
    return _TRANSFORMS[key]


def _name(fun: Callable) -> str:
    return getattr(fun, "__name__", "f")


def _check_tangents(fun: Callable, primals: tuple, tangents: tuple) -> None:
    """Tangents pair with primals one to one, with their shapes (as in JAX)."""
    if len(primals) != len(tangents):
        raise SymdiffError(f"jvp of {_name(fun)}: {len(primals)} primals but {len(tangents)} tangents")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if _is_array_like(p) and np.shape(p) != np.shape(t):
            raise SymdiffError(f"jvp of {_name(fun)}: the tangent of argument {i} has shape {np.shape(t)}, "
                               f"its primal {np.shape(p)}; a tangent has the shape of its primal")


def _tuple(values: Any, what: str, fun: Callable) -> tuple:
    if not isinstance(values, (tuple, list)):
        raise SymdiffError(f"{what} of {_name(fun)} must be a tuple or list (one item per argument), "
                           f"got {type(values).__name__}")
    return tuple(values)


def _float_tangent(t: Any) -> Any:
    """A tangent as the generated code takes it: arrays of ints become floats, containers are copied."""
    if (isinstance(t, np.ndarray) or dispatches(t)) and not np.issubdtype(t.dtype, np.inexact):
        return t.astype(float)
    if isinstance(t, (list, dict)):
        return copy.deepcopy(t)
    return t


@overload
def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: Literal[False] = False) -> tuple[Any, Any]: ...
@overload
def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: Literal[True]) -> tuple[Any, Any, Any]: ...


def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple[Any, Any] | tuple[Any, Any, Any]:
    """``(fun(*primals), J @ tangents)``, as in JAX: the output and its derivative along
    ``tangents``, by forward mode -- for outputs of any shape.

    Parameters:
        fun: a Python function, of any output.
        primals: a tuple of the arguments.
        tangents: a tuple of one tangent per argument, each of its primal's shape.
        has_aux: ``fun`` returns ``(out, aux)`` and the result is ``(out, tangent_out, aux)``.

    The generated code is ``symdiff.linearize(fun, *primals)[1].source``.

    Example::

        >>> symdiff.jvp(lambda x: x ** 2, (3.0,), (1.0,))
        (9.0, 6.0)
    """
    primals, tangents = _tuple(primals, "primals", fun), _tuple(tangents, "tangents", fun)
    _check_tangents(fun, primals, tangents)
    compiler = _transform(fun, "jvp_aux" if has_aux else "jvp", 0, range(len(primals)))
    out, tangent = compiler.dispatcher(*primals, *(_float_tangent(t) for t in tangents))
    return (out[0], tangent, out[1]) if has_aux else (out, tangent)


class Linearized:
    """``f_jvp`` of :func:`linearize`: the JVP at fixed primals, ``f_jvp(*tangents)``."""

    def __init__(self, fun: Callable, compiler: _Compiler, primals: tuple):
        self._fun, self._compiler, self._primals = fun, compiler, primals

    def __call__(self, *tangents: Any) -> Any:
        """The derivative of the output along ``tangents`` (one per primal)."""
        _check_tangents(self._fun, self._primals, tangents)
        return self._compiler.dispatcher(*self._primals, *(_float_tangent(t) for t in tangents))[1]

    @property
    def source(self) -> str | None:
        """The generated JVP (the forward sweep with its tangents alongside)."""
        return self._compiler.dispatcher.source


def linearize(fun: Callable[..., Any], *primals: Any) -> tuple[Any, Linearized]:
    """``(fun(*primals), f_jvp)`` as in JAX: ``f_jvp(*tangents)`` is the JVP at ``primals``.

    Parameters:
        fun: a Python function, of any output.
        primals: its arguments (copied; each call of ``f_jvp`` reruns the forward sweep with
            tangents). ``f_jvp.source`` is the generated JVP.

    Example::

        >>> out, f_jvp = symdiff.linearize(lambda x: x ** 2, 3.0)
        >>> f_jvp(1.0)
        6.0
    """
    primals = copy.deepcopy(primals)
    compiler = _transform(fun, "jvp", 0, range(len(primals)))
    out = fun(*copy.deepcopy(primals))
    return out, Linearized(fun, compiler, primals)


def _nums(argnums: ArgNums) -> tuple[int, ...]:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _basis(shape: tuple) -> Any:
    """The unit tangents of an argument of ``shape``, one per element (a number: 1.0)."""
    if shape == ():
        yield 1.0
        return
    for index in np.ndindex(*shape):
        unit = np.zeros(shape)
        unit[index] = 1.0
        yield unit


def _zero_tangent(x: Any) -> Any:
    if dispatches(x):
        return np.zeros_like(x, dtype=float)
    if isinstance(x, np.ndarray):
        return np.zeros(x.shape, dtype=float)
    if isinstance(x, (tuple, list, dict)):
        from .runtime import zeros_of
        return zeros_of(x)
    return 0.0


def _columns(columns: list, out_shape: tuple, arg_shape: tuple) -> np.ndarray:
    """The Jacobian (output axes first, then the argument's) from one JVP per argument element."""
    stacked = np.stack([np.asarray(c, dtype=float) for c in columns], axis=-1)
    return np.reshape(stacked, out_shape + arg_shape)


def jacfwd(fun: Callable[..., Any], argnums: ArgNums = 0) -> Compiled:
    """The Jacobian of ``fun`` with respect to argument(s) ``argnums``, by forward mode: one
    Jacobian-vector product per element of the argument (cheaper than :func:`jacrev` when the
    output is bigger than the argument).

    Parameters:
        fun: a Python function whose output is an array or a number.
        argnums: which argument; a tuple gives a tuple of Jacobians.

    Shapes as :func:`jacrev`; ``.source`` is the generated JVP.

    Example::

        >>> symdiff.jacfwd(lambda x: x ** 2)(np.array([1.0, 3.0]))
        array([[2., 0.],
               [0., 6.]])
    """
    nums = _nums(argnums)
    if getattr(fun, "_jacobian", None) is not None:
        return _second_jacobian(fun, argnums, "jacfwd")

    def jacobian_of(*args: Any) -> Any:
        compiler = _transform(fun, "jvp", 0, range(len(args)))
        zeros = [_zero_tangent(a) for a in args]
        jacobians = []
        for n in nums:
            if not _is_array_like(args[n]):
                raise SymdiffError(f"jacfwd of {_name(fun)}: argument {n} must be an array or a number, "
                                   f"got {type(args[n]).__name__}")
            columns, out = [], None
            for unit in _basis(np.shape(args[n])):
                tangents = list(zeros)
                tangents[n] = unit
                out, column = compiler.dispatcher(*args, *tangents)
                columns.append(column)
            if not _is_array_like(out):
                raise SymdiffError(f"jacfwd of {_name(fun)} needs an array or number output, got "
                                   f"{type(out).__name__}")
            jacobians.append(_columns(columns, np.shape(out), np.shape(args[n])))
        return jacobians[0] if isinstance(argnums, int) else tuple(jacobians)

    jacobian_of.__name__ = jacobian_of.__qualname__ = f"jacfwd_{_identifier(_name(fun))}"
    jacobian_of.__doc__ = f"The Jacobian of {_name(fun)} (forward mode)."
    return _jacobian_function(jacobian_of, fun, argnums,
                              lambda: _transform(fun, "jvp", 0, range(len(_param_names(fun)))).dispatcher)


@overload
def hvp(fun: Callable[..., Any], primals: None = None, tangents: None = None, argnums: int = 0) -> Compiled: ...
@overload
def hvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any], argnums: int = 0) -> Any: ...


def hvp(fun: Callable[..., Any], primals: Sequence[Any] | None = None, tangents: Sequence[Any] | None = None,
        argnums: int = 0) -> Any:
    """Hessian-vector products of scalar-valued ``fun``, by reverse mode over forward mode (the
    gradient of the derivative along the direction).

    Parameters:
        fun: a Python function returning a number.
        primals, tangents: given, the result is, as JAX's ``jvp(grad(fun), primals, tangents)[1]``,
            the derivative of ``grad(fun)`` (with respect to argument ``argnums``) along
            ``tangents`` (one per primal).
        argnums: which argument the Hessian is taken with respect to.

    Without ``primals``, ``hvp(fun, argnums=i)`` gives a function ``hvp_fun(*args, v)``: the
    Hessian with respect to argument ``i`` times ``v`` (of that argument's shape), for SciPy's
    ``hessp=`` (which passes the direction second: ``hessp=lambda w, v, *a: hvp_fun(w, *a, v)``).
    Its ``.source`` is the generated code.

    Example::

        >>> hessp = symdiff.hvp(lambda x: np.sum(x ** 3))
        >>> hessp(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
        array([6., 0.])
    """
    if primals is None:
        if tangents is not None:
            raise SymdiffError("hvp: give both primals and tangents, or neither (for the function)")
        nargs = len(_param_names(fun))
        if not -nargs <= argnums < nargs:
            raise SymdiffError(f"argnums {argnums!r} is out of range for {_name(fun)}() with {nargs} arguments")
        return _hvp_function(fun, argnums % nargs)
    primals, tangents = _tuple(primals, "primals", fun), _tuple(tangents or (), "tangents", fun)
    _check_tangents(fun, primals, tangents)
    compiler = _transform(fun, "hvp", argnums, range(len(primals)))
    return compiler.dispatcher(*primals, *(_float_tangent(t) for t in tangents))


def _hvp_function(fun: Callable, argnum: int) -> Transformed:
    compiler = _transform(fun, "hvp", argnum, (argnum,))
    dispatcher = compiler.dispatcher
    primal_count = len(compiler.params) - 1

    def hessian_vector_product(*args: Any) -> Any:
        if len(args) != primal_count + 1:
            raise SymdiffError(f"{compiler.name} takes the {primal_count} arguments of {_name(fun)} and then v, "
                               f"got {len(args)} arguments")
        x, v = args[argnum], args[-1]
        if _is_array_like(x) and np.shape(v) != np.shape(x):
            raise SymdiffError(f"{compiler.name}: v has shape {np.shape(v)}, the argument {np.shape(x)}")
        return dispatcher(*args[:-1], _float_tangent(v))

    hessian_vector_product.__name__ = hessian_vector_product.__qualname__ = compiler.name
    hessian_vector_product.__doc__ = (f"The Hessian of {_name(fun)} with respect to argument {argnum}, times v: "
                                      f"{compiler.name}(*args, v).")
    made = Transformed(hessian_vector_product, dispatcher)
    made._symdiff = compiler  # (it calls the dispatcher with the same arguments: differentiable again)
    return made


class Transformed:
    """A function made by a transformation (:func:`hvp`, :func:`hessian`, :func:`elementwise_grad`):
    callable like ``function``, with the ``.source`` of the generated code it runs."""

    def __init__(self, function: Callable, dispatcher: Callable):
        self._function, self._dispatcher = function, dispatcher  # (or a function giving it, made on first use)
        functools.update_wrapper(self, function, assigned=("__name__", "__qualname__", "__doc__"), updated=())
        del self.__wrapped__  # (computes a derivative: never unwrap it to the function it calls)

    def __call__(self, *args: Any) -> Any:
        return self._function(*args)

    @property
    def source(self) -> str | None:
        """The generated code (of the latest specialisation)."""
        dispatcher = self._dispatcher
        if getattr(dispatcher, "_symdiff", None) is None and not hasattr(dispatcher, "source"):
            dispatcher = self._dispatcher = dispatcher()
        return dispatcher.source

    def __repr__(self) -> str:
        return f"<symdiff {self.__name__}>"

    def _repr_markdown_(self) -> str:
        return markdown(self.source or "")

    def _repr_html_(self) -> str:
        return highlighted_html(self.source or "")


def _flatten(x: Any) -> tuple[list, Callable]:
    """The leaves (arrays and numbers) of a tuple/list/dict structure, and the function that
    builds the same structure from a list of new leaves."""
    if isinstance(x, (tuple, list)):
        parts = [_flatten(item) for item in x]
        sizes = [len(leaves) for leaves, _ in parts]

        def rebuild(leaves: list) -> Any:
            out, at = [], 0
            for (_, build), size in zip(parts, sizes):
                out.append(build(leaves[at:at + size]))
                at += size
            return type(x)(out)
        return [leaf for leaves, _ in parts for leaf in leaves], rebuild
    if isinstance(x, dict):
        keys = list(x)
        inner, rebuild_values = _flatten([x[k] for k in keys])
        return inner, lambda leaves: dict(zip(keys, rebuild_values(leaves)))
    if not _is_array_like(x):
        raise SymdiffError(f"expected arrays and numbers (in tuples, lists and dicts), got {type(x).__name__}")
    return [x], lambda leaves: leaves[0]


def hessian(fun: Callable[..., Any], argnums: ArgNums = 0) -> Compiled:
    """The Hessian of scalar-valued ``fun`` with respect to argument(s) ``argnums``, as in JAX.

    Parameters:
        fun: a Python function returning a number.
        argnums: which argument; for an argument of shape ``S`` the Hessian has shape
            ``S + S``; a tuple gives the blocks ``H[i][j]`` (shape ``S_i + S_j``); an argument
            that is a tuple, list or dict gives the same structure of structures.

    One Hessian-vector product (:func:`hvp`) per element of the arguments; ``.source`` is the
    generated Hessian-vector product.

    Example::

        >>> symdiff.hessian(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]))
        array([[ 6.,  0.],
               [ 0., 12.]])
    """
    nums = _nums(argnums)
    count = len(_param_names(fun))
    for n in nums:
        if not isinstance(n, int) or not -count <= n < count:
            raise SymdiffError(f"argnums {argnums!r} is out of range for {_name(fun)}() with {count} arguments")
    nums = tuple(n % count for n in nums)
    compiler = _transform(fun, "hvp", nums, nums)

    def hessian_of(*args: Any) -> Any:
        flat = [_flatten(args[n]) for n in nums]
        zeros = [[_zero_tangent(leaf) for leaf in leaves] for leaves, _ in flat]
        blocks = [[[[None] * len(flat[j][0]) for _ in flat[i][0]] for j in range(len(nums))]
                  for i in range(len(nums))]
        for j, (leaves_j, build_j) in enumerate(flat):
            for b, leaf in enumerate(leaves_j):
                columns: list[list] = [[[] for _ in flat[i][0]] for i in range(len(nums))]
                for unit in _basis(np.shape(leaf)):
                    tangents = [build(list(z)) for (_, build), z in zip(flat, zeros)]
                    unit_leaves = list(zeros[j])
                    unit_leaves[b] = unit
                    tangents[j] = build_j(unit_leaves)
                    products = compiler.dispatcher(*args, *(_float_tangent(t) for t in tangents))
                    for i, product in enumerate(products):
                        for a, value in enumerate(_flatten(product)[0]):
                            columns[i][a].append(value)
                for i in range(len(nums)):
                    for a, leaf_i in enumerate(flat[i][0]):
                        block = _columns(columns[i][a], np.shape(leaf_i), np.shape(leaf))
                        blocks[i][j][a][b] = float(block) if block.shape == () else block
        rows = [[flat[i][1]([flat[j][1](row) for row in blocks[i][j]]) for j in range(len(nums))]
                for i in range(len(nums))]
        return rows[0][0] if isinstance(argnums, int) else tuple(tuple(row) for row in rows)

    hessian_of.__name__ = hessian_of.__qualname__ = f"hessian_{_identifier(_name(fun))}"
    hessian_of.__doc__ = f"The Hessian of {_name(fun)} with respect to argument(s) {argnums}."
    return Transformed(hessian_of, compiler.dispatcher)


def elementwise_grad(fun: Callable[..., Any], argnums: ArgNums = 0) -> Compiled:
    """As in autograd: the gradient of ``np.sum(fun(*args))`` -- for a function acting element
    by element, the derivative of each output element with respect to its input element. It is
    the gradient of a function symdiff writes, ``np.sum(fun(...))``, so it can be differentiated
    again (``elementwise_grad(elementwise_grad(f))``, ``grad`` of it) like any gradient;
    ``.source`` is its code.

    Parameters:
        fun: a Python function whose output is an array or a number.
        argnums: which argument; a tuple gives a tuple.

    Example::

        >>> symdiff.elementwise_grad(lambda x: np.tanh(x))(np.array([0.0, 1.0]))
        array([1.        , 0.41997434])
    """
    summed = _sum_of(fun)
    compiler = _Compiler(summed, argnums, False, prefix="elementwise_grad")
    _compile_generic(compiler)
    compiler.dispatcher.__doc__ = f"The element-by-element derivative of {_name(fun)}."
    return compiler.dispatcher


def _sum_of(fun: Callable) -> Callable:
    """``def f(x, ...): return np.sum(fun(x, ...))``, with ``fun``'s parameters and name, written
    as source (in ``linecache``) so that symdiff can differentiate it."""
    names = _param_names(fun)
    name = _identifier(_name(fun))
    name = f"{name}_" if keyword.iskeyword(name) else name  # (a lambda's: lambda_)
    params = ", ".join(names)
    source = f"def {name}({params}):\n    return _np.sum(_summed({params}))\n"
    filename = _fresh_filename(f"<symdiff sum of {name}>")
    codegen.register_source(source, filename)
    namespace: dict[str, Any] = {"_np": np, "_summed": fun, "__name__": getattr(fun, "__module__", None)}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    return namespace[name]
