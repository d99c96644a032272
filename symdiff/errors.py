"""Errors raised to users. Every message about user code names file, line and column."""

from __future__ import annotations


class SymdiffError(Exception):
    """Base class of every error symdiff raises about user code or input."""


class UnsupportedSyntaxError(SymdiffError):
    """The function uses a Python construct symdiff cannot differentiate (yet)."""


class NeedsArgumentsError(UnsupportedSyntaxError):
    """A construct symdiff compiles only knowing more of an argument than its kind of "any"
    (the length of a tuple spread with ``*``): the version for arguments of any kind raises it,
    and the first call, with real arguments, compiles or refuses it for good."""


class UnresolvedNameError(SymdiffError):
    """A name in the function is not defined (yet: it may be defined before the first call)."""


class NoRuleError(SymdiffError):
    """A call on a differentiated value has no derivative rule."""


class AliasingError(SymdiffError):
    """The function updates an array in place in a way symdiff does not model: through a NumPy
    view, or through names that are one object only some of the time."""


class InternalError(SymdiffError):
    """A bug in symdiff itself: the compiler failed, or generated code raised where the user's
    function does not. The message names the user's code being processed and asks for a report."""


class MutationError(SymdiffError):
    """The function changes an array, list or dict in place in a way symdiff does not model
    (``y.sort()``, ``np.copyto``, ``out=``): the message says what to write instead."""


REPORT = ("This is a bug in symdiff, not in your code: please report it with the function and the "
          "types and shapes of its arguments.")


def located(message: str, filename: str, line: int | None, col: int | None = None,
            source_line: str | None = None) -> str:
    """Format ``message`` as ``file:line:col: message`` followed by the source line and a caret."""
    where = f"{filename}:{line}" if line is not None else filename
    if col is not None:
        where += f":{col + 1}"
    text = f"{where}: {message}"
    if source_line is not None:
        stripped = source_line.rstrip("\n")
        text += f"\n    {stripped}"
        if col is not None:
            text += "\n    " + " " * col + "^"
    return text
