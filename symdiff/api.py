"""The user-facing API: ``grad`` and ``value_and_grad``, and the generated VJPs
(``recursive_vjp``) that the backward sweep calls for recursive functions.

Each returned function compiles the gradient once per *signature* of its arguments on first
use, and caches it: the exact type of Python numbers; for NumPy arrays, their dtype and which
axes have size 1; for dicts, lists and tuples, their keys and the signatures of their items; a
function passed as an argument, by identity; anything else gets a generic version. Python
numbers get plain arithmetic and ``math`` in the generated code; arrays get NumPy. A
specialisation is compiled again when a global or closure variable it compiled in has been
rebound. ``.source`` holds the generated code of the most recently compiled specialisation
(the generic one right after ``grad``, unless that cannot be compiled yet: a global not
defined yet, or in-place updates whose aliasing only the argument types decide).
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import linecache
import os
import re
import types
from typing import Any, Callable, Sequence, Union

import numpy as np

from . import codegen, forward, ir, lower, optimize, reverse
from .errors import REPORT, AliasingError, InternalError, NoRuleError, SymdiffError, UnresolvedNameError, located
from .frontend import Parsed, parse_function

ArgNums = Union[int, Sequence[int]]
_SCALAR_TYPES = (float, int, bool)
FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType, np.ufunc)


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
                 seeded: bool = False, tangents: Sequence[int] | None = None, mode: str | None = None):
        self.fun = fun
        self.argnums = argnums
        self.with_value = with_value
        self.has_aux = has_aux
        # "grad"; "vjp": takes the output's cotangent as a last argument; "jvp": takes the tangents of
        # arguments ``tangents`` as more arguments; "hvp": the gradient (of ``argnums``) of that JVP
        self.mode = mode or ("vjp" if seeded else "grad")
        self.seeded = self.mode == "vjp"
        self.tangents = list(tangents or ())
        primal = _param_names(fun)
        self.extra = _extra_params(self.mode, primal, self.tangents)
        self.params = primal + self.extra
        self.defaults = _defaults(fun)
        self.cache: dict[tuple, Callable] = {}  # every compiled specialisation, by key
        self.inline: dict[tuple, tuple[str, dict, tuple]] = {}  # their source, globals and parameter names
        self.reads: dict[tuple, list] = {}  # the globals/closure variables each one compiled in
        self._parsed: Parsed | None = None
        prefix = self.mode if self.mode != "grad" else "value_and_grad" if with_value else "grad"
        self.name = f"{prefix}_{_identifier(getattr(fun, '__name__', 'f'))}"
        self.namespace: dict[str, Any] = {"_compile": self.compile_and_call, "ndarray": np.ndarray,
                                          "_SymdiffError": SymdiffError, "_failed": self.failed}
        self.namespace.update({f"_default_{name}": value for name, value in self.defaults.items()})
        self.dispatcher = self._build_dispatcher()
        functools.update_wrapper(self.dispatcher, fun, assigned=("__module__", "__doc__"), updated=())
        del self.dispatcher.__wrapped__  # the dispatcher computes a gradient, not fun: never unwrap it to fun
        self.dispatcher.__name__ = self.dispatcher.__qualname__ = self.name
        self.dispatcher.source = None
        self.dispatcher._symdiff = self

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
        arguments too (the error is the user's), otherwise report an internal error."""
        primal_args = args[:len(args) - len(self.extra)]
        try:
            self.fun(*copy.deepcopy(primal_args))
        except Exception:  # noqa: BLE001 -- any exception of the user's function makes it theirs
            raise error from None
        parsed = self.parsed
        where = f"{parsed.filename}:{parsed.node.lineno}"
        raise InternalError(f"{where}: the generated {self.name} raised {type(error).__name__}: {error}, "
                            f"where {parsed.name}() itself runs without error on these arguments. "
                            f"{REPORT}") from error

    def compile(self, key: tuple, nargs: int) -> Callable:
        """Compile the gradient for argument kinds ``key`` and add it to the dispatcher."""
        parsed = self.parsed
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
        for i in nums:
            if not -nargs <= i < nargs:
                raise SymdiffError(f"argnums {self.argnums!r} is out of range for {parsed.name}() "
                                   f"with {nargs} arguments")
        nums = [i % nargs for i in nums]
        primal = lower.lower(parsed, list(key))
        optimize.optimize(primal)
        ir.verify(primal)
        extra = [ir.Value(name) for name in self.extra]
        for value, spec in zip(extra, extra_keys):
            lower.specialise(value, spec)
        if self.mode in ("jvp", "hvp"):  # a tangent has its primal's shape (the callers check it)
            for value, i, spec in zip(extra, self.tangents, extra_keys):
                value.aval = _tangent_aval(primal.body.params[i], value, spec, key[i])
        as_tuple = not isinstance(self.argnums, int)
        if self.mode == "jvp":
            gradient = forward.jvp(primal, self.tangents, extra, recursive_jvp=recursive_jvp)
            optimize.optimize(gradient, final=True)
        elif self.mode == "hvp":
            forward.jvp(primal, self.tangents, extra, recursive_jvp=recursive_jvp, output="tangent")
            optimize.optimize(primal)
            gradient = reverse.reverse(primal, nums, False, as_tuple=as_tuple, recursive_vjp=recursive_vjp)
        elif forward.applies(primal, nums, self.seeded):
            gradient = forward.forward(primal, nums[0], self.with_value, as_tuple, self.has_aux)
        else:
            gradient = reverse.reverse(primal, nums, self.with_value, as_tuple=as_tuple, has_aux=self.has_aux,
                                       seed=extra[0] if self.seeded else None, recursive_vjp=recursive_vjp)
        ir.verify(gradient)
        doc = (f"{self.name.split('_')[0]} of {parsed.name} ({os.path.basename(parsed.filename)}:{parsed.node.lineno}) "
               f"{self._describe_transformation(parsed, nums, gradient.mode)}; generated by symdiff")
        doc = doc.replace("value ", "value_and_grad ", 1) if self.with_value else doc
        doc += "\n" + _specialisation_note(parsed.params, key)
        source, namespace = codegen.generate(gradient, self.name, doc)
        compiled = codegen.compile_function(source, self.name, namespace, f"<symdiff {self.name}>")
        compiled.source = source
        key = key + tuple(extra_keys)
        self.cache[key] = compiled
        self.reads[key] = primal.reads
        code = compiled.__code__
        self.inline[key] = (source, namespace, code.co_varnames[:code.co_argcount])
        self.dispatcher.source = source
        if _guardable(key):  # other keys are found through _compile
            self._rebuild_dispatcher()
        return compiled

    def _describe_transformation(self, parsed: Parsed, nums: list[int], mode: str) -> str:
        """What the generated code computes, for its header."""
        along = ", ".join(f"{parsed.params[i]} along {name}" for i, name in zip(self.tangents, self.extra))
        wrt = ", ".join(parsed.params[i] for i in nums)
        if self.mode == "jvp":
            return f"(its value and Jacobian-vector product) in forward mode, for {along}"
        if self.mode == "hvp":
            return (f"(its Hessian-vector product): the gradient with respect to {wrt} (reverse mode) of "
                    f"its derivative for {along} (forward mode)")
        return f"with respect to {wrt}{' in forward mode' if mode == 'forward' else ''}"

    @property
    def guarded(self) -> list[tuple[tuple, Callable]]:
        return [(k, f) for k, f in self.cache.items() if _guardable(k)]

    def _build_dispatcher(self) -> Callable:
        code = self._dispatcher_source()
        exec(compile(code, f"<symdiff dispatch {self.name}>", "exec"), self.namespace)  # noqa: S102
        return self.namespace[self.name]

    def _rebuild_dispatcher(self) -> None:
        guarded = self.guarded
        for i, (_, fn) in enumerate(guarded):
            self.namespace[f"_spec{i}"] = fn
        # The newest specialisation runs inline in the dispatcher (saving a call per gradient),
        # provided its globals agree with those already in the dispatcher's namespace.
        inlined = None
        if guarded:
            source, namespace, params = self.inline[guarded[-1][0]]
            # (codegen renames a parameter that shadows a name the code needs: `sum`, `np`)
            if list(params) == self.params and all(self.namespace.get(k, v) is v for k, v in namespace.items()):
                self.namespace.update(namespace)
                inlined = _function_body(source, self.name)
        scratch = dict(self.namespace)
        code = self._dispatcher_source(inlined)
        exec(compile(code, f"<symdiff dispatch {self.name}>", "exec"), scratch)  # noqa: S102
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

    def _dispatcher_source(self, inlined: list[str] | None = None) -> str:
        params = ", ".join(self.params)
        signature = ", ".join(f"{p}=_default_{p}" if p in self.defaults else p for p in self.params)
        lines = [f"def {self.name}({signature}):", "  try:"]
        guarded = self.guarded
        for i, (key, _) in enumerate(guarded):
            tests = [_guard(p, k, self._dtype_name(k)) for p, k in zip(self.params, key)]
            for j, (holder, name, obj) in enumerate(self.reads[key]):  # a global rebound: recompile
                self.namespace[f"_held{i}_{j}"], self.namespace[f"_was{i}_{j}"] = holder, obj
                tests.append(f"_held{i}_{j}.get({name!r}) is _was{i}_{j}" if isinstance(holder, dict)
                             else f"_held{i}_{j}.cell_contents is _was{i}_{j}")
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


