"""``python -m symdiff path/to/file.py:func``: see :mod:`symdiff.cli`."""

from .cli import main

raise SystemExit(main())
