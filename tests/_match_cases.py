"""A function using ``match`` (Python >= 3.10 syntax), kept out of the test module so that the
test module itself still parses on Python 3.9. Imported only when ``match`` exists."""

import numpy as np


def uses_match(x):
    match 1:  # MARK: match
        case 1:
            y = x * 2.0
        case _:
            y = x
    return np.sum(y)
