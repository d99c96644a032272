"""Logistic regression fitted by Newton's method (SciPy's trust-ncg) with symdiff's gradient and
Hessian-vector products, against first-order L-BFGS with the same gradient.

The loss is plain NumPy: the mean logistic loss, written stably with ``np.logaddexp``, plus an
L2 term. ``scipy.optimize.minimize(method="trust-ncg")`` takes the gradient (``jac=``) and a
Hessian-vector product (``hessp=``): ``symdiff.hvp(loss)`` compiles ``hvp_loss(w, X, y, lam, v)``
(the Hessian with respect to ``w``, times ``v``) without ever forming the 20×20 Hessian.
Exits with status 1 if an optimiser fails, if trust-ncg does not need far fewer iterations
than L-BFGS, or if symdiff's gradient or Hessian-vector product differs from the hand-written
formula at the fitted point. Needs SciPy (``pip install scipy``).
"""

import sys

import numpy as np
from scipy.optimize import minimize

import symdiff


def loss(w, X, y, lam):
    """Mean logistic loss of labels ``y`` in {-1, 1}, plus ``lam * |w|^2``."""
    return np.mean(np.logaddexp(0.0, -y * (X @ w))) + lam * np.sum(w * w)


def make_data(n=5000, d=20, seed=0):
    """Features with scales from 0.2 to 5 (a moderately ill-conditioned problem) and noisy
    labels from a random linear model."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.geomspace(0.2, 5.0, d)
    w_true = rng.normal(size=d) / np.geomspace(0.2, 5.0, d)
    y = np.where(X @ w_true + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    return X, y


def hand_grad(w, X, y, lam):
    """The gradient by hand: -X^T (y * sigmoid(-y X w)) / n + 2 lam w."""
    s = np.exp(-np.logaddexp(0.0, y * (X @ w)))  # sigmoid(-y * (X @ w)), stably
    return -(y * s) @ X / X.shape[0] + 2.0 * lam * w


def hand_hvp(w, X, y, lam, v):
    """The Hessian-vector product by hand: X^T (p (1 - p) * (X v)) / n + 2 lam v."""
    p = np.exp(-np.logaddexp(0.0, -(X @ w)))  # sigmoid(X @ w); p(1-p) does not depend on y's sign
    return (p * (1.0 - p) * (X @ v)) @ X / X.shape[0] + 2.0 * lam * v


def fit(method, w0, args, options, **derivatives):
    """Minimise ``loss`` from ``w0``, printing the loss and gradient norm each iteration."""
    grad = derivatives["jac"]
    iteration = [0]

    def progress(w):
        iteration[0] += 1
        print(f"  {method} iteration {iteration[0]:3d}  loss {loss(w, *args):.10f}  "
              f"|grad| {np.linalg.norm(grad(w, *args)):.2e}")

    print(f"{method}:")
    result = minimize(loss, w0, args=args, method=method, callback=progress,
                      options=options, **derivatives)
    print(f"  {result.message}")
    return result


def main():
    X, y = make_data()
    lam = 1e-3
    args = (X, y, lam)
    w0 = np.zeros(X.shape[1])

    grad_loss = symdiff.grad(loss)
    hvp_loss = symdiff.hvp(loss)  # hvp_loss(w, X, y, lam, v): the Hessian in w, times v
    hvp_loss(w0, *args, w0)       # compile for these argument kinds
    print("Generated Hessian-vector product:\n" + hvp_loss.source)

    def hessp(w, v, X, y, lam):   # SciPy passes the direction second
        return hvp_loss(w, X, y, lam, v)

    # Both stop when the gradient is below 1e-8 (trust-ncg: its norm; L-BFGS-B: its largest
    # component); L-BFGS-B's stop on a small relative decrease of the loss is off, so it gets as far.
    newton = fit("trust-ncg", w0, args, {"gtol": 1e-8}, jac=grad_loss, hessp=hessp)
    lbfgs = fit("L-BFGS-B", w0, args, {"gtol": 1e-8, "ftol": 0.0, "maxiter": 1000}, jac=grad_loss)

    print(f"trust-ncg: {newton.nit:3d} iterations, final loss {newton.fun:.12f}")
    print(f"L-BFGS-B:  {lbfgs.nit:3d} iterations, final loss {lbfgs.fun:.12f}")

    w = newton.x
    v = np.random.default_rng(1).normal(size=w.shape)
    grad_error = np.max(np.abs(grad_loss(w, *args) - hand_grad(w, *args)))
    hvp_error = np.max(np.abs(hvp_loss(w, *args, v) - hand_hvp(w, *args, v)))
    print(f"at the fitted w: symdiff vs hand-written gradient, max difference {grad_error:.1e}; "
          f"Hessian-vector product {hvp_error:.1e}")

    for name, result in (("trust-ncg", newton), ("L-BFGS-B", lbfgs)):
        if not result.success:
            sys.exit(f"{name} failed: {result.message}")
    if not abs(lbfgs.fun - newton.fun) < 1e-12:
        sys.exit("the two optimisers did not reach the same minimum")
    if not 3 * newton.nit <= lbfgs.nit:
        sys.exit("trust-ncg did not need far fewer iterations than L-BFGS-B")
    if not (grad_error < 1e-10 and hvp_error < 1e-10):
        sys.exit("symdiff's derivatives differ from the hand-written ones")


if __name__ == "__main__":
    main()
