"""Generate docs/numpy.md, the table of functions symdiff differentiates, from the primitive
records (``symdiff.primitives``: rules, method spellings, aliasing, shape rules), and, when
SciPy is installed, docs/scipy.md, the table of the SciPy rows (``symdiff/rules_scipy.py``).

    python3 scripts/gen_numpy_docs.py          # rewrite docs/numpy.md (and docs/scipy.md)
    python3 scripts/gen_numpy_docs.py --check  # exit 1 if one is stale

``tests/test_numpy_rules.py::test_numpy_docs_are_up_to_date`` and
``tests/test_scipy_rules.py::test_scipy_docs_are_up_to_date`` fail when a file is stale.
"""

from __future__ import annotations

import builtins
import inspect
import math
import operator
import pathlib
import sys
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symdiff import forward, primitives, runtime, shapes  # noqa: E402
from symdiff.ir import Build, GetAttr, Method  # noqa: E402

DOC = ROOT / "docs" / "numpy.md"
SCIPY_DOC = ROOT / "docs" / "scipy.md"

OPERATORS = {
    operator.add: "x + y", operator.sub: "x - y", operator.mul: "x * y", operator.truediv: "x / y",
    operator.pow: "x ** y", operator.neg: "-x", operator.pos: "+x", operator.abs: "abs(x) (operator.abs)",
    operator.mod: "x % y", operator.matmul: "x @ y", operator.getitem: "x[index]",
    operator.lt: "x < y", operator.le: "x <= y", operator.gt: "x > y", operator.ge: "x >= y",
    operator.eq: "x == y", operator.ne: "x != y", operator.not_: "not x", operator.is_: "x is y",
    operator.is_not: "x is not y", operator.floordiv: "x // y", operator.and_: "x & y",
    operator.or_: "x | y", operator.xor: "x ^ y", operator.invert: "~x",
}
SPECIAL = {id(getattr(runtime, "setitem", None)): "x[index] = value"}

# Arguments a rule takes through *args (so its own parameter names do not say which).
ARG_NAMES = {"np.clip": ("a", "a_min", "a_max"), "x.clip()": ("x", "min", "max"),
             "np.average": ("a", "axis", "weights"), "np.einsum": ("subscripts", "*operands"),
             "max": ("*args",), "min": ("*args",)}

