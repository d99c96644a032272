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
from .errors import REPORT, AliasingError, InternalError, SymdiffError, UnresolvedNameError, located
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
                 seeded: bool = False):
        self.fun = fun
        self.argnums = argnums
        self.with_value = with_value
        self.has_aux = has_aux
        self.seeded = seeded  # a VJP: takes the output's cotangent as a last argument
        self.params = _param_names(fun) + (["cotangent"] if seeded else [])
        self.defaults = {} if seeded else _defaults(fun)  # (a VJP's cotangent comes after every argument)
        self.cache: dict[tuple, Callable] = {}  # every compiled specialisation, by key
        self.inline: dict[tuple, tuple[str, dict, tuple]] = {}  # their source, globals and parameter names
        self.reads: dict[tuple, list] = {}  # the globals/closure variables each one compiled in
        self._parsed: Parsed | None = None
        prefix = "vjp" if seeded else "value_and_grad" if with_value else "grad"
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
        primal_args = args[:-1] if self.seeded else args
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
        if self.seeded:
            nargs, key, seed_key = nargs - 1, key[:-1], key[-1]
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
        seed = None
        if self.seeded:
            seed = ir.Value("cotangent")
            lower.specialise(seed, seed_key)
        as_tuple = not isinstance(self.argnums, int)
        if forward.applies(primal, nums, self.seeded):
            gradient = forward.forward(primal, nums[0], self.with_value, as_tuple, self.has_aux)
        else:
            gradient = reverse.reverse(primal, nums, self.with_value, as_tuple=as_tuple, has_aux=self.has_aux,
                                       seed=seed, recursive_vjp=recursive_vjp)
        ir.verify(gradient)
        doc = (f"{self.name.split('_')[0]} of {parsed.name} ({os.path.basename(parsed.filename)}:{parsed.node.lineno}) "
               f"with respect to {', '.join(parsed.params[i] for i in nums)}"
               f"{' in forward mode' if gradient.mode == 'forward' else ''}; generated by symdiff")
        doc = doc.replace("value ", "value_and_grad ", 1) if self.with_value else doc
        doc += "\n" + _specialisation_note(parsed.params, key)
        source, namespace = codegen.generate(gradient, self.name, doc)
        compiled = codegen.compile_function(source, self.name, namespace, f"<symdiff {self.name}>")
        compiled.source = source
        key = key + (seed_key,) if self.seeded else key
        self.cache[key] = compiled
        self.reads[key] = primal.reads
        code = compiled.__code__
        self.inline[key] = (source, namespace, code.co_varnames[:code.co_argcount])
        self.dispatcher.source = source
        if _guardable(key):  # other keys are found through _compile
            self._rebuild_dispatcher()
        return compiled

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
