"""adapted from HIPS/autograd examples/natural_gradient_black_box_svi.py (MIT licence)

Black-box variational inference (black_box_svi.py) on a 40-dimensional posterior, by Adam on
the gradient and by SGD on the natural gradient; plotting is left out and the runs are short.
"""

import numpy as np
from _autograd_misc import adam, sgd
from _check import check_grad

# same BBSVI function!
from black_box_svi import black_box_variational_inference
from scipy.stats import norm


def main():
    """Check the gradient of the objective, then a few steps of both optimisers."""
    # Specify an inference problem by its unnormalized log-density.
    # it's difficult to see the benefit in low dimensions
    # model parameters are a mean and a log_sigma
    np.random.seed(42)
    obs_dim = 20
    Y = np.random.randn(obs_dim, obs_dim).dot(np.random.randn(obs_dim))

    def log_density(x, t):
        mu, log_sigma = x[:, :obs_dim], x[:, obs_dim:]
        sigma_density = np.sum(norm.logpdf(log_sigma, 0, 1.35), axis=1)
        mu_density = np.sum(norm.logpdf(Y, mu, np.exp(log_sigma)), axis=1)
        return sigma_density + mu_density

    # Build variational objective.
    D = obs_dim * 2  # dimension of our posterior

    def build():
        # a fresh objective draws the same samples again
        return black_box_variational_inference(log_density, D, num_samples=20)

    objective, gradient, unpack_params = build()

    def fisher_diag(lam):
        _mu, log_sigma = unpack_params(lam)
        return np.concatenate([np.exp(-2.0 * log_sigma), np.ones(len(log_sigma)) * 2])

    # simple! basically free!
    natural_gradient = lambda lam, i: (1.0 / fisher_diag(lam)) * gradient(lam, i)

    init_mean = -1 * np.ones(D)
    init_log_std = -5 * np.ones(D)
    init_var_params = np.concatenate([init_mean, init_log_std])
    check_grad("natural_gradient_black_box_svi", lambda p: build()[0](p, 0), build()[1](init_var_params, 0),
               init_var_params)
    adam(gradient, init_var_params, step_size=0.1, num_iters=3)
    sgd(natural_gradient, init_var_params, step_size=0.1, num_iters=3, mass=0.001)


if __name__ == "__main__":
    main()