NOTES = {
    "x + y": "NumPy broadcasting undone at compile time where shapes are known",
    "x ** y": "d/dy uses log(x), taken as 0 where x == 0",
    "x % y": "d/dy = -floor(x / y)",
    "x[index]": "basic, fancy (repeated indices accumulate) and boolean-mask indexing; the index only for "
                "the items of np.r_[a, b, ...] and np.c_[a, b, ...]",
    "max": "two or more numbers (not one sequence, no key=); a tie sends the cotangent to the first",
    "min": "two or more numbers (not one sequence, no key=); a tie sends the cotangent to the first",
    "np.maximum": "ties split the cotangent evenly (as JAX)",
    "np.minimum": "ties split the cotangent evenly (as JAX)",
    "np.fmax": "as np.maximum; a NaN operand gets nothing (fmax ignores NaN)",
    "np.fmin": "as np.minimum; a NaN operand gets nothing (fmin ignores NaN)",
    "np.absolute": "also spelt np.abs; 0 at x == 0", "np.fabs": "0 at x == 0", "abs": "0 at x == 0",
    "np.divide": "also spelt np.true_divide",
    "np.cbrt": "infinite at 0",
    "np.sinc": "0 at x == 0",
    "np.clip": "passes where a_min < x < a_max; bounds may be None, constant or differentiated",
    "x.clip()": "as np.clip",
    "np.where": "the condition is not differentiable",
    "np.float_power": "computed in float64, as NumPy does",
    "np.sum": "axis (int, negative, tuple), keepdims",
    "np.mean": "axis (int, negative, tuple), keepdims",
    "np.prod": "axis, keepdims; exact with zeros (product of the other elements)",
    "np.max": "axis, keepdims; ties split the cotangent evenly among the maximal elements (as JAX)",
    "np.amax": "as np.max", "np.min": "as np.max", "np.amin": "as np.max",
    "np.var": "axis, ddof (or correction), keepdims",
    "np.std": "axis, ddof (or correction), keepdims; 0 where std == 0 (one element, or all equal)",
    "np.cumsum": "axis (default: flattened)",
    "np.cumprod": "axis; exact with zeros",
    "np.average": "axis, keepdims, weights (1-D along axis or full shape); returned=True not supported",
    "np.linalg.norm": "vector norms ord None/2/1/inf/-inf/0/p, matrix norms 'fro'/'nuc'/2/-2/1/-1/inf/-inf, "
                      "with axis/keepdims; NaN where the norm is 0; a unique extreme singular value/column/row",
    "np.transpose": "with or without axes (negative ones too)",
    "np.reshape": "-1 allowed; order 'C', 'F', 'A'", "x.reshape()": "as np.reshape",
    "np.broadcast_to": "the cotangent is summed over the broadcast axes",
    "np.repeat": "int or per-element repeats, axis or flattened",
    "np.pad": "modes constant (the default), edge, reflect, symmetric, wrap; constant_values is not differentiated",
    "np.sort": "through the sorting permutation (np.argsort)",
    "np.trace": "offset, axis1, axis2", "np.diagonal": "offset, axis1, axis2",
    "np.diag": "of a vector (builds a matrix) and of a matrix (takes a diagonal), with k",
    "np.dot": "any ranks", "np.matmul": "any ranks, batched and broadcast", "x @ y": "any ranks, batched and broadcast",
    "np.einsum": "a subscripts string (not the operand-list form): explicit or implicit output, '...', "
                 "repeated (diagonal) subscripts, size-1 broadcasting; up to 16 operands",
    "np.tensordot": "axes as an int or a pair of sequences",
    "np.linalg.inv": "also batched", "np.linalg.det": "also batched; needs an invertible matrix",
    "np.linalg.solve": "also batched; b a vector or a matrix",
    "x.max()": "as np.max", "x.min()": "as np.max", "x.prod()": "as np.prod", "x.sum()": "as np.sum",
    "x.mean()": "as np.mean", "x.var()": "as np.var", "x.std()": "as np.std", "x.cumsum()": "as np.cumsum",
    "x.cumprod()": "as np.cumprod", "x.repeat()": "as np.repeat", "x.trace()": "as np.trace",
    "x.diagonal()": "as np.diagonal",
    "x.transpose()": "x.transpose(), x.transpose(1, 0, 2), x.transpose((1, 0, 2)), x.transpose([1, 0])",
    "np.linalg.cholesky": "the gradient is symmetrised (the input is read as symmetric), as in JAX; upper=True too",
    "np.linalg.pinv": "also batched; a of full rank",
    "np.linalg.eigh": "w, v = eigh(a): distinct eigenvalues; symmetrised (a is read as symmetric); also batched",
    "np.linalg.eigvalsh": "as np.linalg.eigh",
    "np.linalg.eig": "real input with real, distinct eigenvalues (complex ones are refused); unit-norm vectors",
    "np.linalg.eigvals": "as np.linalg.eig",
    "np.linalg.svd": "full_matrices=False (or a square matrix, or only s used), or compute_uv=False; distinct, "
                     "nonzero singular values; also batched",
    "np.linalg.svdvals": "as np.linalg.svd(a, compute_uv=False)",
    "np.linalg.qr": "reduced mode and mode='r'; also with more columns than rows, and batched",
    "np.linalg.matrix_power": "an int power (negative: through the inverse); also batched",
    "np.linalg.multi_dot": "a 1-D first (last) array is read as a row (column), as multi_dot does",
    "np.vecdot": "of real arrays (no conjugate); axis, broadcast", "np.linalg.vecdot": "as np.vecdot",
    "np.nanmax": "as np.max; NaN elements get 0", "np.nanmin": "as np.max; NaN elements get 0",
    "np.matrix_transpose": "the last two axes swapped", "np.linalg.matrix_transpose": "as np.matrix_transpose",
    "x.mT": "as np.matrix_transpose", "x.take()": "as np.take",
    "np.ravel": "order 'C', 'F', 'A', 'K'", "x.ravel()": "as np.ravel", "x.flatten()": "as np.ravel",
    "np.concatenate": "axis, or None (flattened)",
    "np.triu": "of matrices, stacks, or a vector (a matrix of its copies)", "np.tril": "as np.triu",
    "np.linalg.lstsq": "a of full rank; through the solution and the residuals (not rank, singular values)",
    "np.diff": "n, axis (no prepend=/append=)",
    "np.take": "indices, axis (default: flattened); repeated indices accumulate",
    "np.take_along_axis": "repeated indices accumulate",
    "np.median": "axis, keepdims; through the middle element(s), ties to one of the equal elements",
    "np.percentile": "as np.quantile (q in percent)",
    "np.quantile": "q a number or a list, axis, keepdims; method='linear' (the default) only",
    "np.mod": "also spelt np.remainder; d/dy = -floor(x / y)",
    "np.fmod": "d/dy = -trunc(x / y)",
    "np.append": "axis, or flattened",
    "np.rot90": "k, axes", "np.rollaxis": "axis, start",
    "np.cross": "3-component vectors along the last axis, broadcast",
    "np.select": "choices and the default; the conditions are not differentiable",
    "np.interp": "x and fp (not xp); 0 for x outside xp; no left=/right=/period=",
    "np.convolve": "modes full, same, valid",
    "np.polyval": "p and x",
    "np.nansum": "NaN elements get 0", "np.nanmean": "NaN elements get 0",
    "np.partition": "through the permutation the partition applies",
    "np.nan_to_num": "0 for NaN and infinite elements",
    "np.linspace": "start and stop (numbers or arrays), num, endpoint, axis",
    "np.gradient": "1-D, or one int axis; spacing and edge_order not differentiated",
    "np.real": "of real arrays: the identity", "np.conjugate": "of real arrays: the identity",
    "x.conj()": "of real arrays: the identity (x itself)",
    "np.imag": "of real arrays: 0", "np.angle": "of real arrays: 0",
}


