"""adapted from HIPS/autograd examples/tanh.py (MIT licence)

tanh and its first four derivatives by nested ``elementwise_grad``; plotting is left out and
each derivative is checked against central differences of the one before.
"""

import numpy as np
from _check import check_grad

from symdiff import elementwise_grad as egrad


def tanh(x):
    return (1.0 - np.exp(-2 * x)) / (1.0 + np.exp(-(2 * x)))


def main():
    """Check the first four derivatives of tanh, each against differences of the one before."""
    x = np.linspace(-3, 3, 7)
    derivatives = [tanh, egrad(tanh), egrad(egrad(tanh)), egrad(egrad(egrad(tanh))),
                   egrad(egrad(egrad(egrad(tanh))))]
    assert np.allclose(derivatives[1](x), 1.0 - np.tanh(x) ** 2)
    for order in range(1, 5):
        check_grad(f"tanh derivative {order}", lambda v, lower=derivatives[order - 1]: np.sum(lower(v)),
                   derivatives[order](x), x)


if __name__ == "__main__":
    main()
