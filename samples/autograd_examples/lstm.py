"""adapted from HIPS/autograd examples/lstm.py (MIT licence)

Implements the long-short term memory character model.
This version vectorizes over multiple examples, but each string
has a fixed length."""

from os.path import dirname, join

import numpy as np
import numpy.random as npr
from _autograd_misc import adam
from _check import check_grad
from rnn import build_dataset, concat_and_multiply, one_hot_to_string, sigmoid, string_to_one_hot  # noqa: F401
from scipy.special import logsumexp

from symdiff import grad


def init_lstm_params(input_size, state_size, output_size, param_scale=0.01, rs=None):
    rs = rs if rs is not None else npr.RandomState(0)

    def rp(*shape):
        return rs.randn(*shape) * param_scale

    return {
        "init cells": rp(1, state_size),
        "init hiddens": rp(1, state_size),
        "change": rp(input_size + state_size + 1, state_size),
        "forget": rp(input_size + state_size + 1, state_size),
        "ingate": rp(input_size + state_size + 1, state_size),
        "outgate": rp(input_size + state_size + 1, state_size),
        "predict": rp(state_size + 1, output_size),
    }


def lstm_predict(params, inputs):
    def update_lstm(input, hiddens, cells):
        change = np.tanh(concat_and_multiply(params["change"], input, hiddens))
        forget = sigmoid(concat_and_multiply(params["forget"], input, hiddens))
        ingate = sigmoid(concat_and_multiply(params["ingate"], input, hiddens))
        outgate = sigmoid(concat_and_multiply(params["outgate"], input, hiddens))
        cells = cells * forget + ingate * change
        hiddens = outgate * np.tanh(cells)
        return hiddens, cells

    def hiddens_to_output_probs(hiddens):
        output = concat_and_multiply(params["predict"], hiddens)
        return output - logsumexp(output, axis=1, keepdims=True)  # Normalize log-probs.

    num_sequences = inputs.shape[1]
    hiddens = np.repeat(params["init hiddens"], num_sequences, axis=0)
    cells = np.repeat(params["init cells"], num_sequences, axis=0)

    output = [hiddens_to_output_probs(hiddens)]
    for input in inputs:  # Iterate over time steps.
        hiddens, cells = update_lstm(input, hiddens, cells)
        output.append(hiddens_to_output_probs(hiddens))
    return output


def lstm_log_likelihood(params, inputs, targets):
    logprobs = lstm_predict(params, inputs)
    loglik = 0.0
    num_time_steps, num_examples, _ = inputs.shape
    for t in range(num_time_steps):
        loglik += np.sum(logprobs[t] * targets[t])
    return loglik / (num_time_steps * num_examples)


def main():
    """Check the gradient of the training loss on a few lines of this file, then a few Adam steps."""
    num_chars = 128

    # Learn to predict our own source code (a few short lines of it).
    text_filename = join(dirname(__file__), "lstm.py")
    train_inputs = build_dataset(text_filename, sequence_length=6, alphabet_size=num_chars, max_lines=4)

    init_params = init_lstm_params(input_size=128, output_size=128, state_size=8, param_scale=0.01)

    def training_loss(params, iter):
        return -lstm_log_likelihood(params, train_inputs, train_inputs)

    # Build gradient of loss function using autograd.
    training_loss_grad = grad(training_loss)
    check_grad("lstm", lambda p: training_loss(p, 0), training_loss_grad(init_params, 0), init_params)
    adam(training_loss_grad, init_params, step_size=0.1, num_iters=3)


if __name__ == "__main__":
    main()