def display(fn: Any) -> str:
    """How users write ``fn``: ``np.exp``, ``np.linalg.inv``, ``x.sum()``, ``x + y``, ``math.log``."""
    if fn in OPERATORS:
        return OPERATORS[fn]
    if id(fn) in SPECIAL:
        return SPECIAL[id(fn)]
    if isinstance(fn, Method):
        return f"x.{fn.name}()"
    if isinstance(fn, GetAttr):
        return f"x.{fn.name}"
    name = getattr(fn, "__name__", None)
    for prefix, module in (("np.linalg.", np.linalg), ("np.", np), ("math.", math)):
        if name and getattr(module, name, None) is fn:
            return prefix + name
    for prefix, module in (("np.linalg.", np.linalg), ("np.", np), ("math.", math)):
        for alias, obj in sorted(vars(module).items()):
            if obj is fn and not alias.startswith("_"):
                return prefix + alias
    if name and getattr(builtins, name, None) is fn:
        return name
    if getattr(fn, "__module__", None) == runtime.__name__:
        return f"symdiff.runtime.{name}"
    return repr(fn)


def section(fn: Any) -> str:
    if fn in OPERATORS or id(fn) in SPECIAL or getattr(builtins, getattr(fn, "__name__", ""), None) is fn:
        return "Python operators and builtins"
    if isinstance(fn, (Method, GetAttr)):
        return "Array methods and attributes"
    if getattr(fn, "__module__", None) == "math" or display(fn).startswith("math."):
        return "math"
    if display(fn).startswith("np.linalg."):
        return "np.linalg"
    if isinstance(fn, np.ufunc):
        return "NumPy elementwise (ufuncs)"
    return "NumPy functions"


SECTIONS = ["Python operators and builtins", "math", "NumPy elementwise (ufuncs)", "NumPy functions",
            "np.linalg", "Array methods and attributes"]


