"""The command line: ``python -m symdiff path/to/file.py:func`` prints (or writes with ``--out``)
the gradient of ``func`` as a standalone module (:func:`symdiff.export`); ``--ir`` prints the IR
after each stage of the compiler first. Errors are one message on stderr and a non-zero exit
status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from typing import Any, Callable, Sequence

from . import ir
from .errors import REPORT, SymdiffError
from .export import TRANSFORMS, export
from .version import __version__

USAGE_ERROR = 2  # (what argparse exits with)
FAILED = 1


class CommandError(Exception):
    """A problem with what the command was given: the message says what, for stderr."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m symdiff",
        description="Print the gradient of a Python/NumPy function as a standalone module that needs only NumPy.")
    parser.add_argument("target", help="the function: path/to/file.py:func or package.module:func "
                                       "(func may be Class.method)")
    parser.add_argument("--argnums", default="0",
                        help="the argument(s) to differentiate with respect to: 0, or 0,1 for a tuple of gradients")
    parser.add_argument("--transform", choices=TRANSFORMS, default="grad",
                        help="grad (the default) or value_and_grad, which also returns the value")
    parser.add_argument("--has-aux", action="store_true",
                        help="with value_and_grad: the function returns (loss, aux)")
    parser.add_argument("--example-args", metavar="SPEC",
                        help="module:callable or file.py:callable returning a tuple of example arguments: the "
                             "code is specialised on their kinds (dtype, number of axes, which have size 1)")
    parser.add_argument("--out", metavar="FILE", help="write the module to FILE instead of printing it")
    parser.add_argument("--ir", action="store_true", help="print the IR after each compiler stage first")
    parser.add_argument("--version", action="version", version=f"symdiff {__version__}")
    return parser


def parse_argnums(text: str) -> int | tuple[int, ...]:
    """``"0"`` is 0; ``"0,1"`` (or ``"0,"``) a tuple."""
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = tuple(int(p) for p in parts if p)
    except ValueError:
        raise CommandError(f"--argnums {text!r}: expected integers separated by commas, such as 0 or 0,1") from None
    if not numbers:
        raise CommandError(f"--argnums {text!r}: expected at least one integer")
    return numbers[0] if "," not in text else numbers


def split_spec(spec: str, what: str) -> tuple[str, str]:
    """``"path/to/file.py:name"`` as its two parts (the last colon separates them)."""
    where, colon, name = spec.rpartition(":")
    if not colon or not where or not name:
        raise CommandError(f"{what} {spec!r}: expected path/to/file.py:name or package.module:name")
    return where, name


def load_module(where: str) -> Any:
    """The module at path ``where`` (a ``.py`` file, run as a module named after it, its folder
    first on ``sys.path`` so that it can import its neighbours), or the importable module named ``where``."""
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise CommandError(f"{where}: no such file")
        name = os.path.splitext(os.path.basename(path))[0]
        if not name.isidentifier():
            name = "_symdiff_target"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise CommandError(f"{where}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(path))
        sys.modules[name] = module
        _run_user_code(lambda: spec.loader.exec_module(module), f"importing {where}")
        return module
    try:
        return _run_user_code(lambda: importlib.import_module(where), f"importing {where}")
    except CommandError as error:
        if isinstance(error.__cause__, ModuleNotFoundError) and error.__cause__.name == where.split(".")[0]:
            raise CommandError(f"{where}: no such file or importable module") from None
        raise


def _run_user_code(run: Callable[[], Any], doing: str) -> Any:
    """``run()``; an exception it raises becomes a :class:`CommandError` saying what failed."""
    try:
        return run()
    except SymdiffError:
        raise
    except BaseException as error:  # noqa: BLE001 -- the user's code: any failure is reported, not shown raw
        if isinstance(error, KeyboardInterrupt):
            raise
        where = _user_frame(error)
        raise CommandError(f"{doing} raised {type(error).__name__}: {error}{where}") from error


def _user_frame(error: BaseException) -> str:
    """`` (at file.py:line)``: the innermost frame of the traceback outside symdiff and importlib."""
    tb, found = error.__traceback__, ""
    package = os.path.dirname(os.path.abspath(__file__))
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(package) and not filename.startswith("<frozen"):
            found = f" (at {filename}:{tb.tb_lineno})"
        tb = tb.tb_next
    return found


def resolve(spec: str, what: str) -> Any:
    """The object ``spec`` (``file.py:name`` or ``module:name``, name possibly dotted) names."""
    where, name = split_spec(spec, what)
    obj = load_module(where)
    for part in name.split("."):
        if not hasattr(obj, part):
            raise CommandError(f"{what} {spec!r}: {where} defines no {name!r}")
        obj = getattr(obj, part)
    return obj


def example_arguments(spec: str) -> tuple:
    """The tuple the callable ``spec`` names returns."""
    make = resolve(spec, "--example-args")
    if not callable(make):
        raise CommandError(f"--example-args {spec!r} is not callable: it must name a function returning a tuple "
                           "of example arguments")
    args = _run_user_code(make, f"calling {spec}")
    if not isinstance(args, (tuple, list)):
        raise CommandError(f"--example-args {spec!r} returned {type(args).__name__}; it must return a tuple of "
                           "example arguments, one per argument of the function")
    return tuple(args)


def _stage_text(name: str, fn: ir.Function) -> str:
    return f"# ---- IR {name}\n{ir.format_function(fn)}\n\n"


def run(argv: Sequence[str]) -> int:
    """Run the command with arguments ``argv`` (without the program name); the exit status."""
    options = _parser().parse_args(list(argv))
    argnums = parse_argnums(options.argnums)
    fun = resolve(options.target, "target")
    if not callable(fun):
        raise CommandError(f"{options.target!r} is not a function")
    example = example_arguments(options.example_args) if options.example_args else None
    stages: list[str] = []  # (printed once the compiler is done, also when it fails: for a bug report)
    try:
        text = export(fun, None, argnums=argnums, transform=options.transform, example_args=example,
                      has_aux=options.has_aux,
                      on_stage=(lambda name, fn: stages.append(_stage_text(name, fn))) if options.ir else None)
    finally:
        sys.stdout.write("".join(stages))
    if options.ir:
        sys.stdout.write("# ---- generated module\n")
    if options.out:
        try:
            with open(options.out, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as error:
            raise CommandError(f"--out {options.out}: cannot write it: {error.strerror or error}") from None
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point of ``python -m symdiff``: the exit status, with errors as one message on stderr."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except CommandError as error:
        _error(str(error))
        return USAGE_ERROR
    except SymdiffError as error:
        _error(str(error))
        return FAILED
    except BrokenPipeError:  # (the output piped into a command that stopped reading: `| head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return FAILED
    except Exception as error:  # noqa: BLE001 -- never a raw traceback
        _error(f"unexpected {type(error).__name__}: {error}. {REPORT}")
        return FAILED


def _error(message: str) -> None:
    sys.stderr.write(f"symdiff: error: {message}\n")
