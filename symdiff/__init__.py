"""symdiff: source-to-source automatic differentiation for Python and NumPy.

    >>> import numpy as np, symdiff
    >>> @symdiff.grad
    ... def f(x):
    ...     return np.sum(np.tanh(x) ** 2)
    >>> f(np.array([0.5, -1.0]))  # the gradient with respect to x
    >>> print(f.source)           # the generated gradient, as readable Python

Public API: :func:`grad`, :func:`value_and_grad`, :func:`vjp` and :func:`jacrev` (also
spelt :func:`jacobian`) (in ``api``), :func:`defvjp` and
:func:`defnondiff` to give functions derivative rules (in ``rules``), :func:`stop_gradient`,
:class:`custom_vjp`, :class:`custom_jvp`, :class:`checkpoint` and :func:`checkpoint_loop` (in
``custom``, see docs/transformations.md), :func:`export` to write a gradient as a standalone module
(in ``export``; also ``python -m symdiff``, see docs/export.md), :func:`compute` (dask results of a
call computed in one graph, see docs/scale-out.md; in ``arrays``), and the errors, all
subclasses of :class:`SymdiffError` (in ``errors``).

Pipeline, one module per stage, driven by ``api`` once per specialisation: frontend (source
-> ast, names resolved) -> desugar (ast -> simpler ast) -> lower (ast -> SSA IR, see ir) ->
optimize -> reverse (the adjoint IR, from the primitive table in rules, traced by tracing,
and the analyses and peepholes in passes and shapes), or forward for a gradient with respect
to one Python number -> optimize (on the gradient) -> codegen (IR -> Python source -> code
object). Generated code calls the few helpers in runtime. See docs/architecture.md.
"""

from .api import (
    elementwise_grad,
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    linearize,
    value_and_grad,
    vjp,
)
from .arrays import compute
from .custom import checkpoint, checkpoint_loop, custom_jvp, custom_vjp, stop_gradient
from .errors import AliasingError, InternalError, MutationError, NoRuleError, SymdiffError, UnsupportedSyntaxError
from .export import export
from .rules import defjvp, defnondiff, defvjp

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "linearize", "jacrev", "jacfwd", "jacobian", "hessian", "hvp",
           "elementwise_grad", "export", "defvjp", "defjvp", "defnondiff", "stop_gradient", "custom_vjp",
           "custom_jvp", "checkpoint", "checkpoint_loop", "compute", "SymdiffError",
           "UnsupportedSyntaxError", "NoRuleError", "InternalError", "AliasingError", "MutationError"]
from .version import __version__ as __version__
