"""tune-loader's version, read from the installed package (``pyproject.toml`` is the one place it is set)."""

from importlib import metadata

try:
    VERSION = metadata.version("tune-loader")
except metadata.PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "unknown (not installed)"
