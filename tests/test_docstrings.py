"""Every public function of symdiff says in its docstring (what ``help()`` shows) what its
parameters are and how it is called, and the ``>>>`` examples there give what they show."""

import doctest
import inspect

import numpy as np
import pytest

import symdiff

PUBLIC = [name for name in symdiff.__all__ if not inspect.isclass(getattr(symdiff, name))
          or not issubclass(getattr(symdiff, name), Exception)]
ERRORS = [name for name in symdiff.__all__ if name not in PUBLIC]


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_function_documents_its_parameters_and_an_example(name):
    doc = inspect.getdoc(getattr(symdiff, name)) or ""
    assert "Parameters:" in doc or "(``fun``:" in doc, f"symdiff.{name}: no parameters in its docstring"
    assert "Example" in doc or "::" in doc, f"symdiff.{name}: no example in its docstring"


@pytest.mark.parametrize("name", ERRORS)
def test_each_error_says_when_it_is_raised(name):
    assert inspect.getdoc(getattr(symdiff, name))


@pytest.mark.parametrize("name", [n for n in PUBLIC if ">>>" in (inspect.getdoc(getattr(symdiff, n)) or "")])
def test_docstring_examples_give_what_they_show(name):
    globs = {"np": np, "symdiff": symdiff}
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(recurse=False).find(getattr(symdiff, name), name, globs=globs):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
