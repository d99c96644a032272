"""adapted from HIPS/autograd examples/gmm.py (MIT licence)

Implements a Gaussian mixture model, in which parameters are fit using
gradient descent.  This example runs on 2-dimensional data, but the model
works on arbitrarily-high dimension."""

import numpy as np
import numpy.random as npr
from _autograd_misc import flatten_func
from _check import check_grad
from data import make_pinwheel
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal as mvn

from symdiff import grad
from symdiff import hvp as hessian_vector_product


def init_gmm_params(num_components, D, scale, rs=None):
    rs = rs if rs is not None else npr.RandomState(0)
    return {
        "log proportions": rs.randn(num_components) * scale,
        "means": rs.randn(num_components, D) * scale,
        "lower triangles": np.zeros((num_components, D, D)) + np.eye(D),
    }


def log_normalize(x):
    return x - logsumexp(x)


def unpack_gmm_params(params):
    normalized_log_proportions = log_normalize(params["log proportions"])
    return normalized_log_proportions, params["means"], params["lower triangles"]


def gmm_log_likelihood(params, data):
    cluster_lls = []
    for log_proportion, mean, cov_sqrt in zip(*unpack_gmm_params(params)):
        cov = np.dot(cov_sqrt.T, cov_sqrt)
        cluster_lls.append(log_proportion + mvn.logpdf(data, mean, cov))
    return np.sum(logsumexp(np.vstack(cluster_lls), axis=0))


def plot_ellipse(ax, mean, cov_sqrt, alpha, num_points=100):
    angles = np.linspace(0, 2 * np.pi, num_points)
    circle_pts = np.vstack([np.cos(angles), np.sin(angles)]).T * 2.0
    cur_pts = mean + np.dot(circle_pts, cov_sqrt)
    ax.plot(cur_pts[:, 0], cur_pts[:, 1], "-", alpha=alpha)


def plot_gaussian_mixture(params, ax):
    for log_proportion, mean, cov_sqrt in zip(*unpack_gmm_params(params)):
        alpha = np.minimum(1.0, np.exp(log_proportion) * 10)
        plot_ellipse(ax, mean, cov_sqrt, alpha)


def main():
    """Check the gradient and a Hessian-vector product, then a few Newton-CG steps."""
    init_params = init_gmm_params(num_components=3, D=2, scale=0.1)

    data = make_pinwheel(radial_std=0.3, tangential_std=0.05, num_classes=3, num_per_class=10, rate=0.4)

    def objective(params):
        return -gmm_log_likelihood(params, data)

    flattened_obj, unflatten, flattened_init_params = flatten_func(objective, init_params)
    jac = grad(flattened_obj)
    hessp = hessian_vector_product(flattened_obj)
    x = flattened_init_params + 0.1 * npr.RandomState(1).randn(len(flattened_init_params))
    check_grad("gmm", flattened_obj, jac(x), x)
    v = npr.RandomState(2).randn(len(x))
    check_grad("gmm Hessian-vector product", lambda y: np.dot(jac(y), v), hessp(x, v), x)
    minimize(flattened_obj, flattened_init_params, jac=jac, hessp=hessp, method="Newton-CG",
             options={"maxiter": 3})


if __name__ == "__main__":
    main()
