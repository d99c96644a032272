"""adapted from HIPS/autograd examples/neural_net.py (MIT licence)

A multi-layer perceptron for classification of MNIST handwritten digits. The objective is
autograd's; MNIST is replaced by small synthetic data of its shapes (``data.load_mnist``), and
training is a few Adam steps.
"""

import itertools

import numpy as np
import numpy.random as npr
from _autograd_misc import adam, flatten
from _check import check_grad
from data import load_mnist
from scipy.special import logsumexp

from symdiff import grad


def init_random_params(scale, layer_sizes, rs=None):
    """Build a list of (weights, biases) tuples,
    one for each layer in the net."""
    rs = rs if rs is not None else npr.RandomState(0)
    return [
        (
            scale * rs.randn(m, n),  # weight matrix
            scale * rs.randn(n),
        )  # bias vector
        for m, n in itertools.pairwise(layer_sizes)
    ]


def neural_net_predict(params, inputs):
    """Implements a deep neural network for classification.
    params is a list of (weights, bias) tuples.
    inputs is an (N x D) matrix.
    returns normalized class log-probabilities."""
    for W, b in params:
        outputs = np.dot(inputs, W) + b
        inputs = np.tanh(outputs)
    return outputs - logsumexp(outputs, axis=1, keepdims=True)


def l2_norm(params):
    """Computes l2 norm of params by flattening them into a vector."""
    flattened, _ = flatten(params)
    return np.dot(flattened, flattened)


def log_posterior(params, inputs, targets, L2_reg):
    log_prior = -L2_reg * l2_norm(params)
    log_lik = np.sum(neural_net_predict(params, inputs) * targets)
    return log_prior + log_lik


def accuracy(params, inputs, targets):
    target_class = np.argmax(targets, axis=1)
    predicted_class = np.argmax(neural_net_predict(params, inputs), axis=1)
    return np.mean(predicted_class == target_class)


def main():
    """Check the gradient of the training objective, then take a few Adam steps."""
    layer_sizes = [784, 20, 10, 10]
    L2_reg = 1.0
    param_scale = 0.1
    batch_size = 8
    step_size = 0.001

    N, train_images, train_labels, test_images, test_labels = load_mnist()
    init_params = init_random_params(param_scale, layer_sizes)
    num_batches = int(np.ceil(len(train_images) / batch_size))

    def batch_indices(iter):
        idx = iter % num_batches
        return slice(idx * batch_size, (idx + 1) * batch_size)

    # Define training objective
    def objective(params, iter):
        idx = batch_indices(iter)
        return -log_posterior(params, train_images[idx], train_labels[idx], L2_reg)

    objective_grad = grad(objective)
    check_grad("neural_net", lambda p: objective(p, 1), objective_grad(init_params, 1), init_params)
    adam(objective_grad, init_params, step_size=step_size, num_iters=3)


if __name__ == "__main__":
    main()