def _tangent_aval(param: ir.Value, tangent: ir.Value, spec: Any, primal_spec: Any) -> ir.Abstract:
    """A tangent's abstract value: its primal's kind and shape where both have the same kind of
    specialisation (only then do shapes of one name those of the other), with its own dtype."""
    same = (isinstance(spec, ir.ArraySpec) and isinstance(primal_spec, ir.ArraySpec) and spec.ones == primal_spec.ones
            or spec is float and primal_spec is float)
    return param.aval._replace(dtype=tangent.dtype, integer=False, pytype=tangent.pytype) if same else tangent.aval


def _extra_params(mode: str, primal: list[str], tangents: list[int]) -> list[str]:
    """The parameters a transformation adds after the function's own: the output's cotangent of
    a VJP, the tangents of a JVP (``dx`` for ``x``) or the direction of an HVP (``v``)."""
    if mode == "vjp":
        return ["cotangent"]
    if mode == "hvp" and len(tangents) == 1:
        names = ["v"]
    else:
        names = [f"d{primal[i]}" for i in tangents]
    taken = set(primal)
    return [name if name not in taken else f"tangent_{name}" for name in names]


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
        return f"{key.dtype} array of shape ({shape})"
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
    elif isinstance(arg, (complex, np.ndarray, np.generic)) and np.iscomplexobj(arg):
        raise SymdiffError(f"{parsed.filename}:{parsed.node.lineno}: argument {param!r} of {parsed.name}() "
                           f"is complex ({type(arg).__name__}"
                           f"{' of dtype ' + str(arg.dtype) if hasattr(arg, 'dtype') else ''}): symdiff "
                           "differentiates real-valued functions only; pass the real and imaginary parts "
                           "as separate real arguments")


