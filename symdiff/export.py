"""Export: a gradient as a standalone Python module that needs only NumPy.

:func:`export` compiles the gradient of a function (the generic version, valid for arguments of
every shape, or one specialised on the kinds of example arguments), and writes it as a module
of its own: the generated function, the constants of the user's code it reads, and a copy of
the helpers of ``symdiff.runtime`` it calls (with those they call in turn), so that the module
runs where symdiff is not installed. Its header says what was differentiated, how, and what
the code assumes of its arguments.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import os
import symtable
import types
from typing import Any, Callable, Sequence

import numpy as np

from . import api, runtime
from .errors import AliasingError, SymdiffError, UnresolvedNameError
from .version import __version__

TRANSFORMS = ("grad", "value_and_grad")

# the errors the helpers raise, defined in the exported module in place of symdiff's
_ERROR_CLASS = '''class SymdiffError(Exception):
    """What the helpers below raise for input the gradient does not support (in symdiff, the
    base class of its errors)."""'''

# names the module defines besides the runtime's: its imports
_IMPORTED = {"np", "math"}

# arrays of up to this many elements are written as lists of numbers; bigger ones as bytes
_SMALL_ARRAY = 64


def export(fun: Callable, path: str | os.PathLike | None = None, argnums: api.ArgNums = 0,
           transform: str = "grad", example_args: Sequence[Any] | None = None, has_aux: bool = False,
           on_stage: Callable[[str, Any], None] | None = None) -> str:
    """Write the gradient of ``fun`` as a standalone Python module, and return its source.

    The module defines one function, named like the gradient object (``grad_loss``), that
    imports only NumPy (and ``math`` where it is used): the helpers of ``symdiff.runtime`` it
    calls are copied into it, so symdiff need not be installed where it runs. The header comments
    name the function (its file and line), the transformation and what the code assumes.
    Constants of the user's code the gradient reads (numbers, strings, tuples, NumPy arrays) are
    written into the module; anything else it would need (a function of the user's called
    without being differentiated, a custom rule) raises :class:`SymdiffError`.

    Parameters:
        fun: the Python function to differentiate, as for :func:`symdiff.grad`.
        path: where to write the module (``None``: only return the source).
        argnums: which positional argument(s) to differentiate with respect to.
        transform: ``"grad"`` (the gradient with respect to ``argnums``, as :func:`symdiff.grad`)
            or ``"value_and_grad"`` (``(fun(*args), gradient)``, as :func:`symdiff.value_and_grad`).
        example_args: without them the module holds the generic version, valid for arguments
            of every shape and dtype (which axes broadcast is decided at run time). With them it
            is specialised on their kinds -- the exact type of Python numbers; for arrays their
            dtype, number of axes and which axes have size 1 -- and valid only for arguments of
            those kinds (the header says which); the code is shorter and faster.
        has_aux: with ``transform="value_and_grad"``, ``fun`` returns ``(loss, aux)``.
        on_stage: called with the name of each compiler stage and the IR after it.

    Example::

        symdiff.export(loss, "grad_loss.py", argnums=(0, 1))
        # elsewhere, without symdiff:  from grad_loss import grad_loss
    """
    if transform not in TRANSFORMS:
        raise SymdiffError(f"export: transform must be one of {', '.join(map(repr, TRANSFORMS))}, got {transform!r}")
    if getattr(fun, "_symdiff", None) is not None or isinstance(fun, api.Transformed):
        raise SymdiffError(f"export: {getattr(fun, '__name__', fun)!r} is a function symdiff made; export the "
                           "original function and choose the derivative with transform= and argnums=")
    if has_aux and transform != "value_and_grad":
        raise SymdiffError("export: has_aux=True needs transform='value_and_grad' (the aux output is returned "
                           "beside the value)")
    compiler = api._Compiler(fun, argnums, with_value=transform == "value_and_grad", has_aux=has_aux)
    compiler.on_stage = on_stage
    nparams = len(compiler.params)
    if example_args is None:
        key: tuple = (None,) * nparams
    else:
        example_args = tuple(example_args)
        if len(example_args) != nparams:
            raise SymdiffError(f"export: {compiler.parsed.name}() takes {nparams} arguments, but "
                               f"{len(example_args)} example arguments were given")
        for param, arg in zip(compiler.params, example_args):
            api._refuse_complex(param, arg, compiler.parsed)
        key = tuple(api._guard_key(a) for a in example_args)
    try:
        compiler.compile(key, nparams)
    except (UnresolvedNameError, AliasingError) as error:
        if example_args is not None:
            raise
        raise type(error)(f"{error}\n(export: the generic version cannot be compiled; pass example_args= to "
                          "export a version specialised on the kinds of those arguments)") from None
    source, namespace, params = compiler.inline[key]
    text = module_source(source, namespace, compiler, key, params)
    if path is not None:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    return text


def module_source(source: str, namespace: dict[str, Any], compiler: Any, key: tuple,
                  params: Sequence[str] = ()) -> str:
    """The standalone module for generated ``source`` (whose globals are ``namespace`` and
    parameters ``params``: the function's, renamed where they would shadow a name the code reads)."""
    header, function = source.split("\n\n\n", 1)
    defaults = api._defaults(compiler.fun)
    kinds = dict(zip(compiler.params, key))
    if any(kinds.get(p) is not None and api._guard_key(v) != kinds[p] for p, v in defaults.items()):
        defaults = {}  # (a default of another kind than the code is specialised on would not be valid)
    function = with_defaults(function, compiler.name, list(params), compiler.params, defaults)
    described = [line for line in header.splitlines() if line.startswith("# ")][0]
    used = {name for name, value in namespace.items() if name in api.codegen.RUNTIME.values()
            and value is getattr(runtime, name, None)}
    helpers, helper_names = runtime_helpers(used)
    constants, imports = _user_globals(namespace, used, compiler.name)
    parsed = compiler.parsed
    lines = [
        f"# Exported by symdiff {__version__} (symdiff.export): a standalone module needing only NumPy.",
        f"# Function: {getattr(parsed.fn, '__qualname__', parsed.name)}, defined at "
        f"{os.path.abspath(parsed.filename)}:{parsed.node.lineno}",
        f"# Computes: {described[2:].replace('; generated by symdiff', '')}",
        f"# (the `# line N:` comments below point at lines of {os.path.basename(parsed.filename)})",
        *(f"# {line}" for line in _assumptions(parsed.params, key[:len(parsed.params)])),
        f"# Defines {compiler.name}; the helpers of symdiff.runtime it calls are copied at the end, unchanged.",
        "",
        "from __future__ import annotations",
        "",
    ]
    stdlib = ["import math"] if _reads(function, "math") or _reads(helpers, "math") else []
    lines += stdlib + ([""] if stdlib else []) + ["import numpy as np"] + imports
    if constants:
        lines += ["", "# from the module of the function, as they were when exported"] + constants
    lines += ["", f"__all__ = [{compiler.name!r}]", "", "", function.rstrip("\n")]
    if helpers:
        lines += ["", "", f"# ---- copied from symdiff.runtime (symdiff {__version__}): "
                          f"{', '.join(helper_names)}", "", "", helpers]
    text = "\n".join(lines).rstrip("\n") + "\n"
    missing = undefined_names(text)
    if missing:  # (a helper's dependency not found: a bug here, never a module that fails later)
        raise api.InternalError(f"export of {compiler.name}: the module would read {', '.join(sorted(missing))}, "
                                f"which it does not define. {api.REPORT}")
    return text


def with_defaults(function: str, name: str, params: list[str], user_params: list[str],
                  defaults: dict[str, Any]) -> str:
    """The generated ``function`` with the default values of the user's parameters (those that
    can be written as Python source: where one cannot, none are given, and every argument is needed)."""
    literals = {p: _literal(v) for p, v in defaults.items()}
    if not defaults or len(params) != len(user_params) or any(v is None for v in literals.values()):
        return function
    signature = ", ".join(f"{p}={literals[u]}" if u in literals else p for p, u in zip(params, user_params))
    old = f"def {name}({', '.join(params)}):"
    return function.replace(old, f"def {name}({signature}):", 1) if function.startswith(old) else function


def _assumptions(params: list[str], key: tuple) -> list[str]:
    """What the exported code assumes of its arguments, in words (one line each)."""
    if all(k is None for k in key):
        return ["Assumes: nothing of the arguments' shapes or dtypes (the generic version): which axes",
                "broadcast is decided at run time, so it is valid for every input shape the function accepts."]
    kinds = [f"  {p}: {api._describe(k)}" for p, k in zip(params, key)]
    return (["Assumes (specialised on example arguments):"] + kinds
            + ["(* is any size but 1: only the axes shown as 1 broadcast.) Valid only for arguments of these",
               "kinds; export with other example_args for others."])


def _reads(text: str, name: str) -> bool:
    """Whether Python ``text`` reads the name ``name`` (``math`` in ``math.exp(x)``)."""
    return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(ast.parse(text)))


