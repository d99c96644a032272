"""adapted from HIPS/autograd examples/negative_binomial_maxlike.py (MIT licence)

Maximum likelihood for the negative binomial distribution by Newton's method, with first and
second derivatives from symdiff; plotting is left out.
"""

import numpy as np
import numpy.random as npr
import scipy.optimize
from _check import check_grad
from scipy.special import gammaln

from symdiff import grad

# The code in this example implements a method for finding a stationary point of
# the negative binomial likelihood via Newton's method, described here:
# https://en.wikipedia.org/wiki/Negative_binomial_distribution#Maximum_likelihood_estimation


def newton(f, x0):
    # wrap scipy.optimize.newton with our automatic derivatives
    return scipy.optimize.newton(f, x0, fprime=grad(f), fprime2=grad(grad(f)))


def negbin_loglike(r, p, x):
    # the negative binomial log likelihood we want to maximize
    return gammaln(r + x) - gammaln(r) - gammaln(x + 1) + x * np.log(p) + r * np.log(1 - p)


def negbin_sample(r, p, size):
    # a negative binomial is a gamma-compound-Poisson
    return npr.poisson(npr.gamma(r, p / (1 - p), size=size))


def fit_maxlike(x, r_guess):
    # follows Wikipedia's section on negative binomial max likelihood
    assert np.var(x) > np.mean(x), "Likelihood-maximizing parameters don't exist!"
    loglike = lambda r, p: np.sum(negbin_loglike(r, p, x))
    p = lambda r: np.sum(x) / np.sum(r + x)
    rprime = lambda r: grad(loglike)(r, p(r))
    r = newton(rprime, r_guess)
    return r, p(r)


def main():
    """Check first and second derivatives of the log likelihood, then fit r and p."""
    # generate data
    npr.seed(0)
    data = negbin_sample(r=5, p=0.5, size=200)

    loglike = lambda r, p: np.sum(negbin_loglike(r, p, data))
    check_grad("negative_binomial_maxlike d/dr", lambda r: loglike(r, 0.4), grad(loglike)(3.0, 0.4), 3.0)
    check_grad("negative_binomial_maxlike d2/dr2", lambda r: grad(loglike)(r, 0.4), grad(grad(loglike))(3.0, 0.4), 3.0)

    # fit likelihood-extremizing parameters
    r, p = fit_maxlike(data, r_guess=1)

    print("Check that we are at a local stationary point:")
    grad_both = grad(loglike, argnums=(0, 1))  # autograd spells it argnum=
    print(grad_both(r, p))


if __name__ == "__main__":
    main()
