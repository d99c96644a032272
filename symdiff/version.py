"""The version of symdiff, which generated code and exported modules name in their headers."""

__version__ = "0.1.0"
