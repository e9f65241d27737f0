"""The version of evopot."""

__version__ = "0.1.0"
