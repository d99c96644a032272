"""Frontend: get a function's source, parse it, resolve names, and report unsupported syntax.

Knows nothing about the IR or derivatives. Its product is a :class:`Parsed` function: the
``ast`` node with line/column numbers that point into the real file, and a name resolver.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import linecache
import textwrap
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import SymdiffError, UnsupportedSyntaxError, located

_MISSING = object()


def nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree``, ``tree`` first: what ``ast.walk`` yields, in its order, as a
    list (made in a third of the time)."""
    found = [tree]
    for node in found:  # (a list grows under its own iteration: breadth first, as ast.walk)
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                found.append(value)
            elif isinstance(value, list):
                found.extend([item for item in value if isinstance(item, ast.AST)])
    return found


# Statement and expression nodes the lowering has no meaning for, with the name users know.
UNSUPPORTED = {
    "Try": "try statement", "TryStar": "try/except* statement",
    "AsyncWith": "async with statement", "AsyncFor": "async for loop",
    "AsyncFunctionDef": "async function", "Await": "await expression",
    "YieldFrom": "yield from", "Global": "global statement", "Nonlocal": "nonlocal statement",
    "Delete": "del statement", "ClassDef": "class definition",
    "Match": "match statement", "Import": "import statement",
    "ImportFrom": "import statement",
    "SetComp": "set comprehension", "NamedExpr": "assignment expression (:=)",
    "Set": "set display", "JoinedStr": "f-string",
    "AnnAssign": "annotated assignment",
}

# What to write instead, for constructs with a usual rewrite.
ADVICE = {
    "Delete": "build a new list or dict without the item (by slicing, a comprehension or a display), "
              "or just stop using the name",
    "YieldFrom": "write `for item in iterable: yield item`",
    "Try": "check the condition with an `if` and `raise` (or `assert`) instead of catching the exception",
    "Import": "import at the top of the module: the function may use any name defined there",
    "ImportFrom": "import at the top of the module: the function may use any name defined there",
}


@dataclass
class Parsed:
    """A parsed user function with everything the lowering needs."""

    fn: Callable
    node: ast.FunctionDef | ast.Lambda
    filename: str
    name: str

    def error(self, node: ast.AST, message: str, cls: type = UnsupportedSyntaxError) -> SymdiffError:
        """An error pointing at ``node`` in the user's file."""
        line = getattr(node, "lineno", None)
        col = getattr(node, "col_offset", None)
        source_line = linecache.getline(self.filename, line) if line else None
        return cls(located(message, self.filename, line, col, source_line or None))

    def resolve(self, name: str) -> Any:
        """The object a free name refers to: closure cell, global, or builtin."""
        code = self.fn.__code__
        if name in code.co_freevars and self.fn.__closure__:
            cell = self.fn.__closure__[code.co_freevars.index(name)]
            try:
                return cell.cell_contents
            except ValueError:
                return _MISSING
        value = self.fn.__globals__.get(name, _MISSING)
        if value is _MISSING:
            value = getattr(builtins, name, _MISSING)
        return value

    def holder(self, name: str) -> Any:
        """Where a free name lives: a closure cell, the globals dict, or None for builtins."""
        code = self.fn.__code__
        if name in code.co_freevars and self.fn.__closure__:
            return self.fn.__closure__[code.co_freevars.index(name)]
        return self.fn.__globals__ if name in self.fn.__globals__ else None

    def names_read_after(self, node: ast.AST) -> set[str]:
        """Names read anywhere in the function after ``node`` ends (in source order)."""
        end = (node.end_lineno, node.end_col_offset)
        return {name for name, last in self._last_reads().items() if last > end}

    def _last_reads(self) -> dict[str, tuple[int, int]]:
        """Where each name is last read in the function (line, column): one walk of the tree
        (remembered with the tree it walked), however many statements ask."""
        cached = self.__dict__.get("_last_reads_of")
        if cached is not None and cached[0] is self.node:
            return cached[1]
        last: dict[str, tuple[int, int]] = {}
        for n in names_read(self.node):
            position = (n.lineno, n.col_offset)
            if position > last.get(n.id, (0, -1)):
                last[n.id] = position
        self.__dict__["_last_reads_of"] = (self.node, last)
        return last

    bound: Any = _MISSING  # for a bound method: the object `self` is

    @property
    def all_params(self) -> list[str]:
        return [a.arg for a in self.node.args.args]

    @property
    def params(self) -> list[str]:
        """The parameters callers pass (without ``self`` for a bound method)."""
        names = self.all_params
        return names[1:] if self.bound is not _MISSING else names