def _function_body(source: str, name: str) -> list[str]:
    """The body lines of function ``name`` in generated ``source``."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    return [line for line in lines[start + 1:] if line.strip()]


def _param_names(fun: Callable) -> list[str]:
    try:
        sig = inspect.signature(fun)
    except (TypeError, ValueError):
        raise SymdiffError(f"{fun!r} is not a Python function with a signature: symdiff needs Python "
                           "source; wrap it in a def, or register a rule with symdiff.defvjp") from None
    if any(p.kind not in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY) for p in sig.parameters.values()):
        parse_function(fun)  # raises an error located at the signature
    return list(sig.parameters)


def _defaults(fun: Callable) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(fun).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _identifier(name: str) -> str:
    return name if name.isidentifier() else "lambda"


def _guard_key(arg: Any) -> Any:
    """What a specialisation is keyed on: the exact type of Python numbers; for arrays, which
    axes have size 1 (a tuple of bools, one per axis), since that decides broadcasting; for
    dicts, lists and tuples (pytrees), their keys and the keys of their items."""
    if type(arg) in _SCALAR_TYPES:
        return type(arg)
    if type(arg) is np.ndarray:
        return ir.ArraySpec(tuple(n == 1 for n in arg.shape), arg.dtype)
    if isinstance(arg, FUNCTION_TYPES):  # a function argument: specialised on (and inlined)
        return arg
    if type(arg) in (dict, list, tuple):
        keys = tuple(arg) if type(arg) is dict else tuple(range(len(arg)))
        return ir.Struct(type(arg), keys, tuple(_guard_key(arg[k]) for k in keys))
    return None


def _unchanged(reads: list) -> bool:
    """Whether every global and closure variable a specialisation compiled in is still bound
    to the same object (an array changed in place is fine: the code reads the object)."""
    for holder, name, obj in reads:
        try:
            current = holder.get(name) if isinstance(holder, dict) else holder.cell_contents
        except ValueError:
            return False
        if current is not obj:
            return False
    return True


def _guardable(key: tuple) -> bool:
    """Whether the dispatcher can test for ``key`` with inline ``type(x) is ...`` guards."""
    return all(k is not None and not isinstance(k, (ir.Struct, *FUNCTION_TYPES)) for k in key)


def _guard(param: str, key: Any, dtype_name: str | None = None) -> str:
    if key in _SCALAR_TYPES:
        return f"type({param}) is {key.__name__}"
    ones = key.ones
    test = f"type({param}) is ndarray and {param}.dtype is {dtype_name} and {param}.ndim == {len(ones)}"
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


def _make(fun: Callable, argnums: ArgNums, with_value: bool, has_aux: bool = False) -> Callable:
    compiler = _Compiler(fun, argnums, with_value, has_aux)
    try:  # so that .source is there before the first call, and errors show early
        compiler.compile((None,) * len(compiler.params), len(compiler.params))
    except (UnresolvedNameError, AliasingError):
        # a global defined after the decorated function: fine if it exists by the first call;
        # aliases of values of unknown type: arrays are compiled for on the first call
        pass
    return compiler.dispatcher


def grad(fun: Callable | None = None, argnums: ArgNums = 0) -> Any:
    """The gradient of scalar-valued ``fun`` with respect to its argument(s) ``argnums``.

    An int ``argnums`` gives one gradient; a tuple gives a tuple of them. Each gradient has
    the type, shape and dtype of its argument. Usable as ``grad(f)``, ``@grad`` or
    ``@grad(argnums=1)``. The result has a ``.source`` attribute with the generated code.
    """
    if fun is None:
        return lambda f: _make(f, argnums, with_value=False)
    return _make(fun, argnums, with_value=False)


def value_and_grad(fun: Callable | None = None, argnums: ArgNums = 0, has_aux: bool = False) -> Any:
    """Like :func:`grad`, but the result returns ``(fun(*args), gradient)`` from one sweep.

    With ``has_aux=True``, ``fun`` returns ``(loss, aux)``; the result is ``((loss, aux), gradient)``
    with the gradient of ``loss`` (as in JAX).
    """
    if fun is None:
        return lambda f: _make(f, argnums, with_value=True, has_aux=has_aux)
    return _make(fun, argnums, with_value=True, has_aux=has_aux)


_VJP_COMPILERS: dict[tuple[Callable, bool], _Compiler] = {}


def _vjp_compiler(fun: Callable, has_aux: bool) -> _Compiler:
    """The compiler of the VJP of ``fun`` with respect to all of its arguments,
    ``vjp_f(*args, cotangent)``: made once per function and kept, with its specialisations."""
    key = (fun, has_aux)
    if key not in _VJP_COMPILERS:
        compiler = _Compiler(fun, tuple(range(len(_param_names(fun)))), with_value=False, has_aux=has_aux,
                             seeded=True)
        try:  # so that .source is there before the first call
            compiler.compile((None,) * len(compiler.params), len(compiler.params))
        except (UnresolvedNameError, AliasingError):
            pass  # (as for grad: compiled for the arguments on the first call)
        _VJP_COMPILERS[key] = compiler
    return _VJP_COMPILERS[key]


def _is_array_like(value: Any) -> bool:
    """An ndarray or a number (not a container of them)."""
    return isinstance(value, (np.ndarray, np.generic, float, int))


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


def vjp(fun: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``(fun(*primals), vjp_fn)``, as in JAX: ``vjp_fn(cotangent)`` gives the cotangent of each of
    ``primals`` (a tuple, one per argument) for ``cotangent``, a value of the type and shape of
    ``fun``'s output -- the vector-Jacobian product, for outputs of any shape.

    With ``has_aux=True``, ``fun`` returns ``(out, aux)`` and the result is ``(out, vjp_fn, aux)``.
    ``vjp_fn.source`` is the generated code, which runs ``fun``'s forward sweep again, then the
    backward sweep from ``cotangent``. The primals are copied: later changes to the caller's
    arrays do not reach ``vjp_fn``, and ``vjp_fn`` changes none of them.
    """
    snapshot = copy.deepcopy(primals)
    result = fun(*copy.deepcopy(primals))
    out, aux = result if has_aux else (result, None)
    pullback = Pullback(fun, _vjp_compiler(fun, has_aux), snapshot, out)
    return (out, pullback, aux) if has_aux else (out, pullback)