def argument_names(name: str, vjps: tuple) -> str:
    """The differentiable arguments, named after the rule's parameters."""
    names = ARG_NAMES.get(name)
    out = []
    for i, vjp in enumerate(vjps):
        if vjp is None:
            continue
        if names is not None:
            out.append(names[min(i, len(names) - 1)])
            continue
        params = [p for p in inspect.signature(vjp).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][2:]
        out.append(params[i].name if i < len(params) else f"argument {i + 1}")
    return ", ".join(dict.fromkeys(out))


def keyword_names(record: primitives.Primitive) -> str:
    """`` (also min=, max=)``: the keywords a derivative also flows through."""
    names = record.keywords
    return f" (also {', '.join(f'{k}=' for k in names)})" if names else ""


RESULTS = {primitives.FRESH: "new", primitives.VIEW: "view of x", primitives.ITSELF: "x itself or new",
           primitives.OPAQUE: "tuple, list or other"}


def result(record: primitives.Primitive) -> str:
    """What the result is made of (a new array, a view...) and whether its shape is known statically."""
    text = RESULTS[record.alias] if not record.viewed else f"{RESULTS[record.alias]} (x: argument {record.viewed + 1})"
    if record.shape is not shapes.dynamic:
        text += "; shape: " + record.shape.__name__.replace("_", " ")
    return text


def forward_mode(record: primitives.Primitive) -> str:
    """Where forward mode gets the call's tangent (see symdiff.forward.tangent_rule)."""
    return forward.tangent_rule(record) or "no"


def _internal(fn: Any) -> bool:
    """A function of symdiff's own (runtime helpers, the ``both`` of chained comparisons)."""
    return inspect.isfunction(fn) and fn.__module__.startswith("symdiff")


def render() -> str:
    rows: dict[str, list] = {s: [] for s in SECTIONS}
    for record in primitives.with_rules():
        fn, vjps = record.fn, record.vjps
        if getattr(fn, "__module__", None) == runtime.__name__ and id(fn) not in SPECIAL:
            continue
        if isinstance(fn, Build):  # tuple/list displays: documented with sequences below
            continue
        if record.user or getattr(fn, "__module__", None) == "symdiff.custom":  # docs/transformations.md
            continue
        if getattr(fn, "_symdiff", None) is not None:  # a function symdiff made (a gradient, an hvp)
            continue
        if is_scipy(record):  # docs/scipy.md
            continue
        name = display(fn)
        shown = f"`{name}`" + (f", `x.{record.method}()`" if record.method else "")
        rows[section(fn)].append((shown, argument_names(name, vjps) + keyword_names(record), result(record),
                                  forward_mode(record), NOTES.get(name, "")))
    lines = [
        "# NumPy and Python functions symdiff differentiates",
        "",
        "<!-- generated by scripts/gen_numpy_docs.py from symdiff.primitives; do not edit by hand -->",
        "",
        "Each function below has a row in the primitive table `symdiff/rules.py`: a derivative rule",
        "(a vector-Jacobian product written in NumPy and inlined into the generated gradient) and",
        "what the compiler knows of its result. A method spelling (`x.sum()`) is the same primitive",
        "as its function. *Result* says whether the result is a new array or may share memory with",
        "the first argument (updating one in place would change the other), and which rule gives its",
        "shape at compile time where one does. *Differentiable arguments* are",
        "the arguments a derivative flows to (positionally, or by the keywords listed); other",
        "keyword arguments (`axis=`, `keepdims=`, `ord=`...) must not depend on the differentiated",
        "inputs. Register more with `symdiff.defvjp(fn, *vjps)`.",
        "",
        "*Forward mode* says where `symdiff.jvp`, `jacfwd`, `hvp` and `hessian` get the call's",
        "tangent: its own JVP rule, its linearity (the call itself on the tangent), or its VJP",
        "rule run on the tangent (element by element: the Jacobian is diagonal). A function",
        "marked *no* is refused by forward mode on arrays (register a rule with",
        "`symdiff.defjvp(fn, *jvps)`); on Python numbers alone every rule serves.",
        "",
    ]
    for title in SECTIONS:
        if not rows[title]:
            continue
        lines += [f"## {title}", "", "| function | differentiable arguments | result | forward mode | notes |",
                  "|---|---|---|---|---|"]
        for name, args, made, tangent, note in sorted(rows[title], key=lambda r: r[0].lower()):
            lines.append(f"| {name} | {args} | {made} | {tangent} | {note} |")
        lines.append("")
    nondiff = sorted({display(spelling) for r in primitives.records() if r.nondiff
                      for spelling in primitives.spellings(r)
                      if not _internal(r.fn)}, key=str.lower)
    lines += [
        "## Zero derivative",
        "",
        "These run as written and contribute no derivative (comparisons, rounding, indices, shapes):",
        "",
        ", ".join(f"`{name}`" for name in nondiff) + ".",
        "",
    ]
    lines += forward_section()
    return "\n".join(lines)


