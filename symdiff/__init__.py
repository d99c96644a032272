"""symdiff: source-to-source automatic differentiation for Python and NumPy.

    >>> import numpy as np, symdiff
    >>> @symdiff.grad
    ... def f(x):
    ...     return np.sum(np.tanh(x) ** 2)
    >>> print(f.source)          # the generated gradient, as readable Python

Pipeline, one module per stage: frontend (source -> ast) -> desugar (ast -> simpler ast) ->
lower (ast -> SSA IR, see ir) -> reverse (adjoint IR, using the rule table in rules) ->
passes -> codegen (IR -> Python source -> code object) -> api (grad, value_and_grad, caching).
"""

from .api import grad, value_and_grad
from .errors import AliasingError, InternalError, MutationError, NoRuleError, SymdiffError, UnsupportedSyntaxError
from .rules import defnondiff, defvjp

__all__ = ["grad", "value_and_grad", "defvjp", "defnondiff", "SymdiffError",
           "UnsupportedSyntaxError", "NoRuleError", "InternalError", "AliasingError", "MutationError"]
__version__ = "0.1.0"
