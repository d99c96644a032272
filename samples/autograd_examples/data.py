"""adapted from HIPS/autograd examples/data.py (MIT licence)

``make_pinwheel`` as autograd wrote it; ``load_mnist`` gives small synthetic data of MNIST's
shapes (784 pixels, one-hot labels over 10 classes) instead of downloading MNIST, and
``save_images`` does nothing (no plotting here).
"""

from __future__ import annotations

import numpy as np
import numpy.random as npr


def load_mnist(n_train=24, n_test=8, rs=None):
    """Synthetic stand-in for MNIST: pixel values in [0, 1] and one-hot labels of 10 classes."""
    rs = rs if rs is not None else npr.RandomState(0)
    one_hot = lambda x, k: np.array(x[:, None] == np.arange(k)[None, :], dtype=int)
    train_images = rs.rand(n_train, 784)
    test_images = rs.rand(n_test, 784)
    train_labels = one_hot(rs.randint(0, 10, n_train), 10)
    test_labels = one_hot(rs.randint(0, 10, n_test), 10)
    return n_train, train_images, train_labels, test_images, test_labels


def save_images(images, filename, **kwargs):
    """No plotting in this corpus."""


def make_pinwheel(radial_std, tangential_std, num_classes, num_per_class, rate, rs=None):
    """Based on code by Ryan P. Adams."""
    rs = rs if rs is not None else npr.RandomState(0)
    rads = np.linspace(0, 2 * np.pi, num_classes, endpoint=False)

    features = rs.randn(num_classes * num_per_class, 2) * np.array([radial_std, tangential_std])
    features[:, 0] += 1
    labels = np.repeat(np.arange(num_classes), num_per_class)

    angles = rads[labels] + rate * np.exp(features[:, 0])
    rotations = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)])
    rotations = np.reshape(rotations.T, (-1, 2, 2))

    return np.einsum("ti,tij->tj", features, rotations)
