"""adapted from HIPS/autograd examples/sinusoid.py (MIT licence)

First and second derivatives of sin and of a Taylor series of sin that stops early (a loop
with ``break``), by ``grad(grad(...))``; plotting is left out.
"""

import numpy as np
from _check import check_grad

from symdiff import grad


def fun(x):
    return np.sin(x)


# Taylor approximation to sin function
def taylor_fun(x):
    currterm = x
    ans = currterm
    for i in range(1000):
        print(i, end=" ")
        currterm = -currterm * x**2 / ((2 * i + 3) * (2 * i + 2))
        ans = ans + currterm
        if np.abs(currterm) < 0.2:
            break  # (Very generous tolerance!)

    return ans


def main():
    """Check the first and second derivatives of both functions at a few points."""
    for name, f in [("sin", fun), ("taylor sin", taylor_fun)]:
        d_fun = grad(f)  # First derivative
        dd_fun = grad(d_fun)  # Second derivative
        for x in [-2.5, 0.7, 3.0]:
            check_grad(f"sinusoid {name} first derivative at {x}", f, d_fun(x), x, directions=1)
            check_grad(f"sinusoid {name} second derivative at {x}", d_fun, dd_fun(x), x, directions=1)


if __name__ == "__main__":
    main()
