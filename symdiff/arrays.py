"""Arrays of other libraries: dask (distributed, lazy) and CuPy (GPU), or any library that NumPy
hands its functions and ufuncs over to.

Generated code is NumPy-API Python (``np.tanh(x)``, ``X @ w``, ``g.sum(axis=0)``), and NumPy
passes such a call on to the array's own library when the array implements
``__array_function__`` (NEP 18) and ``__array_ufunc__`` (NEP 13). That capability, not a list of
libraries, decides what symdiff accepts (:func:`array_key`):

* such an array gets a specialisation of its own, keyed on its type, dtype and size-1 axes like
  an ndarray's (its shape must be known: a dask array with unknown chunk sizes is refused);
* the arrays the code creates from a shape alone (``np.zeros(W.shape)``, ``np.full(shape, c)``)
  are made ``like=`` such an argument (:func:`follow`), so that they belong to its library;
* the runtime helpers never convert one to an ndarray (``symdiff.runtime.dispatches``);
* gradients come back as arrays of that library -- for dask, lazy: one task graph per call,
  computed when the caller asks (``dask.compute(*grads)``, or :func:`compute`);
* an array-like object with neither protocol (a torch tensor, an array-API-only array) is
  refused with a :class:`SymdiffError` rather than converted behind the caller's back.

docs/scale-out.md tells how to use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ir
from .errors import SymdiffError
from .runtime import dispatches

# what the code creates from a shape alone (the ``*_like`` functions follow their argument already)
CREATIONS = (np.zeros, np.ones, np.empty, np.full)


def _type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _looks_like_array(x: Any) -> bool:
    """An object that stands for an array of numbers (a torch tensor, a JAX array): it has a
    shape and a dtype, or converts to or shares memory as one."""
    kind = type(x)
    return (hasattr(x, "shape") and hasattr(x, "dtype")) or any(
        hasattr(kind, name) for name in ("__array__", "__array_namespace__", "__dlpack__"))


def array_key(x: Any) -> ir.ArraySpec | None:
    """The specialisation key of ``x``, an argument that is no ndarray, Python number or
    container: an :class:`ir.ArraySpec` with its type for an array NumPy hands over to (dask,
    CuPy); None (the generic version) for other objects. Raises :class:`SymdiffError` for an
    array-like object NumPy cannot hand over to, and for an array of unknown shape."""
    if dispatches(x):
        shape = tuple(x.shape)
        if not all(isinstance(n, (int, np.integer)) for n in shape):
            raise SymdiffError(
                f"an argument is a {_type_name(type(x))} of unknown shape {shape} (a dask array with unknown "
                "chunk sizes, after boolean indexing say): symdiff specialises a gradient on which axes have "
                "size 1, so it needs the shape -- call x.compute_chunk_sizes() first")
        return ir.ArraySpec(tuple(n == 1 for n in shape), np.dtype(x.dtype), type(x))
    if isinstance(x, (np.ndarray, np.generic)) or not _looks_like_array(x):
        return None
    kind = type(x)
    if hasattr(kind, "__array_function__") or hasattr(kind, "__array_ufunc__"):
        return None  # (one protocol of the two, a pandas Series: the generic version, as NumPy treats it)
    standard = (" It implements the array API standard (__array_namespace__), but generated code calls NumPy's "
                "functions, which reach another library only through those two protocols."
                if hasattr(kind, "__array_namespace__") else "")
    raise SymdiffError(
        f"an argument is a {_type_name(kind)}, an array type NumPy cannot hand its functions over to: symdiff's "
        "generated code calls NumPy, which passes calls on to arrays implementing __array_function__ and "
        f"__array_ufunc__ (NEP 18 and NEP 13: dask, CuPy), and this type implements neither.{standard} Convert it "
        "first (np.asarray(x), or x.numpy() for a torch tensor) or pass an array of such a library")


def describe_type(key: ir.ArraySpec) -> str:
    """How the header of generated code names the array type of a key: ``array`` for an
    ndarray, ``dask.array.core.Array`` for a dask array."""
    return "array" if key.type is None else _type_name(key.type)


def follow(fn: ir.Function, like: ir.Value) -> None:
    """Make the arrays ``fn`` creates from a shape alone (``np.zeros``, ``np.ones``,
    ``np.empty``, ``np.full``, in the user's code and in the backward sweep) arrays of the
    library of the argument ``like`` (``like=``, NEP 35): a zero cotangent accumulated from
    dask arrays is a dask array, not a NumPy one into which dask arrays would be computed."""
    fn.like = like
    for op, _ in ir.walk(fn.body):
        if op.kind is ir.OpKind.CALL and op.fn in CREATIONS and "like" not in op.kwnames:
            op.args = [*op.args, like]
            op.kwnames = (*op.kwnames, "like")


def compute(*results: Any) -> Any:
    """``results`` with every dask collection among them (in tuples, lists and dicts too)
    computed, all in one ``dask.compute`` -- one graph, so that the forward sweep two gradients
    share runs once -- and everything else as it is.

    Parameters:
        results: values returned by gradients (or anything else); one argument gives one
            result, several a tuple.

    Example::

        dw, db = symdiff.compute(grad_f(w, b, X, y))  # X, y dask arrays: NumPy gradients
    """
    try:
        import dask
    except ImportError:
        return results[0] if len(results) == 1 else results
    computed = dask.compute(*results)
    return computed[0] if len(results) == 1 else computed
