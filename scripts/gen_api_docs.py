"""Generate docs/api.md, the reference of symdiff's public API, from the docstrings.

    python3 scripts/gen_api_docs.py          # rewrite docs/api.md
    python3 scripts/gen_api_docs.py --check  # exit 1 if docs/api.md is stale

Every name in ``symdiff.__all__`` gets a section: its signature (as annotated in the source)
and its docstring; then the types the functions return (``Compiled``, ``Pullback``, ...).
``tests/test_api_docs.py`` fails when the file is stale.
"""

from __future__ import annotations

import inspect
import pathlib
import re
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import symdiff  # noqa: E402
from symdiff import api  # noqa: E402

DOC = ROOT / "docs" / "api.md"

GROUPS = [
    ("Gradients", ["grad", "value_and_grad", "elementwise_grad"]),
    ("Vector-Jacobian and Jacobian-vector products", ["vjp", "jvp", "linearize"]),
    ("Jacobians and Hessians", ["jacrev", "jacobian", "jacfwd", "hessian", "hvp"]),
    ("Derivative rules of your own", ["defvjp", "defjvp", "defnondiff", "custom_vjp", "custom_jvp"]),
    ("Steering differentiation", ["stop_gradient", "checkpoint", "checkpoint_loop"]),
    ("Shipping and scaling out", ["export", "compute"]),
]
RETURNED = [("symdiff.api.Compiled", api.Compiled), ("symdiff.api.CompiledWithValue", api.CompiledWithValue),
            ("symdiff.api.Pullback", api.Pullback), ("symdiff.api.Linearized", api.Linearized)]


def annotation(value: Any) -> str:
    """An annotation as written in the source (the modules use postponed annotations: strings)."""
    if value is inspect.Parameter.empty:
        return ""
    return value if isinstance(value, str) else getattr(value, "__name__", repr(value))


def signature(name: str, obj: Any) -> str:
    """``name(params) -> result``, spelt the same on every Python version."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    sig = inspect.signature(target)
    parts, star_done = [], False
    params = list(sig.parameters.values())
    if inspect.isclass(obj):
        params = params[1:]  # self
    for param in params:
        text = param.name
        if param.kind is param.VAR_POSITIONAL:
            text, star_done = "*" + text, True
        elif param.kind is param.VAR_KEYWORD:
            text = "**" + text
        elif param.kind is param.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        hint = annotation(param.annotation)
        if hint:
            text += f": {hint}"
        if param.default is not param.empty:
            text += f" = {param.default!r}" if hint else f"={param.default!r}"
        parts.append(text)
    result = "" if inspect.isclass(obj) else annotation(sig.return_annotation)
    return f"{name}({', '.join(parts)})" + (f" -> {result}" if result else "")


def markdown(doc: str) -> str:
    """A docstring as Markdown: ``code`` as `code`, ``Example::`` blocks as Python blocks."""
    out: list[str] = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "Parameters:":
            out += ["Parameters:", ""]
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                item = re.match(r"    ([\w*, ]+): (.*)", lines[i])
                if item and not lines[i].startswith("     "):
                    names = ", ".join(f"`{n.strip()}`" for n in item.group(1).split(","))
                    out.append(f"* {names}: {_inline(item.group(2))}")
                else:
                    out.append("  " + _inline(lines[i].strip()))
                i += 1
            continue
        if line.rstrip().endswith("::"):
            out.append(_inline(line.rstrip()[:-2].rstrip() + ":") if line.strip() != "::" else "")
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["", "```python", *block, "```", ""]
            continue
        out.append(_inline(line))
        i += 1
    return "\n".join(out).strip() + "\n"


def _inline(line: str) -> str:
    line = re.sub(r":(?:func|class|mod):`~?([^`]+)`", r"`\1`", line)
    return line.replace("``", "`")


def section(name: str, obj: Any, level: str = "###") -> list[str]:
    doc = inspect.getdoc(obj) or ""
    lines = [f"{level} `{name}`", "", "```python", signature(name, obj), "```", "", markdown(doc)]
    if inspect.isclass(obj):
        for cls in reversed(obj.__mro__[:-1]):
            for member, value in vars(cls).items():
                if not member.startswith("_") and inspect.isfunction(value) and inspect.getdoc(value):
                    spelt = signature("." + member, value).replace("(self, ", "(").replace("(self)", "()")
                    lines += [f"Method `{spelt}`:", "", markdown(inspect.getdoc(value) or "")]
    return lines


def render() -> str:
    lines = [
        "<!-- generated by scripts/gen_api_docs.py from the docstrings; do not edit by hand -->",
        "# API reference",
        "",
        "Everything below is importable from `symdiff` (`symdiff.grad`, ...). Each function's",
        "`help()` shows the same text. `docs/tutorial.md` shows them at work; `docs/semantics.md`",
        "says what the generated code computes.",
        "",
    ]
    listed = set()
    for title, names in GROUPS:
        lines += [f"## {title}", ""]
        for name in names:
            obj = getattr(symdiff, name)
            if name == "jacobian":
                lines += ["### `jacobian`", "", "The same function as `jacrev`.", ""]
            else:
                lines += section(name, obj)
            listed.add(name)
    errors = [n for n in symdiff.__all__ if n not in listed]
    lines += ["## Errors", "", "Every error symdiff raises about your code or its input is a `SymdiffError`.", ""]
    for name in errors:
        obj = getattr(symdiff, name)
        base = obj.__mro__[1].__name__
        lines += [f"### `{name}`", "", f"A subclass of `{base}`. " + markdown(inspect.getdoc(obj) or "")]
    lines += ["## What the functions return", ""]
    for name, obj in RETURNED:
        lines += [f"### `{name}`", "", markdown(inspect.getdoc(obj) or "")]
        members = [(m, v) for m, v in vars(obj).items() if not m.startswith("_") and inspect.getdoc(v)]
        for member, value in members:
            lines += [f"* `.{member}`: " + markdown(inspect.getdoc(value) or "").strip()]
        lines += [""] if members else []
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC.relative_to(ROOT)} is stale: run python3 scripts/gen_api_docs.py")
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