# The uses of functions with JVP rules that forward mode refuses (the rules in symdiff/rules.py say so).
FORWARD_PARTIAL = {
    "np.linalg.norm": "other than the 2-norm of vectors and the Frobenius norm",
    "np.linalg.cholesky": "of a stack of matrices, or with upper=True",
    "np.linalg.eigh": "of a stack of matrices",
    "np.linalg.eigvalsh": "of a stack of matrices",
    "np.linalg.matrix_power": "with a power that is not a constant of the function (an argument, say)",
    "np.average": "with differentiated weights",
    "np.polyval": "with a differentiated x",
    "np.prod": "its second derivative (hvp, hessian: its JVP's helper has no rule)",
    "np.quantile": "with a differentiated q (as in reverse mode)",
    "np.percentile": "with a differentiated q (as in reverse mode)",
}


def without_forward_rule() -> list[primitives.Primitive]:
    """The primitives with VJPs that forward mode (symdiff.jvp, hvp, hessian) refuses on arrays
    (``symdiff.forward.tangent_rule`` finds no source for their tangent)."""
    return [r for r in primitives.with_rules() if forward.tangent_rule(r) is None and not _internal(r.fn)]


def forward_section() -> list[str]:
    names = sorted({display(s) for r in without_forward_rule() for s in primitives.spellings(r)}, key=str.lower)
    return [
        "## Without a forward-mode rule",
        "",
        "Forward mode (`symdiff.jvp`, `linearize`, `jacfwd`, `hvp`, `hessian`) takes each call's tangent from",
        "its JVP rule, from its linearity, or, element by element, from its VJP. These functions have a VJP",
        "but none of those, and forward mode refuses them with a `NoRuleError` (use `symdiff.vjp`/`jacrev`,",
        "or register one with `symdiff.defjvp`):",
        "",
        ", ".join(f"`{name}`" for name in names) + ".",
        "",
        "Forward mode also refuses some uses of these, with a `NoRuleError`:",
        "",
        *(f"* `{name}`: {what}" for name, what in FORWARD_PARTIAL.items()),
        "",
    ]


def is_scipy(record: primitives.Primitive) -> bool:
    """A row of symdiff/rules_scipy.py (a SciPy function, or a method of a scipy.stats distribution)."""
    return (primitives.public_name(record.fn) or "").startswith("scipy.")


SCIPY_NOTES = {
    "scipy.special.polygamma": "in x; n (an int) is not differentiated",
    "scipy.special.multigammaln": "in a; d (a constant int) is not differentiated",
    "scipy.special.logsumexp": "axis, keepdims, b= (differentiated too); return_sign=True is refused",
    "scipy.special.softmax": "axis (default: all axes)",
    "scipy.special.log_softmax": "axis (default: all axes)",
    "scipy.special.xlogy": "d/dx = log(y), 0 where the cotangent is",
    "scipy.special.xlog1py": "d/dx = log1p(y), 0 where the cotangent is",
    "scipy.special.gammaln": "of log |Gamma(x)|: digamma(x), also for negative x",
    "scipy.special.digamma": "also spelt scipy.special.psi",
    "scipy.stats.multivariate_normal.logpdf": "x's last axis is the dimension; cov a symmetric matrix (its "
                                              "cotangent symmetric), or variances when not differentiated; "
                                              "no allow_singular=",
    "scipy.stats.multivariate_normal.pdf": "as logpdf",
}