# ---------------------------------------------------------------------------- runtime helpers


def _runtime_definitions() -> tuple[list[str], dict[str, tuple[str, set[str]]]]:
    """The top-level definitions of ``symdiff.runtime``, in the order of the file: each one's
    source text and the names it reads (outside annotations, which are never evaluated)."""
    text = inspect.getsource(runtime)
    tree = ast.parse(text)
    lines = text.splitlines()
    order, found = [], {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
        else:
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        segment = "\n".join(lines[start - 1:node.end_lineno])
        for name in names:
            order.append(name)
            found[name] = (segment, _names_read(node))
    return order, found


def _names_read(node: ast.AST) -> set[str]:
    """Every name read in ``node``, but not in its annotations."""
    skipped: set[int] = set()
    for inner in ast.walk(node):
        annotations = [getattr(inner, "returns", None), getattr(inner, "annotation", None)]
        for annotation in annotations:
            if annotation is not None:
                skipped.update(id(n) for n in ast.walk(annotation))
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in skipped}


def runtime_helpers(names: set[str]) -> tuple[str, list[str]]:
    """The source of the runtime helpers ``names`` and of everything in ``symdiff.runtime`` they
    read, in the order of that file (and the error class they raise), and their names."""
    order, found = _runtime_definitions()
    needed, todo, error = set(), list(names), False
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        if name not in found:
            raise api.InternalError(f"export: symdiff.runtime defines no {name!r}. {api.REPORT}")
        needed.add(name)
        reads = found[name][1]
        error = error or "SymdiffError" in reads
        todo.extend(n for n in reads if n in found and n not in needed)
    picked = [name for name in order if name in needed]
    segments = [_ERROR_CLASS] if error else []
    seen: set[str] = set()
    for name in picked:
        segment = found[name][0]
        if segment not in seen:
            seen.add(segment)
            segments.append(segment)
    return "\n\n\n".join(segments), picked


