"""Notebooks: generated code displays as highlighted Python, and functions defined in notebook
cells and REPLs (source in linecache only) can be differentiated."""

import linecache
import os
import pathlib
import re
import sys
import textwrap

import numpy as np
import pytest

import symdiff
from symdiff.display import GeneratedSource, highlighted_html, markdown

ROOT = pathlib.Path(__file__).resolve().parent.parent


def relu_loss(x):
    y = np.where(x > 0, x, 0.1 * x)
    return np.sum(y ** 2)


def test_source_is_a_str_that_displays_as_markdown_and_html():
    g = symdiff.grad(relu_loss)
    source = g.source
    assert isinstance(source, str) and isinstance(source, GeneratedSource)
    assert str(source) == source and source.splitlines()[0].startswith("# grad of relu_loss")
    md = source._repr_markdown_()
    assert md.startswith("```python\n") and md.rstrip().endswith("```")
    assert str(source).rstrip() in md
    assert "relu_loss" in source._repr_html_()


def test_gradient_object_displays_its_generated_code():
    g = symdiff.grad(relu_loss)
    assert g._repr_markdown_() == markdown(g.source)
    assert g._repr_html_() == highlighted_html(g.source)
    g(np.array([1.0, -2.0]))  # a specialisation compiled: the display follows .source
    assert g._repr_markdown_() == markdown(g.source)


def test_transformed_functions_display_their_generated_code():
    h = symdiff.hessian(relu_loss)
    assert "```python" in h._repr_markdown_() and h.source.strip() in h._repr_markdown_()


def test_html_without_pygments_is_escaped_in_pre(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygments", None)  # (importing it now raises ImportError)
    text = highlighted_html("x = a < b & c  # <tag>")
    assert text == '<pre class="symdiff-source"><code>x = a &lt; b &amp; c  # &lt;tag&gt;</code></pre>'


def test_html_with_pygments_is_highlighted():
    pytest.importorskip("pygments")
    text = highlighted_html("y = np.tanh(x) < 1")
    assert "<span" in text and "&lt;" in text and "<pre" in text


def test_markdown_fence_is_longer_than_any_backticks_in_the_code():
    text = markdown('s = "```"')
    assert text.startswith("````python\n") and text.endswith("\n````\n")


def test_source_pickles_and_copies_as_the_same_text():
    import copy
    import pickle

    source = symdiff.grad(relu_loss).source
    for again in (pickle.loads(pickle.dumps(source)), copy.deepcopy(source)):
        assert again == source and isinstance(again, GeneratedSource) and again.origins == source.origins


def _define_in_cell(filename: str, code: str) -> dict:
    """Run ``code`` as IPython (or the Python 3.13 REPL) runs a cell: compiled under ``filename``,
    which only linecache knows."""
    code = textwrap.dedent(code)
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    namespace = {"np": np}
    exec(compile(code, filename, "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("filename", ["<ipython-input-1-abc>", "/tmp/ipykernel_4242/123456.py", "<python-input-0>"])
def test_function_defined_in_a_cell_is_differentiated(filename):
    cell = _define_in_cell(filename, """\
        def cell_loss(x):
            h = np.tanh(x)
            return np.sum(h ** 2)

        def cell_mismatch(x, y):
            return np.sum(np.tanh(x @ y))
    """)
    try:
        g = symdiff.grad(cell["cell_loss"])
        x = np.array([0.3, -1.2, 2.0])
        np.testing.assert_allclose(g(x), 2 * np.tanh(x) * (1 - np.tanh(x) ** 2), rtol=1e-12)
        assert "# line 3: return np.sum(h ** 2)" in g.source
        with pytest.raises(ValueError) as caught:  # errors name the cell's line
            symdiff.grad(cell["cell_mismatch"])(np.ones(2), np.ones(3))
        told = "".join(getattr(caught.value, "__notes__", [])) + str(caught.value)
        where = re.escape(f"{os.path.basename(filename)}:6: return np.sum(np.tanh(x @ y))")
        assert re.search(f"while (running|differentiating) {where}", told)  # (folded into the backward sweep)
    finally:
        linecache.cache.pop(filename, None)


NOTEBOOK_CELLS = [
    f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport numpy as np\nimport symdiff",
    "def f(x):\n    h = np.tanh(x)\n    return np.sum(h ** 2)",
    "g = symdiff.grad(f)\nx = np.array([0.3, -1.2])\nprint(repr(g(x).tolist()))\nprint(symdiff.__file__)",
    "g.source",
    "g",
]


def test_gradient_of_a_function_defined_in_a_real_notebook_kernel():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install symdiff[notebook])")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install symdiff[notebook])")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install symdiff[notebook])")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    try:
        nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    except Exception as error:  # noqa: BLE001 -- no kernel can start here: nothing to test
        if type(error).__name__ in ("NoSuchKernel", "DeadKernelError", "TimeoutError", "RuntimeError"):
            pytest.skip(f"no Jupyter kernel could run here: {type(error).__name__}: {error}")
        raise
    printed = notebook.cells[2].outputs[0]["text"].splitlines()
    x = np.array([0.3, -1.2])
    np.testing.assert_allclose(eval(printed[0]), 2 * np.tanh(x) * (1 - np.tanh(x) ** 2), rtol=1e-12)
    assert printed[1].startswith(str(ROOT))  # (this checkout's symdiff)
    for cell in notebook.cells[3:]:
        data = cell.outputs[0]["data"]
        assert "```python" in data["text/markdown"] and "def grad_f(x):" in data["text/markdown"]
        assert "grad_f" in data["text/html"]
    assert "# line 3: return np.sum(h ** 2)" in notebook.cells[3].outputs[0]["data"]["text/markdown"]
