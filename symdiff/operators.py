"""Python's operator syntax and the functions it means, in one table read both ways: lowering
turns ``a + b`` into a call of ``operator.add``, codegen turns that call back into ``a + b``."""

from __future__ import annotations

import ast
import operator
from typing import Any


def contains_swapped(a: Any, b: Any) -> bool:
    """``a in b`` (``operator.contains`` takes its arguments the other way round)."""
    return a in b


def not_contains_swapped(a: Any, b: Any) -> bool:
    """``a not in b``."""
    return a not in b


BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.MatMult: operator.matmul, ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
    ast.BitXor: operator.xor, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}
UNARYOPS = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
            ast.Invert: operator.invert}
CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
          ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Is: operator.is_,
          ast.IsNot: operator.is_not, ast.In: contains_swapped, ast.NotIn: not_contains_swapped}


def inverse(table: dict) -> dict:
    """function -> AST node type."""
    return {fn: node for node, fn in table.items()}
