"""What an error says about a callee without a derivative rule: the name the user imports it
by, and code to write instead -- a ``symdiff.defvjp(...)`` line that can be pasted as it is
(``np.fft.fft``, ``scipy.special.erfcx``, ``scipy.stats.expon.logpdf``), or, for a method or
an attribute of an array, which cannot be given a rule, the spelling that has one."""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from . import primitives, runtime
from .ir import Build, BuildDict, GetAttr, Method, Value

# methods and attributes of arrays without a rule, and what to write instead ({x}: the array)
_INSTEAD = {
    "item": "float({x}) for an array of one element, or {x}[i] for one of its elements",
    "tolist": "list({x}), whose items are differentiated",
    "conjugate": "np.conj({x})",
    "ptp": "np.max({x}) - np.min({x})",
    "flat": "np.ravel({x})",
    "flatten": "np.ravel({x})",
    "view": "{x} itself",
    "getfield": "indexing, {x}[...]",
}
for _view in ("keys", "values", "items", "get"):  # differentiated on dicts, whose keys symdiff knows
    _INSTEAD[_view] = (f"{{x}}.{_view}(...) with {{x}} a dict: pass a dict as the argument (dict(m) of another "
                       "mapping m); a dict's keys are part of its signature, and its values are differentiated")


# builtins whose items a derivative goes through where symdiff knows them one by one, and how
_BUILTINS = {
    zip: "zip(...) of values being differentiated is supported in a for loop (for a, b in zip(xs, ys): ...), "
         "unpacked (a, b = zip(*pairs)) and in list(zip(...)) or tuple(zip(...)) of tuples or lists whose length "
         "symdiff knows at compile time (displays, or values built from them): write it one of those ways, or "
         "index the sequences (xs[i], ys[i])",
}


def callee_name(fn: Any, receiver: Any = None) -> str:
    """The callee of an op as a user spells it: ``np.fft.fft``, ``scipy.special.expit``,
    ``math.gamma``, ``scipy.stats.expon.logpdf`` (a method of a known object: ``receiver`` is
    the IR value of the op's first argument, or the object itself), ``x.item()``, ``x.flat``."""
    bound = _bound(fn, receiver)
    if bound is not None:
        return bound
    if isinstance(fn, Method):
        return f"{_receiver_text(receiver)}.{fn.name}()"
    if isinstance(fn, GetAttr):
        return f"{_receiver_text(receiver)}.{fn.name}"
    if isinstance(fn, (Build, BuildDict)):
        return primitives.spelling(fn)
    public = primitives.public_name(fn)
    if public is not None:
        return public
    return primitives.spelling(fn)


def rule_advice(fn: Any, receiver: Any = None, kind: str = "vjp", made_by: Any = None) -> str:
    """What to do about an active call of ``fn`` without a rule (``kind`` "vjp" or "jvp"):
    register one (a pasteable line), or, for methods and attributes of arrays, write the
    computation with a spelling that has one. ``made_by`` is the callee that made a method's
    receiver, when known (a scipy.stats distribution, for a method of a frozen one)."""
    if getattr(fn, "__module__", None) == runtime.__name__:
        return ("it is a helper of symdiff's derivative code: differentiating a derivative (a Hessian) through "
                "the primitive whose rule calls it is not supported yet")
    if isinstance(fn, type) and fn in _BUILTINS:
        return _BUILTINS[fn]
    bound = _bound(fn, receiver)
    if bound is not None:
        return _register(bound, kind)
    if _is_distribution(fn):
        name = primitives.public_name(fn) or "dist"
        return (f"a frozen distribution carries no derivative: call its methods with the parameters instead, "
                f"{name}.logpdf(x, *params, **kw), or in the same expression, {name}(*params).logpdf(x)")
    frozen = _unfrozen(fn, made_by)
    if frozen is not None:
        dist = frozen.rsplit(".", 1)[0]
        return (f"instead, call {frozen}(x, *params, **kw) with the parameters the distribution was frozen with "
                f"(that method has a rule), or in the same expression, {dist}(*params).{fn.name}(x)")
    if isinstance(fn, (Method, GetAttr)):
        return f"instead, write {_instead(fn, _receiver_text(receiver))}"
    if isinstance(fn, (Build, BuildDict)):
        return "build it from arrays with NumPy functions that have derivative rules (docs/numpy.md lists them)"
    public = primitives.public_name(fn)
    name = public if public is not None or type(fn) is types.MethodType else getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name.replace(".", "").replace("_", "a").isalnum():
        return "wrap it in a function of your own and give that a rule with symdiff.defvjp"
    return _register(name, kind)


def _register(name: str, kind: str) -> str:
    if kind == "jvp":
        return f"register one with symdiff.defjvp({name}, lambda t, ans, *args: ...)"
    return f"register one with symdiff.defvjp({name}, lambda g, ans, *args: ...)"


def _bound(fn: Any, receiver: Any) -> str | None:
    """``scipy.stats.expon.logpdf`` (or ``model.energy``, the name the function reads the object
    by) for a method called on an object known when compiling; else None."""
    if not isinstance(fn, Method) or receiver is None:
        return None
    if isinstance(receiver, Value):
        if not receiver.is_const:
            return None
        obj, hint = receiver.const, receiver.hint
    else:  # (the object itself, as a rule sees a constant)
        obj, hint = receiver, None
    if isinstance(obj, (np.ndarray, np.generic, list, tuple, dict, int, float, complex, str)):
        return None
    method = getattr(obj, fn.name, None)
    if not isinstance(method, types.MethodType) or method.__self__ is not obj:
        return None
    public = primitives.public_name(method)
    if public is not None:
        return public
    return f"{hint}.{fn.name}" if isinstance(hint, str) and hint.isidentifier() else None


def _is_distribution(obj: Any) -> bool:
    """A scipy.stats distribution object (``scipy.stats.norm``), whose call freezes it."""
    return not isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)) and \
        type(obj).__module__.startswith("scipy.stats")


def _unfrozen(fn: Any, made_by: Any) -> str | None:
    """``scipy.stats.norm.logpdf`` for ``.logpdf()`` of an object that ``scipy.stats.norm(...)``
    made (a frozen distribution), when that method has a record; else None."""
    if not isinstance(fn, Method) or not _is_distribution(made_by):
        return None
    method = getattr(made_by, fn.name, None)
    if not isinstance(method, types.MethodType) or primitives.registered(method) is None:
        return None
    return primitives.public_name(method)


def _receiver_text(receiver: Any) -> str:
    """The name the function reads the receiver by, else ``x``."""
    hint = receiver.hint if isinstance(receiver, Value) else None
    if isinstance(hint, str) and hint.isidentifier() and not hint.startswith("_"):
        return hint
    return "x"


def _instead(fn: Method | GetAttr, x: str) -> str:
    """The spelling with a rule for ``x.name(...)`` or ``x.name``."""
    known = _INSTEAD.get(fn.name)
    if known is not None:
        return known.format(x=x)
    function = getattr(np, fn.name, None)
    if function is not None and callable(function) and primitives.lookup(function).vjps is not None:
        return f"np.{fn.name}({x}{', ...' if isinstance(fn, Method) else ''})"
    return "it with NumPy functions that have derivative rules (docs/numpy.md lists them)"