def names_read(node: ast.AST) -> Iterator[ast.Name]:
    """The names ``node`` reads, the target of an augmented assignment included (``a += v`` reads
    ``a``, and updates in place the array every other name bound to it sees)."""
    for n in nodes(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            yield n
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            yield n.target


def parse_function(fn: Callable) -> Parsed:
    """Read and parse the source of ``fn`` (a def or a lambda)."""
    _refuse_wrapper(fn)
    if isinstance(fn, types.MethodType):  # obj.loss: differentiate loss with `self` fixed to obj
        parsed = parse_function(fn.__func__)
        if not parsed.params:
            raise parsed.error(parsed.node, "a method without a `self` parameter cannot be bound")
        parsed.bound = fn.__self__
        return parsed
    if not isinstance(fn, types.FunctionType):
        raise SymdiffError(
            f"{fn!r} is not a Python function (it may be a C builtin or a callable object): "
            "symdiff needs Python source; wrap it in a def, or register a rule with symdiff.defvjp")
    filename = fn.__code__.co_filename
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise SymdiffError(
            f"cannot read the source of {fn.__qualname__} (defined in {filename}): {exc}. "
            "symdiff transforms source code, so define the function in a .py file "
            "(or a notebook cell) rather than in a bare REPL or through exec") from None
    node = _find_node(fn, lines, first, filename)
    parsed = Parsed(fn, node, filename, fn.__name__ if fn.__name__ != "<lambda>" else "lambda")
    _check_decorators(parsed)
    _check_signature(parsed)
    _check_syntax(parsed)
    return parsed


def _refuse_wrapper(fn: Callable) -> None:
    """Refuse what is not the function that runs: a symdiff gradient, a ``functools.partial``,
    a function with ``__wrapped__`` (a decorator's wrapper: differentiating the function it
    wraps would skip the decorator's effect)."""
    compiler = getattr(fn, "_symdiff", None)
    if compiler is not None:
        code = getattr(compiler.fun, "__code__", None)
        of = f" of the function at {code.co_filename}:{code.co_firstlineno}" if code is not None else ""
        raise SymdiffError(f"differentiating a symdiff gradient is not supported yet: {fn.__name__} is the "
                           f"gradient{of}; differentiate the original function, or write the derivative it "
                           "computes in code")
    if isinstance(fn, functools.partial):
        name = getattr(fn.func, "__name__", "f")
        raise SymdiffError(f"{fn!r}: a functools.partial is not supported: write a lambda that passes the "
                           f"fixed arguments, e.g. symdiff.grad(lambda x: {name}(x, ...))")
    wrapped = getattr(fn, "__wrapped__", _MISSING)
    if wrapped is not _MISSING:
        name = getattr(fn, "__qualname__", repr(fn))
        message = (f"{name} is wrapped by a decorator (its __wrapped__ is the undecorated function): "
                   "symdiff does not differentiate through decorators; apply symdiff to the undecorated "
                   "function and write the decorator's effect in code")
        code = getattr(inspect.unwrap(fn), "__code__", None)
        if code is None:
            raise SymdiffError(message)
        line = code.co_firstlineno  # the first decorator's line
        raise SymdiffError(located(message, code.co_filename, line, None,
                                   linecache.getline(code.co_filename, line) or None))


_KNOWN_DECORATORS = (staticmethod, classmethod)


def _check_decorators(parsed: Parsed) -> None:
    """Refuse a def whose decorators may have replaced it, unless each is one symdiff knows
    (``symdiff.grad``, ``staticmethod``...) or its name still refers to this very function (a
    decorator that registers the function and returns it)."""
    node = parsed.node
    for decorator in getattr(node, "decorator_list", []):
        if not _known_decorator(decorator, parsed.fn) and not _names_itself(parsed.fn):
            raise parsed.error(decorator, f"{parsed.name} has the decorator @{ast.unparse(decorator)}, which "
                               "symdiff does not know: apply symdiff to the undecorated function and write "
                               "the decorator's effect in code")


def _known_decorator(decorator: ast.expr, fn: Callable) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    parts = []
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    if not isinstance(target, ast.Name):
        return False
    obj = fn.__globals__.get(target.id, getattr(builtins, target.id, _MISSING))
    if obj is _MISSING:  # a name local to the defining function (`import symdiff` in a def)
        return (parts[0] if parts else target.id) in ("grad", "value_and_grad")
    for attr in reversed(parts):
        obj = getattr(obj, attr, _MISSING)
    if any(obj is known for known in _KNOWN_DECORATORS):
        return True
    return (getattr(obj, "__module__", None), getattr(obj, "__name__", "")) in (
        ("symdiff.api", "grad"), ("symdiff.api", "value_and_grad"), ("symdiff.custom", "checkpoint"))


def _names_itself(fn: Callable) -> bool:
    """Whether ``fn``'s qualified name, looked up from its module, is ``fn`` itself."""
    if "<locals>" in fn.__qualname__:
        return False
    obj: Any = fn.__globals__
    for part in fn.__qualname__.split("."):
        fields = obj if isinstance(obj, dict) else getattr(obj, "__dict__", {})
        obj = fields.get(part, _MISSING)
        obj = getattr(obj, "__func__", obj)  # a staticmethod or classmethod in a class body
    return obj is fn


def _find_node(fn: Callable, lines: list[str], first: int, filename: str) -> ast.FunctionDef | ast.Lambda:
    text = "".join(lines)
    if fn.__name__ != "<lambda>":
        dedented = textwrap.dedent(text)
        indent = len(lines[0]) - len(lines[0].lstrip())
        tree = ast.parse(dedented)
        node = tree.body[0]
        _shift(node, first - 1, indent)
        if isinstance(node, ast.AsyncFunctionDef):
            raise Parsed(fn, node, filename, fn.__name__).error(node, "async function is not supported")
        return node
    return _find_lambda(fn, lines, first)


def _find_lambda(fn: Callable, lines: list[str], first: int) -> ast.Lambda:
    """The lambda node of ``fn`` among the lambdas that start on its first source lines."""
    want = list(fn.__code__.co_varnames[: fn.__code__.co_argcount])
    candidates = []
    for row, line in enumerate(lines):
        start = 0
        while (col := line.find("lambda", start)) >= 0:
            start = col + 1
            node = _parse_lambda_at(lines, row, col)
            if node is not None and [a.arg for a in node.args.args] == want:
                _shift(node, first - 1 + row, col, first_row_only=True)
                candidates.append(node)
    if not candidates:
        raise SymdiffError(f"cannot find the source of the lambda defined at "
                           f"{fn.__code__.co_filename}:{first}; define it with def")
    position = _code_position(fn)
    for node in candidates:  # the lambda whose body holds the code's first instruction
        body = node.body
        if position and (body.lineno, body.col_offset) <= position < (body.end_lineno, body.end_col_offset):
            return node
    for node in candidates:  # Python < 3.11: the lambda that compiles to the same bytecode
        if _same_bytecode(node, fn.__code__):
            return node
    return candidates[0]


def _same_bytecode(node: ast.Lambda, code: types.CodeType) -> bool:
    try:
        module = compile(ast.fix_missing_locations(ast.Expression(node)), "<lambda>", "eval")
    except (SyntaxError, ValueError):  # pragma: no cover
        return False
    inner = next((c for c in module.co_consts if isinstance(c, types.CodeType)), None)
    return inner is not None and inner.co_code == code.co_code and inner.co_consts == code.co_consts


def _parse_lambda_at(lines: list[str], row: int, col: int) -> ast.Lambda | None:
    """Parse the longest expression starting at ``lines[row][col]`` that is a lambda."""
    text = lines[row][col:] + "".join(lines[row + 1:])
    for end in range(len(text), 0, -1):
        try:
            expr = ast.parse(text[:end].strip(), mode="eval").body
        except SyntaxError:
            continue
        if isinstance(expr, ast.Lambda):
            return expr
    return None


def _code_position(fn: Callable) -> tuple[int, int] | None:
    positions = getattr(fn.__code__, "co_positions", None)
    if positions is None:  # Python < 3.11
        return None
    spans = [(line, col) for line, _end, col, endcol in positions()
             if line is not None and col is not None and endcol is not None and endcol > col]
    return min(spans) if spans else None


def _shift(node: ast.AST, rows: int, cols: int, first_row_only: bool = False) -> None:
    """Make positions absolute in the file: add ``rows`` to lines and ``cols`` to columns
    (only on the snippet's first line when ``first_row_only``)."""
    for sub in nodes(node):
        if not hasattr(sub, "lineno"):
            continue
        if not first_row_only or sub.lineno == 1:
            sub.col_offset += cols
        if getattr(sub, "end_col_offset", None) is not None and (not first_row_only or sub.end_lineno == 1):
            sub.end_col_offset += cols
        sub.lineno += rows
        if getattr(sub, "end_lineno", None):
            sub.end_lineno += rows


def _check_signature(parsed: Parsed) -> None:
    """Refuse positional-only parameters (``*args``, ``**kwargs`` and keyword-only parameters
    are bound when a helper is inlined; :func:`check_entry_signature` refuses what the
    differentiated function itself cannot have)."""
    if getattr(parsed.node.args, "posonlyargs", []):
        raise parsed.error(parsed.node, "positional-only parameters in the signature are not supported yet: "
                           "drop the `/`")


def check_entry_signature(parsed: Parsed) -> None:
    """Refuse what the differentiated function's own signature cannot have: its positional
    parameters are what the derivative takes, so ``*args``/``**kwargs`` (of unknown number) are
    refused, and a keyword-only parameter needs a default (the derivative uses it)."""
    args = parsed.node.args
    for what, present in (("*args", args.vararg), ("**kwargs", args.kwarg)):
        if present:
            raise parsed.error(parsed.node, f"{what} in the signature of the differentiated function are not "
                               "supported: name each parameter (def f(x, y)), or differentiate a lambda "
                               "that calls it, e.g. symdiff.grad(lambda x, y: f(x, y))")
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        if default is None:
            raise parsed.error(arg, f"the keyword-only parameter '{arg.arg}' of the differentiated function has "
                               "no default: give it one (the derivative uses the default), or make it positional")
    yields = [n for n in _this_function_nodes(parsed.node) if isinstance(n, (ast.Yield, ast.YieldFrom))] \
        if isinstance(parsed.node, ast.FunctionDef) else []
    if yields:
        raise parsed.error(yields[0], f"differentiating a generator function (yield) itself is not supported: "
                           f"differentiate a function that consumes it, e.g. lambda x: sum({parsed.name}(x)), "
                           f"or list({parsed.name}(x))")


def _this_function_nodes(node: ast.FunctionDef) -> Iterator[ast.AST]:
    """The nodes of ``node``'s body outside nested functions and lambdas."""
    stack: list[ast.AST] = list(node.body)
    while stack:
        sub = stack.pop()
        yield sub
        if not isinstance(sub, (ast.FunctionDef, ast.Lambda, ast.AsyncFunctionDef)):
            stack.extend(ast.iter_child_nodes(sub))


def _check_syntax(parsed: Parsed) -> None:
    body = parsed.node.body if isinstance(parsed.node, ast.FunctionDef) else [parsed.node.body]
    for stmt in body:
        for node in nodes(stmt):
            construct = UNSUPPORTED.get(type(node).__name__)
            if construct is not None:
                advice = ADVICE.get(type(node).__name__)
                raise parsed.error(node, f"{construct} is not supported by symdiff" + (f": {advice}" if advice else ""))
            message = _statement_message(node, stmt)
            if message is not None:
                raise parsed.error(node, message)


def _statement_message(node: ast.AST, stmt: ast.stmt) -> str | None:
    """Why ``node`` (inside the statement ``stmt``) is refused, for the forms of ``raise``,
    ``yield`` and star-unpacking symdiff does not take; else None."""
    if isinstance(node, ast.Raise):
        if node.exc is None:
            return ("a bare `raise` (re-raising the exception being handled) is not supported by symdiff: "
                    "raise an exception, e.g. raise ValueError(\"...\")")
    if isinstance(node, ast.Yield) and not any(isinstance(s, ast.Expr) and s.value is node for s in nodes(stmt)):
        return ("yield used as a value is not supported by symdiff: a generator may only yield as a statement "
                "(`yield value`)")
    if isinstance(node, ast.Starred) and isinstance(node.ctx, ast.Store):
        return ("star-unpacking in an assignment (a, *rest = ...) is not supported by symdiff: index or slice "
                "instead (a, rest = t[0], t[1:])")
    if isinstance(node, ast.withitem) and node.optional_vars is not None:
        return ("`with ... as name` is not supported by symdiff: only `with np.errstate(...)` and "
                "`with warnings.catch_warnings()` without `as` are")
    return None
