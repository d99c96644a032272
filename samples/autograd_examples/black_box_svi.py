"""adapted from HIPS/autograd examples/black_box_svi.py (MIT licence)

Black-box stochastic variational inference with a diagonal Gaussian, on a two-dimensional
funnel-shaped density; plotting is left out and training is a few Adam steps.
"""

import numpy as np
import numpy.random as npr
from _autograd_misc import adam
from _check import check_grad
from scipy.stats import multivariate_normal as mvn  # noqa: F401 (autograd's example plots with it)
from scipy.stats import norm

from symdiff import grad


def black_box_variational_inference(logprob, D, num_samples):
    """Implements http://arxiv.org/abs/1401.0118, and uses the
    local reparameterization trick from http://arxiv.org/abs/1506.02557"""

    def unpack_params(params):
        # Variational dist is a diagonal Gaussian.
        mean, log_std = params[:D], params[D:]
        return mean, log_std

    def gaussian_entropy(log_std):
        return 0.5 * D * (1.0 + np.log(2 * np.pi)) + np.sum(log_std)

    rs = npr.RandomState(0)

    def variational_objective(params, t):
        """Provides a stochastic estimate of the variational lower bound."""
        mean, log_std = unpack_params(params)
        samples = rs.randn(num_samples, D) * np.exp(log_std) + mean
        lower_bound = gaussian_entropy(log_std) + np.mean(logprob(samples, t))
        return -lower_bound

    gradient = grad(variational_objective)

    return variational_objective, gradient, unpack_params


def main():
    """Check the gradient of the variational objective (same samples for every evaluation)."""
    # Specify an inference problem by its unnormalized log-density.
    D = 2

    def log_density(x, t):
        mu, log_sigma = x[:, 0], x[:, 1]
        sigma_density = norm.logpdf(log_sigma, 0, 1.35)
        mu_density = norm.logpdf(mu, 0, np.exp(log_sigma))
        return sigma_density + mu_density

    def build():
        # Build variational objective (a fresh one draws the same samples again).
        return black_box_variational_inference(log_density, D, num_samples=50)

    init_mean = -1 * np.ones(D)
    init_log_std = -5 * np.ones(D)
    init_var_params = np.concatenate([init_mean, init_log_std])
    check_grad("black_box_svi", lambda p: build()[0](p, 0), build()[1](init_var_params, 0), init_var_params)
    objective, gradient, unpack_params = build()
    adam(gradient, init_var_params, step_size=0.1, num_iters=3)


if __name__ == "__main__":
    main()