def undefined_names(text: str) -> set[str]:
    """The global names module ``text`` reads (outside annotations) that it neither defines
    nor imports and that are not builtins."""
    tree = ast.parse(text)
    for node in ast.walk(tree):  # (annotations are never evaluated: `from __future__ import annotations`)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
        elif isinstance(node, ast.arg):
            node.annotation = None
    table = symtable.symtable(ast.unparse(tree), "<export>", "exec")
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    missing: set[str] = set()

    def visit(scope: symtable.SymbolTable) -> None:
        for symbol in scope.get_symbols():
            name = symbol.get_name()
            is_global = scope.get_type() == "module" or symbol.is_global()
            if is_global and symbol.is_referenced() and name not in defined and not hasattr(builtins, name):
                missing.add(name)
        for child in scope.get_children():
            visit(child)

    visit(table)
    return missing


# ---------------------------------------------------------------------------- the user's globals


def _user_globals(namespace: dict[str, Any], runtime_names: set[str], name: str) -> tuple[list[str], list[str]]:
    """Assignments of the constants of the user's code the generated code reads, and imports of
    the modules it reads besides NumPy and math; anything else cannot be exported."""
    constants, imports = [], []
    for global_name, value in sorted(namespace.items()):
        if global_name in _IMPORTED or global_name in runtime_names:
            continue
        if isinstance(value, types.ModuleType):
            module = value.__name__
            imports.append(f"import {module}" if module == global_name else f"import {module} as {global_name}")
            continue
        literal = _literal(value)
        if literal is None:
            raise SymdiffError(
                f"export of {name}: the generated code uses {global_name!r}, {_kind(value)} from your code, which "
                "cannot be written into a standalone module (only numbers, strings, tuples, lists and "
                "dicts of them and NumPy arrays can); export a function that computes it instead, or pass it as "
                "an argument")
        constants.append(f"{global_name} = {literal}")
    return constants, imports


def _kind(value: Any) -> str:
    what = getattr(value, "__qualname__", None) or type(value).__name__
    return f"the {'function' if callable(value) else 'object'} {what}"


def _literal(value: Any) -> str | None:
    """Python source that rebuilds ``value`` exactly, or None where there is none here."""
    if value is None or type(value) in (bool, int, str, bytes):
        return repr(value)
    if type(value) is float:
        return repr(value) if math.isfinite(value) else f"float({repr(value)!r})"
    if type(value) is complex:
        return f"complex({_literal(value.real)}, {_literal(value.imag)})"
    if type(value) in (tuple, list):
        items = [_literal(v) for v in value]
        if any(item is None for item in items):
            return None
        inner = ", ".join(items) + ("," if type(value) is tuple and len(items) == 1 else "")
        return f"({inner})" if type(value) is tuple else f"[{inner}]"
    if type(value) is dict:
        items = [(_literal(k), _literal(v)) for k, v in value.items()]
        return None if any(k is None or v is None for k, v in items) else \
            "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, np.dtype):
        return f"np.dtype({value.str!r})" if value.fields is None else None
    if isinstance(value, np.generic) and value.dtype.fields is None and value.dtype.kind in "biufc":
        return f"np.{type(value).__name__}({_literal(value.item())})"
    if type(value) is np.ndarray and value.dtype.kind in "biufc" and value.dtype.fields is None:
        dtype = f"np.dtype({value.dtype.str!r})"
        if value.size <= _SMALL_ARRAY and (value.dtype.kind not in "fc" or np.isfinite(value).all()):
            return f"np.array({value.tolist()!r}, dtype={dtype})"
        data = np.ascontiguousarray(value).tobytes().hex()
        return f"np.frombuffer(bytes.fromhex({data!r}), dtype={dtype}).reshape({value.shape!r}).copy()"
    return None
