"""adapted from HIPS/autograd examples/rosenbrock.py (MIT licence)

The Rosenbrock function minimised by SciPy's conjugate gradients with a symdiff
``value_and_grad``.
"""

import numpy as np
from _check import check_grad
from scipy.optimize import minimize

from symdiff import value_and_grad


def rosenbrock(x):
    return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2


def main():
    """Check the gradient, then minimise with CG as autograd's example does."""
    # Build a function that also returns gradients using autograd.
    rosenbrock_with_grad = value_and_grad(rosenbrock)
    x = np.array([-0.7, 0.4])
    check_grad("rosenbrock", rosenbrock, rosenbrock_with_grad(x)[1], x)

    # Optimize using conjugate gradients.
    result = minimize(rosenbrock_with_grad, x0=np.array([0.0, 0.0]), jac=True, method="CG")
    assert np.allclose(result.x, [1.0, 1.0], atol=1e-3), result.x


if __name__ == "__main__":
    main()