def jacrev(fun: Callable, argnums: ArgNums = 0) -> Callable:
    """The Jacobian of ``fun`` with respect to argument(s) ``argnums``, by reverse mode: one
    vector-Jacobian product per element of the output. The Jacobian with respect to an argument
    of shape ``S`` of an output of shape ``T`` has shape ``T + S`` (as in JAX); a tuple
    ``argnums`` gives a tuple of them."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)

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

    jacobian_of.__name__ = f"jacrev_{getattr(fun, '__name__', 'f')}"
    jacobian_of.__doc__ = f"The Jacobian of {getattr(fun, '__name__', 'f')} (reverse mode)."
    return jacobian_of


jacobian = jacrev


# ---------------------------------------------------------------------------- forward mode

_JVPS: dict[Callable, Callable] = {}


def recursive_jvp(fun: Callable) -> Callable:
    """``jvp_f(*args, *tangents) -> (out, tangent_out)``: what the tangent code calls for a
    recursive call of ``f`` (compiled when first called)."""
    if fun not in _JVPS:
        nargs = len(_param_names(fun))
        _JVPS[fun] = _Compiler(fun, 0, with_value=False, tangents=range(nargs), mode="jvp").dispatcher
    return _JVPS[fun]


_TRANSFORMS: dict[tuple, _Compiler] = {}


def _transform(fun: Callable, mode: str, argnums: ArgNums, tangents: Sequence[int]) -> _Compiler:
    """The compiler of one transformation of ``fun``, made once and kept with its specialisations."""
    key = (fun, mode, argnums if isinstance(argnums, int) else tuple(argnums), tuple(tangents))
    if key not in _TRANSFORMS:
        compiler = _Compiler(fun, argnums, with_value=False, tangents=tangents, mode=mode)
        try:  # so that .source is there before the first call
            compiler.compile((None,) * len(compiler.params), len(compiler.params))
        except (UnresolvedNameError, AliasingError, NoRuleError):
            pass  # (as for grad: compiled for the arguments on the first call, where ranks and types are known)
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
    if isinstance(t, np.ndarray) and not np.issubdtype(t.dtype, np.inexact):
        return t.astype(float)
    if isinstance(t, (list, dict)):
        return copy.deepcopy(t)
    return t


def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple:
    """``(fun(*primals), J @ tangents)``, as in JAX: the output and its derivative along
    ``tangents`` (one per argument, each of its primal's shape), by forward mode -- for outputs of
    any shape. The generated code is ``symdiff.linearize(fun, *primals)[1].source``."""
    primals, tangents = _tuple(primals, "primals", fun), _tuple(tangents, "tangents", fun)
    _check_tangents(fun, primals, tangents)
    compiler = _transform(fun, "jvp", 0, range(len(primals)))
    return compiler.dispatcher(*primals, *(_float_tangent(t) for t in tangents))


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


def linearize(fun: Callable, *primals: Any) -> tuple:
    """``(fun(*primals), f_jvp)`` as in JAX: ``f_jvp(*tangents)`` is the JVP at ``primals``.
    (The primals are copied; each call of ``f_jvp`` reruns the forward sweep with tangents.)"""
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


def jacfwd(fun: Callable, argnums: ArgNums = 0) -> Callable:
    """The Jacobian of ``fun`` with respect to argument(s) ``argnums``, by forward mode: one
    Jacobian-vector product per element of the argument (cheaper than :func:`jacrev` when the
    output is bigger than the argument). Shapes as :func:`jacrev`; ``.source`` is the JVP's."""
    nums = _nums(argnums)

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

    jacobian_of.__name__ = f"jacfwd_{_name(fun)}"
    jacobian_of.__doc__ = f"The Jacobian of {_name(fun)} (forward mode)."
    return jacobian_of


def hvp(fun: Callable, primals: Sequence[Any] | None = None, tangents: Sequence[Any] | None = None,
        argnums: int = 0) -> Any:
    """Hessian-vector products of scalar-valued ``fun``, by reverse mode over forward mode (the
    gradient of the derivative along the direction).

    ``hvp(fun, primals, tangents)`` is, as in JAX's ``jvp(grad(fun), primals, tangents)[1]``, the
    derivative of ``grad(fun)`` (with respect to argument 0) along ``tangents`` (one per primal).
    ``hvp(fun, argnums=i)`` gives a function ``hvp_fun(*args, v)``: the Hessian with respect to
    argument ``i`` times ``v`` (of that argument's shape) -- what SciPy's ``hessp=`` takes. Its
    ``.source`` is the generated code.
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


def _hvp_function(fun: Callable, argnum: int) -> Callable:
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
    return Transformed(hessian_vector_product, dispatcher)


class Transformed:
    """A function made by a transformation (:func:`hvp`, :func:`hessian`, :func:`elementwise_grad`):
    callable like ``function``, with the ``.source`` of the generated code it runs."""

    def __init__(self, function: Callable, dispatcher: Callable):
        self._function, self._dispatcher = function, dispatcher
        functools.update_wrapper(self, function, assigned=("__name__", "__qualname__", "__doc__"), updated=())

    def __call__(self, *args: Any) -> Any:
        return self._function(*args)

    @property
    def source(self) -> str | None:
        """The generated code (of the latest specialisation)."""
        return self._dispatcher.source

    def __repr__(self) -> str:
        return f"<symdiff {self.__name__}>"


def hessian(fun: Callable, argnums: int = 0) -> Callable:
    """The Hessian of scalar-valued ``fun`` with respect to argument ``argnums``: one
    Hessian-vector product (:func:`hvp`) per element of the argument; for an argument of shape
    ``S``, of shape ``S + S``. ``.source`` is the generated Hessian-vector product."""
    product = hvp(fun, argnums=argnums)

    def hessian_of(*args: Any) -> Any:
        x = args[argnums] if -len(args) <= argnums < len(args) else None
        if not _is_array_like(x):
            raise SymdiffError(f"hessian of {_name(fun)}: argument {argnums} must be an array or a number, "
                               f"got {type(x).__name__}")
        shape = np.shape(x)
        columns = [product(*args, unit) for unit in _basis(shape)]
        if shape == ():
            return float(columns[0])
        return _columns(columns, shape, shape)

    hessian_of.__name__ = hessian_of.__qualname__ = f"hessian_{_identifier(_name(fun))}"
    hessian_of.__doc__ = f"The Hessian of {_name(fun)} with respect to argument {argnums}."
    return Transformed(hessian_of, product._dispatcher)


def elementwise_grad(fun: Callable, argnums: ArgNums = 0) -> Callable:
    """As in autograd: the gradient of ``np.sum(fun(*args))`` -- for a function acting element
    by element, the derivative of each output element with respect to its input element.
    Computed as one VJP with a cotangent of ones; ``.source`` is that VJP's code."""
    nums = _nums(argnums)
    compiler = _vjp_compiler(fun, False)

    def elementwise_gradient(*args: Any) -> Any:
        out = fun(*copy.deepcopy(args))
        if not _is_array_like(out):
            raise SymdiffError(f"elementwise_grad of {_name(fun)} needs an array or number output, got "
                               f"{type(out).__name__}")
        ones = np.ones(np.shape(out)) if np.ndim(out) else 1.0
        cotangents = compiler.dispatcher(*args, ones)
        picked = tuple(cotangents[n] for n in nums)
        return picked[0] if isinstance(argnums, int) else picked

    elementwise_gradient.__name__ = elementwise_gradient.__qualname__ = f"elementwise_grad_{_identifier(_name(fun))}"
    elementwise_gradient.__doc__ = f"The element-by-element derivative of {_name(fun)}."
    return Transformed(elementwise_gradient, compiler.dispatcher)