CDF_PARAMETERS = ("x", "loc", "scale", "mu")  # (a cdf's shape parameters are refused: see _scipy_note)


def _scipy_arguments(name: str, record: primitives.Primitive) -> str:
    """The differentiable arguments: by keyword where the row says, else the rule's parameter names."""
    by_position = {position: keyword for keyword, position in record.keywords.items()}
    names = []
    for i, vjp in enumerate(record.vjps):
        if vjp is None:
            continue
        params = [p.name for p in inspect.signature(vjp).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][2:]
        names.append(by_position.get(i, params[i] if i < len(params) else "x" if i == 0 else f"argument {i + 1}"))
    if name.startswith("scipy.stats.") and name.endswith("cdf"):
        names = [n for n in names if n in CDF_PARAMETERS]
    return ", ".join(names)


def _scipy_note(name: str, record: primitives.Primitive) -> str:
    if name in SCIPY_NOTES:
        return SCIPY_NOTES[name]
    if name.startswith("scipy.stats.poisson."):
        return "in mu; the count k and loc are not differentiated"
    if name.startswith("scipy.stats.") and name.endswith("cdf") and set(record.keywords) - set(CDF_PARAMETERS):
        return "not in the shape parameters (refused: no closed form)"
    return "positional or keyword parameters, broadcast" if name.startswith("scipy.stats.") else ""


def render_scipy() -> str:
    """docs/scipy.md: the SciPy rows of the table."""
    rows: dict[str, list] = {"scipy.special": [], "scipy.stats": []}
    for record in primitives.with_rules():
        if not is_scipy(record) or record.user:
            continue
        name = primitives.public_name(record.fn)
        args = _scipy_arguments(name, record)
        section = "scipy.stats" if name.startswith("scipy.stats.") else "scipy.special"
        rows[section].append((f"`{name}`", args, forward_mode(record), _scipy_note(name, record)))
    lines = [
        "# SciPy functions symdiff differentiates",
        "",
        "<!-- generated by scripts/gen_numpy_docs.py from symdiff.primitives; do not edit by hand -->",
        "",
        "SciPy is optional: when it is installed, `symdiff/rules_scipy.py` adds these rows to the",
        "primitive table (docs/numpy.md describes the columns). Their rules are written with",
        "functions that have rules themselves, so Hessians and other derivatives of derivatives go",
        "through them. The `scipy.stats` rows are methods of the module's distribution objects,",
        "called as `scipy.stats.norm.logpdf(x, loc, scale)` or `norm.logpdf(x, loc=..., scale=...)`",
        "after `from scipy.stats import norm`, or `norm(loc, scale).logpdf(x)` (a distribution frozen",
        "in the same expression); their parameters are taken positionally or by keyword, as SciPy",
        "takes them, and broadcast together. Register more with",
        "`symdiff.defvjp(scipy.stats.expon.logpdf, ...)`: a method of an object takes a rule like a function.",
        "",
    ]
    for title, section_rows in rows.items():
        lines += [f"## {title}", "", "| function | differentiable arguments | forward mode | notes |",
                  "|---|---|---|---|"]
        lines += [f"| {n} | {a} | {t} | {note} |" for n, a, t, note in sorted(section_rows, key=lambda r: r[0])]
        lines.append("")
    return "\n".join(lines)


def _scipy_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec("scipy") is not None


def main(argv: list[str]) -> int:
    docs = [(DOC, render())] + ([(SCIPY_DOC, render_scipy())] if _scipy_installed() else [])
    if "--check" in argv:
        stale = [doc for doc, text in docs if not doc.exists() or doc.read_text() != text]
        for doc in stale:
            print(f"{doc.relative_to(ROOT)} is stale: run python3 scripts/gen_numpy_docs.py")
        return 1 if stale else 0
    for doc, text in docs:
        doc.parent.mkdir(exist_ok=True)
        doc.write_text(text)
        print(f"wrote {doc.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
