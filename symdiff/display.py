"""How generated code shows itself: ``.source`` is a :class:`GeneratedSource`, a ``str`` that
Jupyter displays as highlighted Python (Markdown with a ``python`` fence, or HTML: highlighted by
Pygments where it is installed, else escaped in a ``<pre>`` block). Nothing here is needed to
run the code.
"""

from __future__ import annotations

import html
from typing import Any


def markdown(source: str) -> str:
    """``source`` as a Markdown ``python`` code block (a fence longer than any run of backticks in it)."""
    fence = "```"
    while fence in source:
        fence += "`"
    return f"{fence}python\n{source.rstrip()}\n{fence}\n"


def highlighted_html(source: str) -> str:
    """``source`` as HTML: highlighted by Pygments if it is installed, else escaped in ``<pre>``."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return f'<pre class="symdiff-source"><code>{html.escape(source)}</code></pre>'
    formatter = HtmlFormatter(noclasses=True, nowrap=False)
    return highlight(source, PythonLexer(), formatter)


class GeneratedSource(str):
    """Generated Python source: a ``str`` (printing, comparing and writing it to a file are
    those of the text), which Jupyter and IPython display as highlighted code.

    ``origins`` maps a line of the text (1-based) to the line of the user's code it runs or
    differentiates: ``(filename, line, differentiating)``.
    """

    origins: dict[int, tuple[str, int, bool]]

    def __new__(cls, text: str, origins: dict[int, tuple[str, int, bool]] | None = None) -> GeneratedSource:
        made = super().__new__(cls, text)
        made.origins = dict(origins or {})
        return made

    def _repr_markdown_(self) -> str:
        return markdown(self)

    def _repr_html_(self) -> str:
        return highlighted_html(self)

    def __reduce__(self) -> tuple[Any, ...]:  # (pickles and copies as the text and its line map)
        return (GeneratedSource, (str(self), self.origins))
